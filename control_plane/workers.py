"""Background work of the control plane, in one place: started and drained by the lifespan.

Each loop survives its own failures: an exception is logged and the loop goes on after a
pause, so one bad job or a cluster that does not answer never stops the others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from glia.platform import Platform

logger = logging.getLogger(__name__)

_RESTART_DELAY_S = 1.0


class BackgroundTasks:
    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        platform = self._platform
        for name, _gateway in platform.gateways.items():
            self._spawn(
                f"follow cluster {name}", functools.partial(platform.jobs.follow_cluster, name)
            )
        # Let the followers subscribe, then catch up before serving: jobs that ended or
        # vanished while the control plane was down.
        await asyncio.sleep(0)
        await self._guarded("reconcile", platform.jobs.reconcile)
        self._spawn("reconcile", self._reconcile_forever)
        self._spawn("acl changes", platform.acl.watch_changes)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(self._forever(name, run), name=name))

    async def _forever(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        while True:
            await self._guarded(name, run)
            await asyncio.sleep(_RESTART_DELAY_S)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._platform.settings.reconcile_interval_s)
            await self._guarded("reconcile", self._platform.jobs.reconcile)

    @staticmethod
    async def _guarded(name: str, run: Callable[[], Awaitable[None]]) -> None:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background task %r failed; it goes on", name)
