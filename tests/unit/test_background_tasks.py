"""Shutting down the control plane's background tasks: a task that swallowed its
cancellation (as a library does that turns it into a connection error mid-connect, and the
loop around it goes on) is cancelled again, and shutdown ends."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from control_plane.workers import BackgroundTasks


async def test_stop_cancels_again_a_task_that_swallowed_its_cancellation() -> None:
    platform: Any = SimpleNamespace(db=None)
    tasks = BackgroundTasks(platform)
    cancelled = 0

    async def stubborn() -> None:
        nonlocal cancelled
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled += 1
                task = asyncio.current_task()
                assert task is not None
                if cancelled == 1:  # the first one turned into something else, and ignored
                    task.uncancel()
                    continue
                raise

    tasks._spawn("stubborn", stubborn())
    await asyncio.sleep(0)  # it is waiting
    async with asyncio.timeout(5):
        await tasks.stop()
    assert cancelled == 2
