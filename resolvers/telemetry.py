from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, cast

import strawberry

from graph.context import Info
from graph.types.telemetry import TelemetryHistory, TelemetrySample
from resolvers.jobs import JOB_ID, job_id


@strawberry.type
class TelemetryQuery:
    @strawberry.field(
        description="What the job used over its life (or between `since` and `until`), in "
        "points of `step` seconds or longer: at most 1,000 points, and samples older than an "
        "hour are kept as one-minute points. NOT_FOUND for a job the caller may not read"
    )
    async def job_telemetry_history(
        self,
        info: Info,
        id: Annotated[strawberry.ID, JOB_ID],
        since: Annotated[
            datetime | None,
            strawberry.argument(description="From this time (default: the job's submission)"),
        ] = None,
        until: Annotated[
            datetime | None, strawberry.argument(description="Up to this time (default: now)")
        ] = None,
        step: Annotated[
            int | None,
            strawberry.argument(
                description="Seconds per point, at least 1 (default: the least "
                "that keeps the answer within 1,000 points)"
            ),
        ] = None,
    ) -> TelemetryHistory:
        ctx = info.context
        history = await ctx.platform.telemetry.history(
            await ctx.user(), job_id(id), since=since, until=until, step_s=step
        )
        return cast(TelemetryHistory, history)


@strawberry.type
class TelemetrySubscription:
    @strawberry.subscription(
        description="The job's samples as its cluster takes them, about one a second while it "
        "runs; ends when the job ends (at once for one that is not running). NOT_FOUND for a "
        "job the caller may not read"
    )
    async def job_telemetry(
        self, info: Info, id: Annotated[strawberry.ID, JOB_ID]
    ) -> AsyncGenerator[TelemetrySample, None]:
        ctx = info.context
        samples = ctx.platform.telemetry.live(await ctx.user(), job_id(id))
        async for sample in ctx.stream(samples):
            yield cast(TelemetrySample, sample)
