"""Bounds on what one user may hold open at once, and the end of a stream whose token ends.

A subscription can last for days: `Context.stream` relays a service's stream only while the
caller's token stays valid (revoked here or in another process, or expired, it ends the
stream with UNAUTHENTICATED within moments), and `StreamLimits` caps the WebSocket
connections and subscriptions of each user in this process (TOO_MANY_REQUESTS past them).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from glia.errors import TooManyRequests


class StreamLimits:
    def __init__(self, *, connections_per_user: int, subscriptions_per_user: int) -> None:
        self.connections_per_user = connections_per_user
        self.subscriptions_per_user = subscriptions_per_user
        self._connections: Counter[str] = Counter()
        self._subscriptions: Counter[str] = Counter()

    def open_connection(self, user_id: str) -> bool:
        """Count a connection of the user; False (counting nothing) when they hold too many."""
        if self._connections[user_id] >= self.connections_per_user:
            return False
        self._connections[user_id] += 1
        return True

    def close_connection(self, user_id: str) -> None:
        self._connections[user_id] -= 1
        if self._connections[user_id] <= 0:
            del self._connections[user_id]

    @contextlib.contextmanager
    def subscription(self, user_id: str) -> Iterator[None]:
        if self._subscriptions[user_id] >= self.subscriptions_per_user:
            raise TooManyRequests(
                f"you have {self.subscriptions_per_user} subscriptions open: end some first"
            )
        self._subscriptions[user_id] += 1
        try:
            yield
        finally:
            self._subscriptions[user_id] -= 1
            if self._subscriptions[user_id] <= 0:
                del self._subscriptions[user_id]
