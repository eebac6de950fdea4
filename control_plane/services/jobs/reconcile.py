"""Keeping the control plane's jobs and a cluster's workloads in agreement.

`ClusterReconciler.follow` applies every state change a cluster reports as it happens, and
`reconcile` compares the two sides in full to repair what a watch cannot tell: changes made
while the control plane was down, a job stored but never started, a workload nobody tracks.
One process at a time does this for a cluster (``control_plane.workers`` holds a lease).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import or_, select, update

from cluster_gateway.gateway import WatchExpired, WorkloadPhase, WorkloadState
from control_plane.services.clusters import GatewayRegistry
from control_plane.services.jobs.records import job_uid, unfinished_jobs, waiting
from control_plane.services.jobs.scheduler import Scheduler, is_preempted_stopping
from control_plane.services.jobs.status import JobStatusMachine
from control_plane.services.jobs.submission import JobSubmitter
from control_plane.store.database import Database
from control_plane.store.models import ClusterRow, JobRow
from glia.clock import utcnow
from glia.jobs import JobReason, JobStatus, RestartPolicy

logger = logging.getLogger(__name__)

# A pending job the gateway does not know yet is (re)started by reconcile; a running job the
# gateway lost is failed. Jobs younger than this are left alone: their start is in flight.
RECONCILE_GRACE = timedelta(seconds=30)
# Job ids asked of a gateway in one `states` call.
_STATES_BATCH = 500


class ClusterReconciler:
    def __init__(
        self,
        *,
        db: Database,
        gateways: GatewayRegistry,
        status: JobStatusMachine,
        submitter: JobSubmitter,
        scheduler: Scheduler,
        kill_grace_s: float,
    ) -> None:
        self._db = db
        self._gateways = gateways
        self._status = status
        self._submitter = submitter
        self._scheduler = scheduler
        self._kill_grace_s = kill_grace_s

    async def follow(self, cluster_name: str, *, ready: asyncio.Event | None = None) -> None:
        """Apply the cluster's state changes until its gateway closes (a background task).

        Subscribes first, then reconciles, so no change falls between the two; ``ready`` is
        set once that first reconcile is done. A watch that expires (this side fell behind,
        or the gateway restarted) is replaced the same way.
        """
        gateway = self._gateways.get(cluster_name)
        cursor: str | None = None
        while True:
            try:
                async with gateway.watch(after=cursor) as watch:
                    if cursor is None:
                        await self.reconcile(cluster_name)
                    if ready is not None:
                        ready.set()
                    async for event in watch:
                        await self._apply(cluster_name, event.state)
                        cursor = event.cursor
                    return
            except WatchExpired as exc:
                logger.warning("watch of cluster %s expired (%s); relisting", cluster_name, exc)
                cursor = None

    async def _apply(self, cluster_name: str, state: WorkloadState) -> None:
        """One read of the job decides who handles its workload's state: the scheduler for
        a job suspended for another (its stopped workload puts it back in the queue) or one
        whose restart policy may start it again, else the status machine."""
        if state.phase is WorkloadPhase.PENDING:
            return  # where every job starts: nothing to apply, whatever the job's status
        try:
            async with self._db.session() as session:
                row = (
                    await session.execute(
                        select(
                            JobRow.status,
                            JobRow.reason,
                            JobRow.scheduled_at,
                            JobRow.restart_policy,
                            JobRow.started_at,
                        ).where(JobRow.id == state.job_id)
                    )
                ).first()
                if row is None or JobStatus(row.status).is_finished:
                    return
                restartable = RestartPolicy(row.restart_policy) is not RestartPolicy.NEVER
                if row.status != JobStatus.SUSPENDED.value and not (
                    state.phase is WorkloadPhase.EXITED and restartable
                ):
                    # The common case, in the session that read the job.
                    await self._status.apply(state, current=JobStatus(row.status), session=session)
                    return
            # The scheduler's cases take its lock: no connection is held while they wait.
            if row.status == JobStatus.SUSPENDED.value and row.reason == JobReason.PREEMPTED.value:
                # The state is of the run that was stopped for another job, however late it
                # comes (a reconcile may apply what it read before the stop): once stopped,
                # the job goes back to the queue; nothing it reports moves the job itself.
                if is_preempted_stopping(row.status, row.reason, row.scheduled_at) and (
                    state.phase in (WorkloadPhase.EXITED, WorkloadPhase.MISSING)
                ):
                    await self._scheduler.requeue(cluster_name, state.job_id)
                return
            if (
                row.status == JobStatus.SUSPENDED.value
                and state.started_at is not None
                and row.started_at is not None
                and state.started_at <= row.started_at
            ):
                # Starting again after its preemption, while what is applied is of the run
                # that was stopped (both times are the cluster's: the job's started_at is
                # the last run's start as it reported it): only the new run moves the job.
                return
            if (
                state.phase is WorkloadPhase.EXITED
                and restartable
                and await self._scheduler.restart_if_due(cluster_name, state)
            ):
                return
            await self._status.apply(state, current=JobStatus(row.status))
        except Exception:  # one bad job must not stop the others' updates
            logger.exception("applying the state of job %s", state.job_id)

    async def reconcile(self, cluster_name: str) -> None:
        """Compare the cluster's workloads with its unfinished jobs, and fix what differs.

        - a workload's state the control plane missed (it was down, a message was lost) is
          applied;
        - a pending job its cluster does not know is started (the control plane stopped
          between handing it to the cluster and starting it); one still waiting in the queue
          is the scheduler's;
        - a running job its cluster lost is failed with reason Lost;
        - a workload with no unfinished job is stopped: nothing runs that nobody tracks.
        """
        gateway = self._gateways.get(cluster_name)
        active = {w.job_id: w for w in await gateway.active_workloads()}
        # It answered: what follows is current. A job it did not know while it was away is
        # started without the grace below: its start failed for the gateway's absence.
        returned = set(await self.clear_unreachable(cluster_name))
        async with self._db.session() as session:
            unfinished = {job.id: job for job in await unfinished_jobs(session, cluster_name)}
            queued = set(
                await session.scalars(
                    select(JobRow.id)
                    .join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
                    .where(ClusterRow.name == cluster_name, waiting())
                )
            )
        workloads = dict(active)
        workloads.update(
            (state.job_id, state)
            for state in await self._states(
                cluster_name, [i for i in unfinished if i not in active and i not in queued]
            )
        )
        now = utcnow()
        for job_id, job in unfinished.items():
            if job_id in queued:
                continue
            workload = workloads.get(job_id)
            try:
                if workload is not None and workload.phase is not WorkloadPhase.MISSING:
                    await self._apply(cluster_name, workload)
                elif now - job.created_at < RECONCILE_GRACE and job_id not in returned:
                    continue
                elif job.status is JobStatus.SUSPENDED and job.reason is JobReason.PREEMPTED:
                    await self._scheduler.requeue(cluster_name, job_id)  # stopped meanwhile
                elif job.status is JobStatus.PENDING or job.status is JobStatus.SUSPENDED:
                    logger.info("reconcile: starting job %s its cluster does not know", job_id)
                    async with self._db.session() as session:
                        uid = await job_uid(session, job_id)
                    await self._submitter.start_workload(job, uid)
                else:
                    async with self._db.session() as session:
                        await self._status.transition(
                            session,
                            job_id,
                            JobStatus.FAILED,
                            reason=JobReason.LOST,
                            description=f"cluster {cluster_name} has no record of this job",
                        )
            except Exception:
                logger.exception("reconcile: job %s", job_id)
        for job_id in active.keys() - unfinished.keys():
            logger.warning("reconcile: stopping workload %s that no unfinished job owns", job_id)
            try:
                await gateway.stop(job_id, grace_s=self._kill_grace_s)
            except Exception:
                logger.exception("reconcile: stopping orphan %s", job_id)

    async def mark_unreachable(self, cluster_name: str, description: str) -> list[str]:
        """The cluster's gateway does not answer: its jobs handed to it (pending or running)
        keep their status, with reason GatewayUnreachable, until a reconcile hears from it
        again (`clear_unreachable`). Nothing is failed for it: a job lost meanwhile is found
        by that reconcile. Returns the ids marked now."""
        async with self._db.session() as session:
            marked = list(
                await session.scalars(
                    update(JobRow)
                    .where(
                        JobRow.cluster_id
                        == select(ClusterRow.id)
                        .where(ClusterRow.name == cluster_name)
                        .scalar_subquery(),
                        JobRow.status.in_([JobStatus.PENDING.value, JobStatus.RUNNING.value]),
                        JobRow.scheduled_at.is_not(None),
                        or_(
                            JobRow.reason.is_(None),
                            JobRow.reason != JobReason.GATEWAY_UNREACHABLE.value,
                        ),
                    )
                    .values(
                        reason=JobReason.GATEWAY_UNREACHABLE.value, status_description=description
                    )
                    .returning(JobRow.id)
                    .execution_options(synchronize_session=False)
                )
            )
            await session.commit()
        await self._announce(marked)
        return marked

    async def clear_unreachable(self, cluster_name: str) -> list[str]:
        """The cluster's gateway answers again: its jobs marked GatewayUnreachable get the
        reason of their status back (running: none; pending: Creating), and the reconcile
        under way brings their status up to date."""
        cluster_id = select(ClusterRow.id).where(ClusterRow.name == cluster_name).scalar_subquery()
        cleared: list[str] = []
        async with self._db.session() as session:
            for status, reason in (
                (JobStatus.RUNNING, None),
                (JobStatus.PENDING, JobReason.CREATING.value),
            ):
                cleared.extend(
                    await session.scalars(
                        update(JobRow)
                        .where(
                            JobRow.cluster_id == cluster_id,
                            JobRow.status == status.value,
                            JobRow.reason == JobReason.GATEWAY_UNREACHABLE.value,
                        )
                        .values(reason=reason, status_description=None)
                        .returning(JobRow.id)
                        .execution_options(synchronize_session=False)
                    )
                )
            await session.commit()
        await self._announce(cleared)
        return cleared

    async def _announce(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        async with self._db.session() as session:
            rows = await session.execute(
                select(JobRow.id, JobRow.status).where(JobRow.id.in_(job_ids))
            )
            statuses = [(job_id, status) for job_id, status in rows]
        for job_id, status in statuses:
            await self._status.announce(job_id, JobStatus(status))

    async def _states(self, cluster_name: str, job_ids: Sequence[str]) -> list[WorkloadState]:
        gateway = self._gateways.get(cluster_name)
        states: list[WorkloadState] = []
        for start in range(0, len(job_ids), _STATES_BATCH):
            states.extend(await gateway.states(job_ids[start : start + _STATES_BATCH]))
        return states
