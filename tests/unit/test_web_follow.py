"""A page's followers end when the page is left, even when their stream is quiet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from web import session
from web.session import follow_while_open


async def _quiet_then(items: list[int], gate: asyncio.Event) -> AsyncIterator[int]:
    for item in items:
        yield item
    await gate.wait()  # a stream with nothing more to say for now
    yield -1


async def test_a_quiet_stream_ends_when_the_page_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "RECHECK_S", 0.05)
    seen: list[int] = []
    quiet: list[None] = []
    open_ = True

    async def still_open() -> bool:
        return open_

    async def on_item(item: int) -> None:
        seen.append(item)

    async def on_quiet() -> None:
        nonlocal open_
        quiet.append(None)
        open_ = len(quiet) < 3  # the page is left during the third quiet spell

    gate = asyncio.Event()
    async with asyncio.timeout(5):
        await follow_while_open(
            _quiet_then([1, 2], gate), still_open=still_open, on_item=on_item, on_quiet=on_quiet
        )
    assert seen == [1, 2] and len(quiet) == 3


async def test_a_follower_stops_after_its_time_even_on_a_busy_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session, "FOLLOW_FOR_S", 0.2)

    async def forever() -> AsyncIterator[int]:
        n = 0
        while True:
            n += 1
            yield n
            await asyncio.sleep(0.01)

    async def still_open() -> bool:
        return True

    async def on_item(item: int) -> None:
        return None

    async with asyncio.timeout(5):
        await follow_while_open(forever(), still_open=still_open, on_item=on_item)
