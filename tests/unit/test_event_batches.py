"""`control_plane.events.batches`: a reader that handles one batch at a time gets what arrived
meanwhile in one batch, keeps at most its limit, and learns when the subscription ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from control_plane.events import BATCHES_TASK, InProcessBus, Message, Subscription, batches


async def test_messages_that_arrive_while_the_reader_is_busy_come_as_one_batch() -> None:
    bus = InProcessBus()
    async with bus.subscribe("jobs") as subscription:
        async with contextlib.aclosing(batches(subscription, limit=3)) as reader:
            await bus.publish("jobs", {"n": 0})
            assert await anext(reader) == [{"n": 0}]
            for n in range(1, 6):  # the reader is busy with its first batch meanwhile
                await bus.publish("jobs", {"n": n})
            # Past the limit the oldest go, as the bus drops them for a slow subscriber.
            assert [m["n"] for m in await anext(reader)] == [3, 4, 5]
            await bus.publish("jobs", {"n": 6})
            assert await anext(reader) == [{"n": 6}]


async def test_the_end_of_the_subscription_reaches_the_reader() -> None:
    class Dropped:
        """A subscription whose connection breaks after one message."""

        async def __aiter__(self) -> AsyncIterator[Message]:
            yield {"n": 1}
            raise ConnectionError("the bus went away")

    reader = batches(cast(Subscription, Dropped()), limit=10)
    seen: list[Any] = []
    with pytest.raises(ConnectionError, match="went away"):
        async for batch in reader:
            seen.extend(batch)
    assert seen == [{"n": 1}]  # what came before the break is read first


async def test_a_reader_that_stops_leaves_no_task_reading() -> None:
    bus = InProcessBus()
    async with bus.subscribe("jobs") as subscription:
        async with contextlib.aclosing(batches(subscription, limit=10)) as reader:
            await bus.publish("jobs", {"n": 1})
            assert await anext(reader) == [{"n": 1}]
        reading = [t for t in asyncio.all_tasks() if t.get_name() == BATCHES_TASK]
        assert [t for t in reading if not t.done()] == []
