"""The one polling helper of the tests: wait until a check passes, or fail after a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[Any]], *, within: float = 5.0) -> Any:
    """Poll an async check until it returns something truthy; fail after ``within`` seconds.

    Polling is the point here: the state lives in another task, thread or process. Code that
    is not async wraps its check (``async def check(): return probe()``) and runs this with
    ``asyncio.run``.
    """
    async with asyncio.timeout(within):
        while True:
            if result := await check():
                return result
            await asyncio.sleep(0.02)
