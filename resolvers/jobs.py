from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, cast

import strawberry

from glia import jobs as kernel
from glia.errors import BadInput, NotFound
from glia.pages import PageRequest
from graph.context import Info
from graph.types.base import model_from_input
from graph.types.jobs import (
    BumpJobLifeSpanInput,
    BumpJobLifeSpanPayload,
    Job,
    JobFilter,
    JobOrder,
    KillJobInput,
    KillJobPayload,
    SubmitJobInput,
    SubmitJobPayload,
)
from graph.types.pages import AFTER, BEFORE, FIRST, LAST, Connection

JOB_ID = strawberry.argument(description="The job's id, `job-<uuid>`")


def job_id(value: str) -> str:
    """An argument that must be a job id: anything else names no job."""
    if not kernel.is_job_id(value):
        raise NotFound(f"job {value!r} not found: a job id looks like job-<uuid>")
    return value


def job_reference(id: str | None, name: str | None) -> str:
    """What `job(id:, name:)` asks for; exactly one of the two. A name never looks like an id
    (submission refuses such names), so the two cannot be confused further down."""
    if (id is None) == (name is None):
        raise BadInput(
            "give the job's id or its name, not both and not neither",
            fields={"id": "give id or name", "name": "give id or name"},
        )
    if id is not None:
        return job_id(id)
    assert name is not None
    if kernel.is_job_id(name):
        raise BadInput(
            f"{name!r} is a job id, not a name: pass it as id",
            fields={"name": "looks like a job id"},
        )
    return name


@strawberry.type
class JobsQuery:
    @strawberry.field(description="The jobs the caller may read, a page at a time")
    async def jobs(
        self,
        info: Info,
        filter: Annotated[
            JobFilter | None, strawberry.argument(description="Which jobs; null for all")
        ] = None,
        order_by: Annotated[
            JobOrder | None,
            strawberry.argument(description="The order; null for the newest first"),
        ] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[Job]:
        ctx = info.context
        page = model_from_input(
            PageRequest, {"first": first, "after": after, "last": last, "before": before}
        )
        job_filter = model_from_input(kernel.JobFilter, filter) if filter else kernel.JobFilter()
        order = model_from_input(kernel.JobOrder, order_by) if order_by else None
        found = await ctx.platform.jobs.list(ctx.session, await ctx.user(), job_filter, page, order)
        return Connection[Job].of(found)

    @strawberry.field(
        description="A job by id, or by name: the latest of the caller's own jobs with that "
        "name. Give one of the two; NOT_FOUND for a job the caller may not read"
    )
    async def job(
        self,
        info: Info,
        id: Annotated[strawberry.ID | None, JOB_ID] = None,
        name: Annotated[
            str | None, strawberry.argument(description="A name given at submission")
        ] = None,
    ) -> Job:
        ctx = info.context
        reference = job_reference(id, name)
        return cast(Job, await ctx.platform.jobs.get(ctx.session, await ctx.user(), reference))


@strawberry.type
class JobsMutation:
    @strawberry.mutation(description="Submit a job; it starts as soon as its cluster can run it")
    async def submit_job(
        self,
        info: Info,
        input: Annotated[
            SubmitJobInput, strawberry.argument(description="What to run, where and how")
        ],
    ) -> SubmitJobPayload:
        ctx = info.context
        submission = model_from_input(kernel.JobSubmission, input)
        job = await ctx.platform.jobs.submit(ctx.session, await ctx.user(), submission)
        return SubmitJobPayload(job=cast(Job, job))

    @strawberry.mutation(
        description="Stop a job: SIGTERM, then SIGKILL after the grace period; waits a few "
        "seconds for it to end"
    )
    async def kill_job(
        self,
        info: Info,
        input: Annotated[KillJobInput, strawberry.argument(description="Which job")],
    ) -> KillJobPayload:
        ctx = info.context
        user = await ctx.user()
        job, already_finished = await ctx.platform.jobs.kill(user, job_id(str(input.id)))
        return KillJobPayload(job=cast(Job, job), already_finished=already_finished)


@strawberry.type
class JobLifeSpanMutation:
    @strawberry.mutation(
        description="Extend an unfinished job's life span (the job's writers): its cluster "
        "stops it that much later"
    )
    async def bump_job_life_span(
        self,
        info: Info,
        input: Annotated[
            BumpJobLifeSpanInput, strawberry.argument(description="Which, by how much")
        ],
    ) -> BumpJobLifeSpanPayload:
        ctx = info.context
        job = await ctx.platform.life_spans.bump(
            ctx.session, await ctx.user(), job_id(str(input.id)), input.seconds
        )
        return BumpJobLifeSpanPayload(job=cast(Job, job))


@strawberry.type
class JobsSubscription:
    @strawberry.subscription(
        description="Every job the caller may read, each time it is submitted or changes "
        "status (a live listing; a slow reader may miss one, so re-read `jobs` now and then)"
    )
    async def job_changes(self, info: Info) -> AsyncGenerator[Job, None]:
        ctx = info.context
        async for job in ctx.stream(ctx.platform.jobs.changes(await ctx.user())):
            yield cast(Job, job)

    @strawberry.subscription(
        description="The job now, then again on every status change; ends after a final status"
    )
    async def job_status(
        self, info: Info, id: Annotated[strawberry.ID, JOB_ID]
    ) -> AsyncGenerator[Job, None]:
        ctx = info.context
        changes = ctx.platform.jobs.status_changes(await ctx.user(), job_id(id))
        async for job in ctx.stream(changes):
            yield cast(Job, job)
