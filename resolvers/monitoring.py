from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry

from graph.context import Info
from graph.types.monitoring import LogChunk
from graph.types.scalars import BigInt
from resolvers.jobs import JOB_ID, job_id


@strawberry.type
class MonitoringSubscription:
    @strawberry.subscription(
        description="The job's output from the start (or `since`); with `follow`, live until "
        "the job ends and every line was sent"
    )
    async def job_logs(
        self,
        info: Info,
        id: Annotated[strawberry.ID, JOB_ID],
        since: Annotated[
            datetime | None,
            strawberry.argument(
                description="Only lines read at or after this time, with its time zone (UTC: Z)"
            ),
        ] = None,
        follow: Annotated[
            bool,
            strawberry.argument(
                description="Keep the subscription open for new lines until the job ends; "
                "false ends it after what is there now"
            ),
        ] = True,
        offset: Annotated[
            BigInt | None,
            strawberry.argument(
                description="Go on from here: the `offset` of the last chunk received, to "
                "resume after a lost connection without losing or repeating a line"
            ),
        ] = None,
        tail: Annotated[
            int | None,
            strawberry.argument(description="Start with the last this many lines"),
        ] = None,
    ) -> AsyncGenerator[LogChunk, None]:
        ctx = info.context
        user = await ctx.user()
        batches = ctx.platform.monitoring.logs(
            user, job_id(id), since=since, offset=offset, tail=tail, follow=follow
        )
        async for batch in ctx.stream(batches):
            # A chunk is one stream's run of lines, so that its `text` keeps stdout and stderr
            # apart; a batch is already bounded, so each of its runs is too.
            for part in batch.by_stream():
                yield LogChunk.of(part)
