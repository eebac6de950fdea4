"""Rate limits on what a client may ask too often (logins), shared by every API process.

Built on the `limits` package: moving windows counted in Redis when the platform has one (so
all replicas count together), in this process's memory otherwise.
"""

from __future__ import annotations

import time

import limits
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


class RateLimits:
    def __init__(self, redis_url: str | None = None, *, prefix: str = "glia:") -> None:
        storage: Storage
        if redis_url:
            storage = RedisStorage(
                f"async+{redis_url}", implementation="redispy", key_prefix=f"{prefix}limits"
            )
        else:
            storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, rate: str, *key: str) -> float | None:
        """Count one attempt against ``rate`` (``"10/minute"``) for ``key``: None when it is
        allowed, else the seconds until it would be."""
        limit = limits.parse(rate)
        if await self._limiter.hit(limit, *key):
            return None
        stats = await self._limiter.get_window_stats(limit, *key)
        return max(0.0, stats.reset_time - time.time())
