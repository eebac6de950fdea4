from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

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
        user = await ctx.user()
        batches = await ctx.platform.monitoring.logs(
            ctx.session, user, id, since=since, follow=follow
        )
        # A log stream can last for days: hold no database connection while it does.
        await ctx.session.close()
        async for batch in batches:
            if batch:
                yield LogChunk(lines=[LogLine.from_domain(line) for line in batch])
