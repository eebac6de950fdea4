from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import strawberry

from glia.errors import BadInput
from glia.services import jobs as service
from graph.context import Info
from graph.types.jobs import (
    Job,
    JobConnection,
    JobEdge,
    JobFilter,
    JobStatus,
    PageInfo,
    SubmitJobInput,
)

# A status subscription re-reads the job this often even when no change was announced, so a
# message lost between processes delays an update instead of losing it.
_STATUS_RECHECK_S = 5.0


def _filter(job_filter: JobFilter | None) -> service.JobFilter:
    if job_filter is None:
        return service.JobFilter()
    return service.JobFilter(
        statuses=frozenset(service.JobStatus(s.value) for s in job_filter.statuses)
        if job_filter.statuses
        else None,
        name=job_filter.name,
        tags=tuple(job_filter.tags or ()),
        since=job_filter.since,
        cluster=job_filter.cluster,
    )


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
            raise BadInput(f"first must be between 0 and {limit}")
        page = await ctx.platform.jobs.list(
            ctx.session, await ctx.user(), _filter(filter), first=first, after=after
        )
        return JobConnection(
            edges=[
                JobEdge(
                    cursor=service.encode_cursor(job.created_at, job.id), node=Job.from_domain(job)
                )
                for job in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )

    @strawberry.field(description="A job by id, or by name among the caller's jobs")
    async def job(self, info: Info, id: str) -> Job:
        ctx = info.context
        return Job.from_domain(await ctx.platform.jobs.get(ctx.session, await ctx.user(), id))


@strawberry.type
class JobsMutation:
    @strawberry.mutation
    async def submit_job(self, info: Info, input: SubmitJobInput) -> Job:
        ctx = info.context
        request = service.SubmitRequest(
            command=input.command,
            cluster=input.cluster,
            preset=input.preset,
            env={var.name: var.value for var in input.env or ()},
            working_dir=input.working_dir,
            name=input.name,
            tags=tuple(input.tags or ()),
            description=input.description,
            life_span_s=input.life_span_seconds,
        )
        if input.env and len({var.name for var in input.env}) != len(input.env):
            raise BadInput("an environment variable is given twice")
        job = await ctx.platform.jobs.submit(ctx.session, await ctx.user(), request)
        return Job.from_domain(job)

    @strawberry.mutation(description="Stop a job; killing a finished job returns it unchanged")
    async def kill_job(self, info: Info, id: str) -> Job:
        ctx = info.context
        return Job.from_domain(await ctx.platform.jobs.kill(ctx.session, await ctx.user(), id))


@strawberry.type
class JobsSubscription:
    @strawberry.subscription(
        description="The job now, then again on every status change; ends after a final status"
    )
    async def job_status(self, info: Info, id: str) -> AsyncGenerator[Job, None]:
        ctx = info.context
        platform = ctx.platform
        user = await ctx.user()
        job_id = id
        if not service.is_job_id(id):
            # A name: resolve it (and check access) before knowing what to subscribe to.
            job_id = (await platform.jobs.get(ctx.session, user, id)).id
        await ctx.session.close()
        async with platform.bus.subscribe(service.status_channel(job_id)) as updates:
            messages = aiter(updates)
            # One pending read of the next message, kept across loops: cancelling it on a
            # timeout would close the subscription's iterator.
            next_message: asyncio.Future[object] = asyncio.ensure_future(anext(messages))
            last: tuple[service.JobStatus, int] | None = None
            try:
                while True:
                    # Read after subscribing: no change can fall between the read and the wait.
                    async with platform.db.session() as session:
                        job = await platform.jobs.get(session, user, job_id)
                    marker = (job.status, len(job.history))
                    if marker != last:
                        last = marker
                        yield Job.from_domain(job)
                    if job.status.is_finished:
                        return
                    done, _ = await asyncio.wait({next_message}, timeout=_STATUS_RECHECK_S)
                    if done:
                        next_message.result()
                        next_message = asyncio.ensure_future(anext(messages))
            finally:
                next_message.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await next_message


__all__ = ["JobStatus", "JobsMutation", "JobsQuery", "JobsSubscription"]
