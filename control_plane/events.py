"""The event bus: fan-out of small JSON messages between the parts of the control plane.

`InProcessBus` serves one process (the embedded default). `RedisBus` carries the same
messages between API replicas through Redis pub/sub. Messages are hints that something
changed (a job's status, the ACL policy); the database stays the source of truth, so a
subscriber that misses one reads the current state and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Message = dict[str, Any]

# A slow subscriber drops messages rather than growing without bound or slowing publishers.
_QUEUE_LIMIT = 1000


class Subscription(Protocol):
    """An open subscription: registered on ``__aenter__``, so a caller can subscribe, then
    read the current state, and miss no message published in between."""

    async def __aenter__(self) -> Subscription: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[Message]: ...


class EventBus(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(self, channel: str) -> Subscription: ...

    async def close(self) -> None: ...


class _InProcessSubscription:
    def __init__(self, bus: InProcessBus, channel: str) -> None:
        self._bus = bus
        self._channel = channel
        self._queue: asyncio.Queue[Message] = asyncio.Queue(_QUEUE_LIMIT)

    async def __aenter__(self) -> _InProcessSubscription:
        self._bus._queues[self._channel].add(self._queue)
        return self

    async def __aexit__(self, *exc: object) -> None:
        queues = self._bus._queues.get(self._channel)
        if queues is not None:
            queues.discard(self._queue)
            if not queues:
                del self._bus._queues[self._channel]

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            yield await self._queue.get()


class InProcessBus:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[Message]]] = defaultdict(set)

    async def publish(self, channel: str, message: Message) -> None:
        for queue in list(self._queues.get(channel, ())):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                logger.warning("event bus: dropping a message on %s for a slow subscriber", channel)

    def subscribe(self, channel: str) -> _InProcessSubscription:
        return _InProcessSubscription(self, channel)

    async def close(self) -> None:
        self._queues.clear()


class _RedisSubscription:
    def __init__(self, bus: RedisBus, channel: str) -> None:
        self._channel = bus._prefix + channel
        self._pubsub = bus._redis.pubsub(ignore_subscribe_messages=True)

    async def __aenter__(self) -> _RedisSubscription:
        await self._pubsub.subscribe(self._channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.unsubscribe()
        await self._pubsub.aclose()

    async def __aiter__(self) -> AsyncIterator[Message]:
        async for raw in self._pubsub.listen():
            if raw.get("type") != "message":
                continue
            try:
                yield json.loads(raw["data"])
            except ValueError:
                logger.warning("event bus: ignoring a malformed message on %s", self._channel)


class RedisBus:
    """Redis pub/sub, one connection per subscription (subscriptions are few and long)."""

    def __init__(self, url: str, *, prefix: str = "glia:") -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix

    async def publish(self, channel: str, message: Message) -> None:
        await self._redis.publish(self._prefix + channel, json.dumps(message))

    def subscribe(self, channel: str) -> _RedisSubscription:
        return _RedisSubscription(self, channel)

    async def close(self) -> None:
        await self._redis.aclose()


# The name of the task that reads a subscription for `batches`.
BATCHES_TASK = "event bus batches"


async def batches(subscription: Subscription, limit: int) -> AsyncGenerator[list[Message]]:
    """The subscription's messages, a batch at a time: each batch holds what arrived while
    the reader handled the last one, so a reader that does one read per batch keeps up with
    a burst. Past ``limit`` waiting messages the oldest are dropped, as the bus drops them
    for any slow subscriber. Ends when the subscription does, raising what ended it.

    Close it (``contextlib.aclosing``) before the subscription: its reading task stops
    then, not whenever the generator is collected."""
    waiting: deque[Message] = deque(maxlen=limit)
    arrived = asyncio.Event()

    async def collect() -> None:
        async for message in subscription:
            waiting.append(message)
            arrived.set()

    collector = asyncio.create_task(collect(), name=BATCHES_TASK)
    try:
        while True:
            if not arrived.is_set():
                woken = asyncio.ensure_future(arrived.wait())
                try:
                    await asyncio.wait({woken, collector}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    woken.cancel()
                if not arrived.is_set():  # the subscription ended, with nothing left to read
                    collector.result()  # raises what ended it
                    return
            arrived.clear()
            batch = list(waiting)
            waiting.clear()
            yield batch
    finally:
        # The reader stopped (or the subscription ended): nothing more is read, and an error
        # of the collector's that nobody read is moot.
        collector.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await collector


def create_bus(redis_url: str | None, *, prefix: str = "glia:") -> EventBus:
    return RedisBus(redis_url, prefix=prefix) if redis_url else InProcessBus()
