"""The jobs API of the control plane: submit, read, list, kill, and watch a job's status.

The parts live beside this module: `submission` (from a request to a started workload),
`status` (the status machine), `reconcile` (agreement with the clusters), `records` (rows and
queries). Streams (`status_changes`) and waits (`kill`) open short sessions of their own and
hold no database connection while they wait.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cluster_gateway.gateway import WorkloadPhase
from control_plane.events import EventBus
from control_plane.services.acl import AclService, visible_filter
from control_plane.services.auth import user_from_row
from control_plane.services.clusters import GatewayRegistry
from control_plane.services.jobs.records import (
    decode_cursor,
    encode_cursor,
    find_job,
    job_from_row,
    load_history,
    select_jobs,
)
from control_plane.services.jobs.status import JobStatusMachine, status_channel
from control_plane.services.jobs.submission import JobSubmitter
from control_plane.store.database import Database
from control_plane.store.models import ClusterRow, JobRow
from glia.acl import Action
from glia.auth import User
from glia.errors import BadInput, NotFound
from glia.jobs import (
    Job,
    JobFilter,
    JobReason,
    JobStatus,
    JobStatusItem,
    JobSubmission,
    is_job_id,
)

logger = logging.getLogger(__name__)

# How long `kill` waits for the workload to end before returning the job as it is.
KILL_WAIT_S = 3.0
# A status stream re-reads the job this often even when no change was announced, so a
# message lost between processes delays an update instead of losing it.
STATUS_RECHECK_S = 5.0


class JobPage:
    """One page of a job listing; ``end_cursor`` continues it."""

    def __init__(
        self, items: builtins.list[Job], total_count: int, end_cursor: str | None, more: bool
    ) -> None:
        self.items = items
        self.total_count = total_count
        self.end_cursor = end_cursor
        self.has_next_page = more


class JobsService:
    def __init__(
        self,
        *,
        db: Database,
        acl: AclService,
        bus: EventBus,
        gateways: GatewayRegistry,
        status: JobStatusMachine,
        submitter: JobSubmitter,
        kill_grace_s: float,
    ) -> None:
        self._db = db
        self._acl = acl
        self._bus = bus
        self._gateways = gateways
        self._status = status
        self._submitter = submitter
        self._kill_grace_s = kill_grace_s

    async def submit(self, session: AsyncSession, user: User, submission: JobSubmission) -> Job:
        return await self._submitter.submit(session, user, submission)

    async def get(self, session: AsyncSession, user: User, id_or_name: str) -> Job:
        """The job, if it exists and ``user`` may read it; NotFound otherwise, the same
        answer in both cases, so nobody learns of a job they may not see."""
        job = await find_job(session, user, id_or_name)
        await self._require(user, job, Action.READ, id_or_name)
        return job

    async def _require(self, user: User, job: Job, action: Action, asked_for: str) -> None:
        """NotFound for a caller who may not read the job; Forbidden for one who may read it
        but not do ``action``."""
        if not await self._acl.check(user.subject, job.uri, Action.READ):
            raise NotFound(f"job {asked_for!r} not found")
        await self._acl.require(user.subject, job.uri, action)

    async def list(
        self,
        session: AsyncSession,
        user: User,
        job_filter: JobFilter,
        *,
        first: int,
        after: str | None = None,
    ) -> JobPage:
        if first < 0:
            raise BadInput("first must not be negative", fields={"first": first})
        position = decode_cursor(after) if after is not None else None
        prefixes = self._acl.visible_prefixes(user.subject, "job", Action.READ)
        if prefixes is not None and not prefixes:
            return JobPage([], 0, None, False)
        conditions: builtins.list[ColumnElement[bool]] = [visible_filter(JobRow.uri, prefixes)]
        if job_filter.statuses:
            conditions.append(JobRow.status.in_([s.value for s in job_filter.statuses]))
        if job_filter.name is not None:
            conditions.append(JobRow.name == job_filter.name)
        if job_filter.since is not None:
            conditions.append(JobRow.created_at >= job_filter.since)
        if job_filter.cluster is not None:
            conditions.append(ClusterRow.name == job_filter.cluster)
        total = (
            await session.scalar(
                select(func.count())
                .select_from(JobRow)
                .join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
                .where(*conditions)
            )
            if not job_filter.tags
            else None
        )
        page_conditions = list(conditions)
        if position is not None:
            created, job_id = position
            page_conditions.append(
                or_(
                    JobRow.created_at < created,
                    and_(JobRow.created_at == created, JobRow.id < job_id),
                )
            )
        query = (
            select_jobs(with_history=False)
            .where(*page_conditions)
            .order_by(JobRow.created_at.desc(), JobRow.id.desc())
        )
        if job_filter.tags:
            # Tags live in a JSON list: filter them here, portable across dialects.
            wanted = set(job_filter.tags)
            items = [
                job_from_row(row, user_from_row(owner), cluster, with_history=False)
                for row, owner, cluster in (await session.execute(query)).all()
                if wanted <= set(row.tags)
            ]
            total = len(items) if after is None else None
            items = items[: first + 1]
        else:
            rows = (await session.execute(query.limit(first + 1))).all()
            items = [
                job_from_row(row, user_from_row(owner), cluster, with_history=False)
                for row, owner, cluster in rows
            ]
        more = len(items) > first
        items = items[:first]
        end_cursor = encode_cursor(items[-1].created_at, items[-1].id) if items else None
        return JobPage(items, total if total is not None else len(items), end_cursor, more)

    async def history(
        self, session: AsyncSession, job_ids: Sequence[str]
    ) -> builtins.list[tuple[JobStatusItem, ...]]:
        """Status histories of jobs the caller already got (and so may read)."""
        return await load_history(session, job_ids)

    async def count_by_status(self, session: AsyncSession) -> dict[JobStatus, int]:
        rows = await session.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
        counts = {status: 0 for status in JobStatus}
        for status, count in rows.all():
            counts[JobStatus(status)] = count
        return counts

    async def kill(self, user: User, id_or_name: str) -> Job:
        """Stop a job and wait a little for it to end; a finished job is returned unchanged."""
        async with self._db.session() as session:
            job = await find_job(session, user, id_or_name)
        await self._require(user, job, Action.WRITE, id_or_name)
        if job.status.is_finished:
            return job
        async with self._bus.subscribe(status_channel(job.id)) as updates:
            gateway = self._gateways.get(job.cluster_name)
            [state] = await gateway.states([job.id])
            if state.phase is WorkloadPhase.MISSING or (
                state.phase is WorkloadPhase.EXITED and state.reason in (None, JobReason.LOST)
            ):
                # Nothing runs: the kill is the end of it.
                async with self._db.session() as session:
                    await self._status.transition(
                        session,
                        job.id,
                        JobStatus.CANCELLED,
                        reason=JobReason.USER_REQUESTED,
                        description=f"killed by {user.name}",
                    )
            else:
                await gateway.stop(job.id, grace_s=self._kill_grace_s)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(KILL_WAIT_S):
                        async for message in updates:
                            if JobStatus(message["status"]).is_finished:
                                break
        async with self._db.session() as session:
            return await find_job(session, user, job.id)

    async def status_changes(self, user: User, id_or_name: str) -> AsyncGenerator[Job, None]:
        """The job now, then again on every status change; ends after a final status.

        Checks access before the first value and on every read (a grant revoked meanwhile
        ends the stream with NotFound).
        """
        job_id = id_or_name
        if not is_job_id(id_or_name):  # a name: resolve it (and check access) first
            async with self._db.session() as session:
                job_id = (await self.get(session, user, id_or_name)).id
        async with self._bus.subscribe(status_channel(job_id)) as updates:
            messages = aiter(updates)
            # One pending read of the next message, kept across loops: cancelling it on a
            # timeout would close the subscription's iterator.
            next_message: asyncio.Future[object] = asyncio.ensure_future(anext(messages))
            last: tuple[JobStatus, int] | None = None
            try:
                while True:
                    # Read after subscribing: no change can fall between the read and the wait.
                    async with self._db.session() as session:
                        job = await self.get(session, user, job_id)
                    marker = (job.status, len(job.history))
                    if marker != last:
                        last = marker
                        yield job
                    if job.status.is_finished:
                        return
                    done, _ = await asyncio.wait({next_message}, timeout=STATUS_RECHECK_S)
                    if done:
                        next_message.result()
                        next_message = asyncio.ensure_future(anext(messages))
            finally:
                next_message.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await next_message
