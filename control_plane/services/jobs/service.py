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
import dataclasses
import logging
from collections.abc import AsyncGenerator, Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cluster_gateway.gateway import WorkloadPhase
from control_plane.events import EventBus, batches
from control_plane.services.acl import AclService, visible_filter
from control_plane.services.auth import user_from_row
from control_plane.services.clusters import GatewayRegistry
from control_plane.services.jobs.records import (
    find_job,
    job_from_row,
    load_history,
    queue_positions,
    select_jobs,
)
from control_plane.services.jobs.status import (
    CHANGES_CHANNEL,
    JobStatusMachine,
    status_channel,
)
from control_plane.services.jobs.submission import JobSubmitter
from control_plane.services.pages import Order, SortKey, keyset_page
from control_plane.store.database import Database
from control_plane.store.models import ClusterRow, JobRow, JobTagRow, UserRow
from glia.acl import Action
from glia.auth import User
from glia.errors import NotFound
from glia.jobs import (
    Job,
    JobFilter,
    JobOrder,
    JobOrderField,
    JobReason,
    JobStatus,
    JobStatusItem,
    JobSubmission,
    is_job_id,
)
from glia.pages import OrderDirection, Page, PageRequest

logger = logging.getLogger(__name__)

# How long `kill` waits for the workload to end before returning the job as it is.
KILL_WAIT_S = 3.0
# A status stream re-reads the job this often even when no change was announced, so a
# message lost between processes delays an update instead of losing it.
STATUS_RECHECK_S = 5.0
# A live listing (`JobsService.changes`) that falls behind keeps this many changes at most.
CHANGES_BACKLOG = 1000


def _job_order(order: JobOrder) -> Order[Job]:
    created = SortKey[Job](JobRow.created_at, lambda job: job.created_at, is_time=True)
    by_id = SortKey[Job](JobRow.id, lambda job: job.id)
    keys = [created, by_id]
    if order.field is JobOrderField.NAME:
        # Jobs without a name sort as the empty name: the same on every database.
        keys.insert(0, SortKey[Job](func.coalesce(JobRow.name, ""), lambda job: job.name or ""))
    return Order(
        name=order.field.name, keys=keys, descending=order.direction is OrderDirection.DESC
    )


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
        page: PageRequest,
        order: JobOrder | None = None,
    ) -> Page[Job]:
        """The jobs ``user`` may read that match ``job_filter``, a page at a time."""
        order = order or JobOrder()
        # No early answer for a caller who may read no job: their cursor is checked as anyone's.
        prefixes = self._acl.visible_prefixes(user.subject, "job", Action.READ)
        conditions: builtins.list[ColumnElement[bool]] = [visible_filter(JobRow.uri, prefixes)]
        if job_filter.statuses:
            conditions.append(JobRow.status.in_([s.value for s in job_filter.statuses]))
        if job_filter.name is not None:
            conditions.append(JobRow.name == job_filter.name)
        if job_filter.since is not None:
            conditions.append(JobRow.created_at >= job_filter.since)
        if job_filter.cluster is not None:
            conditions.append(ClusterRow.name == job_filter.cluster)
        if job_filter.org is not None:
            conditions.append(JobRow.org == job_filter.org)
        if job_filter.project is not None:
            conditions.append(JobRow.project == job_filter.project)
        if job_filter.owner is not None:
            conditions.append(
                JobRow.owner_id
                == select(UserRow.id).where(UserRow.name == job_filter.owner).scalar_subquery()
            )
        if job_filter.id_prefix is not None:
            conditions.append(JobRow.id.startswith(job_filter.id_prefix, autoescape=True))
        for tag in job_filter.tags:
            conditions.append(
                select(JobTagRow.job_id)
                .where(JobTagRow.job_id == JobRow.id, JobTagRow.tag == tag)
                .exists()
            )
        if job_filter.description is not None:
            conditions.append(JobRow.description.icontains(job_filter.description, autoescape=True))
        counted = select(func.count()).select_from(JobRow).where(*conditions)
        if job_filter.cluster is not None:
            counted = counted.join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
        total = await session.scalar(counted) or 0
        found = await keyset_page(
            session,
            select_jobs(with_history=False).where(*conditions),
            order=_job_order(order),
            request=page,
            total=total,
            to_item=lambda found: job_from_row(
                found[0], user_from_row(found[1]), found[2], with_history=False
            ),
        )
        return dataclasses.replace(found, items=tuple(await queue_positions(session, found.items)))

    async def may_write(self, user: User, job: Job) -> bool:
        return await self._acl.check(user.subject, job.uri, Action.WRITE)

    async def visible_env(self, user: User, job: Job) -> dict[str, str | None]:
        """The job's environment as ``user`` may see it: the values for those who may write
        the job (they could read them from inside it anyway), the names alone for readers."""
        if await self.may_write(user, job):
            return dict(job.env)
        return dict.fromkeys(job.env)

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

    async def kill(self, user: User, id_or_name: str) -> tuple[Job, bool]:
        """Stop a job and wait a little for it to end. Returns the job, and whether it had
        already finished (it is then returned unchanged)."""
        async with self._db.session() as session:
            job = await find_job(session, user, id_or_name)
        await self._require(user, job, Action.WRITE, id_or_name)
        if job.status.is_finished:
            return job, True
        if job.status is JobStatus.SUSPENDED:
            # Preempted: the kill is its end, whatever its workload still does (stopping,
            # or starting again), which is stopped after.
            async with self._db.session() as session:
                await self._status.transition(
                    session,
                    job.id,
                    JobStatus.CANCELLED,
                    reason=JobReason.USER_REQUESTED,
                    description=f"killed by {user.name} while suspended",
                )
            with contextlib.suppress(NotFound):
                await self._gateways.get(job.cluster_name).stop(job.id, grace_s=self._kill_grace_s)
            async with self._db.session() as session:
                return await find_job(session, user, job.id), False
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
            return await find_job(session, user, job.id), False

    async def changes(self, user: User) -> AsyncGenerator[Job, None]:
        """Every job ``user`` may read, each time it is submitted or changes status: what a
        live listing needs. Jobs the caller may not read are skipped. The jobs that changed
        while the last ones were sent are read together, once each, as they are now; a
        message the bus drops for a slow reader is a missed update, so a listing also
        re-reads now and then."""
        async with (
            self._bus.subscribe(CHANGES_CHANNEL) as updates,
            contextlib.aclosing(batches(updates, CHANGES_BACKLOG)) as arriving,
        ):
            async for messages in arriving:
                job_ids = [m["job_id"] for m in messages if isinstance(m.get("job_id"), str)]
                if not job_ids:
                    continue
                async with self._db.session() as session:
                    jobs = await self._readable(session, user, [*dict.fromkeys(job_ids)])
                for job in jobs:
                    yield job

    async def _readable(
        self, session: AsyncSession, user: User, job_ids: builtins.list[str]
    ) -> builtins.list[Job]:
        """Those of the jobs ``job_ids`` that exist and ``user`` may read, in that order."""
        rows = (
            await session.execute(select_jobs(with_history=True).where(JobRow.id.in_(job_ids)))
        ).unique()
        found: dict[str, Job] = {}
        for row, owner, cluster_name in rows:
            job = job_from_row(row, user_from_row(owner), cluster_name, with_history=True)
            if await self._acl.check(user.subject, job.uri, Action.READ):
                found[job.id] = job
        jobs = [found[job_id] for job_id in job_ids if job_id in found]
        return await queue_positions(session, jobs)

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
