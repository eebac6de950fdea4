"""The feed of workload state changes behind ``Gateway.watch``: numbered, replayable, bounded.

Every change gets the next sequence number of this feed; a cursor is ``<epoch>:<seq>``, the
epoch being new each time the feed is made (a runtime that restarts starts a new one, so an
old cursor cannot be taken for a position in the new sequence). The last ``history`` events
are kept to replay to a watcher that resumes from a cursor; each watcher has a queue of at
most ``queue_limit`` events, and one that falls further behind gets `WatchExpired` rather than
making the feed hold ever more for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cluster_gateway.gateway import WatchExpired, WorkloadEvent, WorkloadState

DEFAULT_HISTORY = 4096
DEFAULT_QUEUE_LIMIT = 10_000


class FeedWatch:
    """One watcher's view of a `WorkloadFeed` (a ``WorkloadWatch``)."""

    def __init__(self, cursor: str, limit: int) -> None:
        self._cursor = cursor
        self._limit = limit
        self._events: deque[WorkloadEvent] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._overflowed = False

    @property
    def cursor(self) -> str:
        return self._cursor

    def push(self, event: WorkloadEvent) -> None:
        if self._closed or self._overflowed:
            return
        if len(self._events) >= self._limit:
            self._overflowed = True
            self._events.clear()
        else:
            self._events.append(event)
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[WorkloadEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[WorkloadEvent]:
        while True:
            if self._overflowed:
                raise WatchExpired(
                    f"the watcher fell more than {self._limit} changes behind: watch again"
                )
            if self._events:
                yield self._events.popleft()
                continue
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()


class WorkloadFeed:
    def __init__(
        self, *, history: int = DEFAULT_HISTORY, queue_limit: int = DEFAULT_QUEUE_LIMIT
    ) -> None:
        self._epoch = uuid.uuid4().hex[:12]
        self._seq = 0
        self._history: deque[WorkloadEvent] = deque(maxlen=history)
        self._queue_limit = queue_limit
        self._watches: set[FeedWatch] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def cursor(self) -> str:
        """The position after the last event published."""
        return f"{self._epoch}:{self._seq}"

    def publish(self, state: WorkloadState) -> WorkloadEvent:
        self._seq += 1
        event = WorkloadEvent(cursor=self.cursor, state=state)
        self._history.append(event)
        for watch in self._watches:
            watch.push(event)
        return event

    @asynccontextmanager
    async def watch(self, *, after: str | None = None) -> AsyncIterator[FeedWatch]:
        """Subscribe now (from the current position, or replaying what followed ``after``)."""
        replay = self._since(after) if after is not None else []
        watch = FeedWatch(after if after is not None else self.cursor, self._queue_limit)
        for event in replay:
            watch.push(event)
        if self._closed:  # nothing will come: it ends after the replay
            watch.close()
        else:
            self._watches.add(watch)
        try:
            yield watch
        finally:
            self._watches.discard(watch)
            watch.close()

    def close(self) -> None:
        """End every watch, and those entered later: their iterations stop after the events
        already queued."""
        self._closed = True
        for watch in self._watches:
            watch.close()
        self._watches.clear()

    def _since(self, cursor: str) -> list[WorkloadEvent]:
        epoch, _, number = cursor.partition(":")
        try:
            seq = int(number)
        except ValueError:
            raise WatchExpired(f"not a watch cursor: {cursor!r}") from None
        if epoch != self._epoch or seq > self._seq:
            raise WatchExpired("the cursor is from before the gateway restarted: watch again")
        oldest = self._seq - len(self._history)  # the last seq no longer kept
        if seq < oldest:
            raise WatchExpired(
                f"the cursor is {self._seq - seq} changes old; {len(self._history)} are kept"
            )
        return list(self._history)[len(self._history) - (self._seq - seq) :]
