"""The job status machine: every status change goes through `JobStatusMachine.transition`.

A transition is a compare-and-set on the row (``UPDATE … WHERE status IN (predecessors)``),
so the watch loop, a kill and the reconcile loop racing on one job each move it exactly once,
in any number of processes. Each transition appends a history row and announces itself on
the bus channel of the job (`status_channel`); the database stays the source of truth.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cluster_gateway.gateway import WorkloadPhase, WorkloadState
from control_plane.events import EventBus
from control_plane.metrics import Metrics
from control_plane.services.auth import AuthService
from control_plane.services.quotas import QuotasService, scope_of_job
from control_plane.store.database import Database
from control_plane.store.disks import DiskRow
from control_plane.store.models import JobRow, JobStatusRow, TokenRow
from glia.clock import utcnow
from glia.jobs import JobReason, JobStatus, can_transition
from glia.quotas import cost_micro

logger = logging.getLogger(__name__)

# How a workload's end maps to the job's final status.
_FINAL_STATUS: Mapping[JobReason, JobStatus] = {
    JobReason.COMPLETED: JobStatus.SUCCEEDED,
    JobReason.ERROR: JobStatus.FAILED,
    JobReason.OOM_KILLED: JobStatus.FAILED,
    JobReason.KILLED: JobStatus.FAILED,
    JobReason.LOST: JobStatus.FAILED,
    JobReason.START_FAILED: JobStatus.FAILED,
    JobReason.USER_REQUESTED: JobStatus.CANCELLED,
    JobReason.LIFE_SPAN_ENDED: JobStatus.CANCELLED,
}


def status_for_exit(reason: JobReason | None, exit_code: int | None) -> JobStatus:
    if reason is None:
        return JobStatus.SUCCEEDED if exit_code == 0 else JobStatus.FAILED
    return _FINAL_STATUS.get(reason, JobStatus.FAILED)


# Every job's changes, for live listings (`JobsService.changes`).
CHANGES_CHANNEL = "jobs.changes"


def status_channel(job_id: str) -> str:
    """The bus channel that announces the status changes of one job."""
    return f"jobs.status.{job_id}"


class JobStatusMachine:
    def __init__(
        self, *, db: Database, bus: EventBus, metrics: Metrics, auth: AuthService | None = None
    ) -> None:
        self._db = db
        # Revokes the tokens of jobs that end (--pass-config); None where no job has one.
        self._auth = auth
        self._bus = bus
        self._metrics = metrics

    async def transition(
        self,
        session: AsyncSession,
        job_id: str,
        new: JobStatus,
        *,
        reason: JobReason | None,
        description: str | None = None,
        exit_code: int | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Move a job to ``new`` unless another writer moved it first; True when this one did.

        The status check and the write are one statement, so it holds across processes.
        """
        at = at or utcnow()
        predecessors = [old.value for old in JobStatus if can_transition(old, new)]
        values: dict[str, object] = {
            "status": new.value,
            "reason": reason.value if reason else None,
            "status_description": description,
            "exit_code": exit_code,
        }
        if new is JobStatus.RUNNING:
            values["started_at"] = at
            values["charged_until"] = at  # its run time costs from now (`_settle`)
        if new.is_finished:
            values["finished_at"] = at
            values["active_name"] = None  # the name is free for the owner's next job
        updated = (
            await session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.in_(predecessors))
                .values(**values)
                .returning(
                    JobRow.created_at,
                    JobRow.config_token_id,
                    JobRow.charged_until,
                    JobRow.credits_per_hour,
                    JobRow.volumes,
                )
                .execution_options(synchronize_session=False)
            )
        ).first()
        if updated is None:
            await session.rollback()
            return False
        created_at, config_token_id, charged_until, credits_per_hour, volumes = updated
        if new is not JobStatus.RUNNING and charged_until is not None:
            await _settle(session, job_id, charged_until, at, credits_per_hour)
        holds_disks = any(volume.get("kind") == "disk" for volume in volumes or ())
        if holds_disks and (new.is_finished or new is JobStatus.SUSPENDED):
            # Its disks are free for the next job (a suspended one holds them again when it
            # starts again).
            await session.execute(
                update(DiskRow)
                .where(DiskRow.used_by == job_id)
                .values(used_by=None, last_used_at=at)
                .execution_options(synchronize_session=False)
            )
        if new.is_finished and config_token_id is not None:
            # --pass-config's token dies with the job, in the same transaction: no crash
            # between the two leaves a finished job's token alive.
            await session.execute(
                update(TokenRow)
                .where(TokenRow.id == config_token_id, TokenRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        await session.execute(
            insert(JobStatusRow).values(
                job_id=job_id,
                status=new.value,
                reason=values["reason"],
                description=description,
                exit_code=exit_code,
                at=at,
            )
        )
        await session.commit()
        if new.is_finished and config_token_id is not None and self._auth is not None:
            await self._auth.forget_revoked(config_token_id)
        if new is JobStatus.RUNNING:
            self._metrics.job_start_latency.observe(max(0.0, (at - created_at).total_seconds()))
        await self.announce(job_id, new)
        return True

    async def announce(self, job_id: str, status: JobStatus) -> None:
        """Tell the job's watchers, and those of every job, that it changed (they read what
        changed from the store)."""
        message = {"job_id": job_id, "status": status.value}
        await self._bus.publish(status_channel(job_id), message)
        await self._bus.publish(CHANGES_CHANNEL, message)

    async def apply(
        self,
        state: WorkloadState,
        *,
        current: JobStatus | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        """Bring a job's status in line with what its cluster reports (``current``: its
        status, when the caller has just read it, in ``session`` if it passes one)."""
        if state.phase not in (WorkloadPhase.RUNNING, WorkloadPhase.EXITED):
            return  # pending is where every job starts; missing is reconcile's call
        async with contextlib.AsyncExitStack() as stack:
            if session is None:
                session = await stack.enter_async_context(self._db.session())
            if current is None:
                status = await session.scalar(
                    select(JobRow.status).where(JobRow.id == state.job_id)
                )
                if status is None:
                    return
                current = JobStatus(status)
            if current.is_finished:
                return
            if state.phase is WorkloadPhase.RUNNING and current is not JobStatus.RUNNING:
                await self.transition(
                    session, state.job_id, JobStatus.RUNNING, reason=None, at=state.started_at
                )
            elif state.phase is WorkloadPhase.EXITED:
                if state.started_at is not None and current is JobStatus.PENDING:
                    # It ran and ended between two looks: keep the running step in the history.
                    await self.transition(
                        session, state.job_id, JobStatus.RUNNING, reason=None, at=state.started_at
                    )
                await self.transition(
                    session,
                    state.job_id,
                    status_for_exit(state.reason, state.exit_code),
                    reason=state.reason,
                    description=state.description,
                    exit_code=state.exit_code,
                    at=state.finished_at,
                )


async def _settle(
    session: AsyncSession,
    job_id: str,
    charged_until: datetime,
    at: datetime,
    credits_per_hour: float,
) -> None:
    """A job stops running (it ended, or was suspended) at ``at``: pay for its run time
    since ``charged_until``, in the transaction of the transition, which holds the job's row
    (so the periodic charge, `Billing.charge`, cannot pay the same time twice). A workload
    that ended before the last periodic charge gets the difference back."""
    micro = cost_micro(credits_per_hour, (at - charged_until).total_seconds())
    await session.execute(
        update(JobRow)
        .where(JobRow.id == job_id)
        .values(charged_until=None, credits_spent_micro=JobRow.credits_spent_micro + micro)
        .execution_options(synchronize_session=False)
    )
    if micro:
        scope = await scope_of_job(session, job_id)
        if scope is not None:
            await QuotasService.spend(session, scope, micro)
