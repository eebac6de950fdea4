from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import cast

import strawberry

from control_plane.services.jobs.records import encode_cursor
from glia import jobs as kernel
from glia.errors import BadInput
from graph.context import Info
from graph.types.base import model_from_input
from graph.types.jobs import Job, JobConnection, JobEdge, JobFilter, PageInfo, SubmitJobInput


@strawberry.type
class JobsQuery:
    @strawberry.field(description="Jobs the caller may see, newest first")
    async def jobs(
        self,
        info: Info,
        filter: JobFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> JobConnection:
        ctx = info.context
        limit = ctx.platform.settings.page_size_max
        if not 0 <= first <= limit:
            raise BadInput(f"first must be between 0 and {limit}", fields={"first": first})
        job_filter = model_from_input(kernel.JobFilter, filter) if filter else kernel.JobFilter()
        page = await ctx.platform.jobs.list(
            ctx.session, await ctx.user(), job_filter, first=first, after=after
        )
        return JobConnection(
            edges=[
                JobEdge(cursor=encode_cursor(job.created_at, job.id), node=cast(Job, job))
                for job in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )

    @strawberry.field(description="A job by id, or by name among the caller's jobs")
    async def job(self, info: Info, id: str) -> Job:
        ctx = info.context
        return cast(Job, await ctx.platform.jobs.get(ctx.session, await ctx.user(), id))


@strawberry.type
class JobsMutation:
    @strawberry.mutation(description="Submit a job; it starts as soon as its cluster can run it")
    async def submit_job(self, info: Info, input: SubmitJobInput) -> Job:
        ctx = info.context
        submission = model_from_input(kernel.JobSubmission, input)
        return cast(Job, await ctx.platform.jobs.submit(ctx.session, await ctx.user(), submission))

    @strawberry.mutation(description="Stop a job; killing a finished job returns it unchanged")
    async def kill_job(self, info: Info, id: str) -> Job:
        ctx = info.context
        return cast(Job, await ctx.platform.jobs.kill(await ctx.user(), id))


@strawberry.type
class JobsSubscription:
    @strawberry.subscription(
        description="The job now, then again on every status change; ends after a final status"
    )
    async def job_status(self, info: Info, id: str) -> AsyncGenerator[Job, None]:
        ctx = info.context
        async for job in ctx.stream(ctx.platform.jobs.status_changes(await ctx.user(), id)):
            yield cast(Job, job)
