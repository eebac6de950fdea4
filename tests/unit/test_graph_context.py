"""`Context.stream`: relays a stream while the caller's token stays valid, and ends it with
UNAUTHENTICATED when the token is revoked or expires, whether it waits for an item or not;
any other cancellation is left alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from glia.clock import utcnow
from glia.errors import Unauthenticated
from graph.context import Context, operation_scope
from graph.streams import StreamLimits


class _Auth:
    def __init__(self) -> None:
        self.revoked = asyncio.Event()

    @contextlib.contextmanager
    def revocation(self, token_id: str) -> Iterator[asyncio.Event]:
        yield self.revoked


class _Items:
    """Items handed over one by one by the test; records whether it was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.closed = False

    async def stream(self) -> AsyncGenerator[int, None]:
        try:
            while True:
                yield await self.queue.get()
        finally:
            self.closed = True


@contextlib.asynccontextmanager
async def _relay(
    items: _Items, *, expires_at: datetime | None = None
) -> AsyncIterator[tuple[AsyncIterator[int], _Auth]]:
    auth = _Auth()
    platform = cast(Any, SimpleNamespace(auth=auth))
    context = Context(
        platform=platform,
        request=cast(Any, None),
        response=None,
        request_id="test",
        limits=StreamLimits(connections_per_user=1, subscriptions_per_user=1),
    )
    async with operation_scope(platform, streaming=lambda: True) as operation:
        operation.identity = cast(
            Any,
            SimpleNamespace(
                user=SimpleNamespace(id="u1"),
                token_id="t1",
                expires_at=expires_at or utcnow() + timedelta(hours=1),
            ),
        )
        relayed = context.stream(items.stream())
        try:
            yield relayed, auth
        finally:
            await cast(AsyncGenerator[int, None], relayed).aclose()


async def test_items_are_relayed_in_order_until_the_stream_ends() -> None:
    items = _Items()
    async with _relay(items) as (relayed, _):
        for i in range(3):
            items.queue.put_nowait(i)
        assert [await anext(relayed) for _ in range(3)] == [0, 1, 2]


async def test_revoked_while_waiting_ends_with_unauthenticated_and_closes_the_stream() -> None:
    items = _Items()
    async with _relay(items) as (relayed, auth):
        waiting = asyncio.ensure_future(anext(relayed))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        auth.revoked.set()
        # Waited for without a timeout of its own, which would cancel it too.
        await asyncio.wait({waiting}, timeout=5)
        assert waiting.done()
        with pytest.raises(Unauthenticated, match="revoked"):
            waiting.result()
        assert items.closed
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0


async def test_revoked_between_two_items_ends_before_the_next() -> None:
    items = _Items()
    async with _relay(items) as (relayed, auth):
        items.queue.put_nowait(1)
        items.queue.put_nowait(2)
        assert await anext(relayed) == 1
        auth.revoked.set()
        await asyncio.sleep(0.01)
        with pytest.raises(Unauthenticated):
            await anext(relayed)
        assert items.closed


async def test_an_expired_token_ends_the_stream() -> None:
    items = _Items()
    async with _relay(items, expires_at=utcnow() + timedelta(milliseconds=50)) as (relayed, _):
        waiting = asyncio.ensure_future(anext(relayed))
        await asyncio.wait({waiting}, timeout=5)
        assert waiting.done()
        with pytest.raises(Unauthenticated, match="expired"):
            waiting.result()


async def test_a_cancelled_consumer_is_cancelled_not_unauthenticated() -> None:
    items = _Items()
    async with _relay(items) as (relayed, auth):
        waiting = asyncio.ensure_future(anext(relayed))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert items.closed
        auth.revoked.set()  # too late to matter: nothing is cancelled on its account
        await asyncio.sleep(0.01)
