"""Jobs as stored: rows to kernel `Job` values, the queries the other parts share, cursors."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from control_plane.services.auth import user_from_row
from control_plane.store.models import ClusterRow, JobRow, JobStatusRow, UserRow
from glia.auth import User
from glia.clusters import Resources
from glia.errors import NotFound
from glia.jobs import (
    UNFINISHED_STATUSES,
    Job,
    JobReason,
    JobStatus,
    JobStatusItem,
    RestartPolicy,
    is_job_id,
    priority_of_rank,
)
from glia.quotas import from_micro
from glia.volumes import SecretEnv, Volume


def status_item_from_row(row: JobStatusRow) -> JobStatusItem:
    return JobStatusItem(
        status=JobStatus(row.status),
        reason=JobReason(row.reason) if row.reason else None,
        description=row.description,
        exit_code=row.exit_code,
        at=row.at,
    )


def job_from_row(row: JobRow, owner: User, cluster_name: str, *, with_history: bool) -> Job:
    return Job(
        id=row.id,
        name=row.name,
        uri=row.uri,
        owner=owner,
        cluster_name=cluster_name,
        org=row.org,
        project=row.project,
        preset=row.preset,
        resources=Resources(
            cpu=row.cpu,
            memory_mb=row.memory_mb,
            gpu=row.gpu,
            pids_limit=row.pids_limit,
            gpu_model=row.gpu_model,
            shm_mb=row.shm_mb,
        ),
        command=tuple(row.command),
        env=dict(row.env),
        working_dir=row.working_dir,
        storage_workdir=row.storage_workdir,
        volumes=tuple(Volume.model_validate(v) for v in row.volumes or ()),
        secret_env=tuple(SecretEnv.model_validate(v) for v in row.secret_env or ()),
        tags=tuple(row.tags),
        description=row.description,
        life_span_s=row.life_span_s,
        http_port=row.http_port,
        http_auth=row.http_auth,
        http_url=row.http_url,
        pass_config=row.pass_config,
        tty=row.tty,
        status=JobStatus(row.status),
        reason=JobReason(row.reason) if row.reason else None,
        status_description=row.status_description,
        exit_code=row.exit_code,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        history=tuple(status_item_from_row(h) for h in row.history) if with_history else (),
        priority=priority_of_rank(row.priority),
        schedule_timeout_s=row.schedule_timeout_s,
        restart_policy=RestartPolicy(row.restart_policy),
        restart_count=row.restart_count,
        preemptible=row.preemptible,
        credits_per_hour=row.credits_per_hour,
        credits_spent=from_micro(row.credits_spent_micro),
    )


def select_jobs(*, with_history: bool) -> Select[JobRow, UserRow, str]:
    """Jobs with their owner and cluster name, in one statement."""
    query = (
        select(JobRow, UserRow, ClusterRow.name)
        .join(UserRow, UserRow.id == JobRow.owner_id)
        .join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
    )
    if with_history:
        # A job has a handful of history rows to repeat its columns for.
        query = query.options(joinedload(JobRow.history))
    return query


async def find_job(session: AsyncSession, user: User, id_or_name: str) -> Job:
    """A job by id, or the latest of the caller's own jobs with that name; NotFound else.

    No permission check: callers check it, and answer NotFound for a job the caller may not
    see, so nobody learns that it exists.
    """
    query = select_jobs(with_history=True)
    if is_job_id(id_or_name):
        query = query.where(JobRow.id == id_or_name)
    else:
        query = (
            query.where(JobRow.owner_id == user.id, JobRow.name == id_or_name)
            .order_by(JobRow.created_at.desc())
            .limit(1)
        )
    found = (await session.execute(query)).unique().first()
    if found is None:
        raise NotFound(f"job {id_or_name!r} not found")
    row, owner, cluster_name = found
    job = job_from_row(row, user_from_row(owner), cluster_name, with_history=True)
    if (
        row.status in (JobStatus.PENDING.value, JobStatus.SUSPENDED.value)
        and row.scheduled_at is None
        and not row.seat_wait
    ):
        job = job.model_copy(update={"queue_position": await queue_position(session, row)})
    return job


def waiting() -> ColumnElement[bool]:
    """The condition of a job that waits in its cluster's queue: pending, or suspended
    (preempted) and stopped, not handed to the cluster, not waiting for a seat."""
    return and_(
        JobRow.status.in_([JobStatus.PENDING.value, JobStatus.SUSPENDED.value]),
        JobRow.scheduled_at.is_(None),
        JobRow.seat_wait.is_(False),
    )


async def queue_positions(session: AsyncSession, jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` with the queue place of each that waits in its cluster's queue, counted in
    one statement (a listing's page): each waiting job's rank among its cluster's waiting
    jobs, in the scheduler's order."""
    candidates = [job.id for job in jobs if job.status in (JobStatus.PENDING, JobStatus.SUSPENDED)]
    if not candidates:
        return list(jobs)
    clusters = select(JobRow.cluster_id).where(JobRow.id.in_(candidates))
    ranked = (
        select(
            JobRow.id.label("id"),
            func.row_number()
            .over(
                partition_by=JobRow.cluster_id,
                order_by=(JobRow.priority.desc(), JobRow.created_at, JobRow.id),
            )
            .label("place"),
        )
        .where(waiting(), JobRow.cluster_id.in_(clusters))
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.id, ranked.c.place).where(ranked.c.id.in_(candidates))
    )
    places = {job_id: int(place) for job_id, place in rows}
    return [
        job.model_copy(update={"queue_position": places[job.id]}) if job.id in places else job
        for job in jobs
    ]


async def queue_position(session: AsyncSession, row: JobRow) -> int:
    """A waiting job's place in its cluster's queue: 1 + the waiting jobs before it (higher
    priority, or the same and submitted earlier). The order is the scheduler's."""
    ahead = await session.scalar(
        select(func.count())
        .select_from(JobRow)
        .where(
            JobRow.cluster_id == row.cluster_id,
            waiting(),
            or_(
                JobRow.priority > row.priority,
                and_(
                    JobRow.priority == row.priority,
                    or_(
                        JobRow.created_at < row.created_at,
                        and_(JobRow.created_at == row.created_at, JobRow.id < row.id),
                    ),
                ),
            ),
        )
    )
    return int(ahead or 0) + 1


async def unfinished_jobs(session: AsyncSession, cluster_name: str) -> list[Job]:
    rows = await session.execute(
        select_jobs(with_history=False).where(
            ClusterRow.name == cluster_name,
            JobRow.status.in_([s.value for s in UNFINISHED_STATUSES]),
        )
    )
    return [
        job_from_row(row, user_from_row(owner), cluster, with_history=False)
        for row, owner, cluster in rows
    ]


async def job_uid(session: AsyncSession, job_id: str) -> int | None:
    """The uid the job runs as (its owner's at submission)."""
    uid: int | None = await session.scalar(select(JobRow.uid).where(JobRow.id == job_id))
    return uid


async def load_history(
    session: AsyncSession, job_ids: Sequence[str]
) -> list[tuple[JobStatusItem, ...]]:
    rows = await session.scalars(
        select(JobStatusRow).where(JobStatusRow.job_id.in_(set(job_ids))).order_by(JobStatusRow.id)
    )
    by_job: dict[str, list[JobStatusItem]] = {job_id: [] for job_id in job_ids}
    for row in rows:
        by_job[row.job_id].append(status_item_from_row(row))
    return [tuple(by_job[job_id]) for job_id in job_ids]
