"""What running jobs spend, and what happens when a balance is spent (`glia.quotas`).

A running job's run time is paid for in steps: `Billing.charge` (each charge interval, by the
process that controls the cluster) pays each running job's time since its ``charged_until``
and moves that mark to now, a compare-and-set on the mark so that a step is paid once; the
last step is paid when the job stops running (`status._settle`, in the transition). Every
step is taken from each limited balance of the levels the job counts in.

`Billing.enforce` then cancels the unfinished jobs of every level whose balance is spent
(reason QuotaExhausted, with which balance in the description), stopping their workloads.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from control_plane.services.clusters import GatewayRegistry
from control_plane.services.jobs.status import JobStatusMachine
from control_plane.services.quotas import QuotasService, Scope, jobs_in
from control_plane.store.database import Database
from control_plane.store.models import ClusterRow, JobRow, UserRow
from glia.clock import utcnow
from glia.jobs import UNFINISHED_STATUSES, JobReason, JobStatus
from glia.quotas import QuotaTarget, cost_micro

logger = logging.getLogger(__name__)

_UNFINISHED = [s.value for s in UNFINISHED_STATUSES]


class Billing:
    def __init__(
        self,
        *,
        db: Database,
        gateways: GatewayRegistry,
        status: JobStatusMachine,
        kill_grace_s: float,
    ) -> None:
        self._db = db
        self._gateways = gateways
        self._status = status
        self._kill_grace_s = kill_grace_s

    async def charge(self, cluster: str) -> int:
        """Pay the run time of the cluster's running jobs up to now; the micro-credits paid."""
        now = utcnow()
        paid = 0
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(
                        JobRow.id,
                        JobRow.charged_until,
                        JobRow.credits_per_hour,
                        JobRow.org,
                        JobRow.cluster_id,
                        JobRow.owner_id,
                        UserRow.name,
                    )
                    .join(UserRow, UserRow.id == JobRow.owner_id)
                    .join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
                    .where(
                        ClusterRow.name == cluster,
                        JobRow.status == JobStatus.RUNNING.value,
                        JobRow.charged_until.is_not(None),
                        JobRow.credits_per_hour > 0,
                    )
                )
            ).all()
            for row in rows:
                micro = cost_micro(row.credits_per_hour, (now - row.charged_until).total_seconds())
                if micro <= 0:
                    continue  # too little yet to count: it adds up until the next charge
                moved = await session.scalar(
                    update(JobRow)
                    .where(
                        JobRow.id == row.id,
                        JobRow.status == JobStatus.RUNNING.value,
                        JobRow.charged_until == row.charged_until,
                    )
                    .values(
                        charged_until=now,
                        credits_spent_micro=JobRow.credits_spent_micro + micro,
                    )
                    .returning(JobRow.id)
                    .execution_options(synchronize_session=False)
                )
                if moved is None:
                    continue  # it stopped meanwhile: its transition paid
                scope = Scope(
                    org=row.org,
                    cluster=cluster,
                    cluster_id=row.cluster_id,
                    user=row.name,
                    user_id=row.owner_id,
                )
                await QuotasService.spend(session, scope, micro)
                paid += micro
            await session.commit()
        return paid

    async def enforce(self, cluster: str) -> list[str]:
        """Cancel the cluster's unfinished jobs that count in a level with no credits left;
        the ids cancelled."""
        async with self._db.session() as session:
            spent = await QuotasService.exhausted(session)
            if not spent:
                return []
            cluster_id = await session.scalar(
                select(ClusterRow.id).where(ClusterRow.name == cluster)
            )
            jobs: dict[str, tuple[QuotaTarget, bool]] = {}
            for target in spent:
                if target.cluster is not None and target.cluster != cluster:
                    continue
                rows = await session.execute(
                    select(JobRow.id, JobRow.scheduled_at).where(
                        JobRow.cluster_id == cluster_id,
                        JobRow.status.in_(_UNFINISHED),
                        *jobs_in(target),
                    )
                )
                for job_id, scheduled_at in rows:
                    jobs.setdefault(job_id, (target, scheduled_at is not None))
            cancelled: list[str] = []
            for job_id, (target, handed) in jobs.items():
                moved = await self._status.transition(
                    session,
                    job_id,
                    JobStatus.CANCELLED,
                    reason=JobReason.QUOTA_EXHAUSTED,
                    description=f"cancelled: the credits of {target.describe()} ran out",
                )
                if moved:
                    cancelled.append(job_id)
                    if handed:
                        await self._stop(cluster, job_id)
        return cancelled

    async def _stop(self, cluster: str, job_id: str) -> None:
        try:
            await self._gateways.get(cluster).stop(job_id, grace_s=self._kill_grace_s)
        except Exception as exc:  # the reconcile stops what still runs of a finished job
            logger.warning("stopping job %s (out of credits) failed: %s", job_id, exc)
