from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import cast

import strawberry

from graph.context import Info
from graph.types.monitoring import LogChunk, LogLine


@strawberry.type
class MonitoringSubscription:
    @strawberry.subscription(
        description="The job's output from the start (or `since`); with `follow`, live until "
        "the job ends and every line was sent"
    )
    async def job_logs(
        self, info: Info, id: str, since: datetime | None = None, follow: bool = True
    ) -> AsyncGenerator[LogChunk, None]:
        ctx = info.context
        batches = ctx.platform.monitoring.logs(await ctx.user(), id, since=since, follow=follow)
        async for batch in ctx.stream(batches):
            if batch:
                yield LogChunk(lines=cast(list[LogLine], batch))
