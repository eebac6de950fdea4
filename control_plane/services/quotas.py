"""Quotas and credits (`glia.quotas`): what admins set, what a submission is held to, what
running jobs spend.

Seats are taken atomically: a submission that meets a limited level first *locks* the quota
rows of the levels it counts in (a no-op UPDATE, in key order, so two submissions never wait
on each other in a circle), then counts the seats held and inserts its job in the same
transaction. On PostgreSQL the UPDATE takes the rows' locks, so concurrent submissions of one
scope queue behind each other and each counts what the ones before it committed (READ
COMMITTED reads afresh per statement). On SQLite the UPDATE is the transaction's first write
and takes the database's write lock, which serializes the same way. Submissions that meet no
limit take no lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.acl import AclService
from control_plane.services.clusters import ClustersService
from control_plane.services.orgs import ORGS_URI, OrgsService
from control_plane.store.models import ClusterRow, JobRow, QuotaRow, UserRow
from glia.acl import Action
from glia.auth import User
from glia.clock import utcnow
from glia.errors import NotFound, QuotaExceeded
from glia.jobs import UNFINISHED_STATUSES
from glia.quotas import (
    CreditsInput,
    Quota,
    QuotaInput,
    QuotaLevel,
    QuotaTarget,
    from_micro,
    job_targets,
    to_micro,
)
from glia.tenancy import cluster_uri, org_uri

_UNFINISHED = [s.value for s in UNFINISHED_STATUSES]


@dataclass(frozen=True)
class Scope:
    """Where a job counts: its org, cluster and owner."""

    org: str
    cluster: str
    cluster_id: str
    user: str
    user_id: str

    @property
    def targets(self) -> list[QuotaTarget]:
        return job_targets(self.org, self.cluster, self.user)


async def scope_of_job(session: AsyncSession, job_id: str) -> Scope | None:
    row = (
        await session.execute(
            select(JobRow.org, ClusterRow.name, JobRow.cluster_id, UserRow.name, JobRow.owner_id)
            .join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
            .join(UserRow, UserRow.id == JobRow.owner_id)
            .where(JobRow.id == job_id)
        )
    ).first()
    if row is None:
        return None
    org, cluster, cluster_id, user, user_id = row
    return Scope(org=org, cluster=cluster, cluster_id=cluster_id, user=user, user_id=user_id)


def holds_seat() -> ColumnElement[bool]:
    """The condition of a job that holds a seat: unfinished, not waiting for one."""
    return and_(JobRow.status.in_(_UNFINISHED), JobRow.seat_wait.is_(False))


def jobs_in(target: QuotaTarget) -> list[ColumnElement[bool]]:
    """The conditions of the jobs a level holds."""
    conditions: list[ColumnElement[bool]] = []
    if target.org is not None:
        conditions.append(JobRow.org == target.org)
    if target.cluster is not None:
        conditions.append(
            JobRow.cluster_id
            == select(ClusterRow.id).where(ClusterRow.name == target.cluster).scalar_subquery()
        )
    if target.user is not None:
        conditions.append(
            JobRow.owner_id
            == select(UserRow.id).where(UserRow.name == target.user).scalar_subquery()
        )
    return conditions


def quota_from_row(target: QuotaTarget, row: QuotaRow | None, running: int) -> Quota:
    return Quota(
        level=target.level,
        org=target.org,
        cluster=target.cluster,
        user=target.user,
        max_running_jobs=row.max_running_jobs if row else None,
        running_jobs=running,
        credits=from_micro(row.credits_micro) if row and row.credits_micro is not None else None,
    )


class QuotasService:
    def __init__(self, *, acl: AclService, orgs: OrgsService, clusters: ClustersService) -> None:
        self._acl = acl
        self._orgs = orgs
        self._clusters = clusters

    # --- what admins do ---------------------------------------------------------------------

    async def set(self, session: AsyncSession, caller: User, new: QuotaInput) -> Quota:
        """Set a level's limits (see `_require_admin` for who may)."""
        target = new.target
        await self._require_admin(session, caller, target)
        row = await self._row_for_update(session, target)
        if new.unlimited_running_jobs:
            row.max_running_jobs = None
        elif new.max_running_jobs is not None:
            row.max_running_jobs = new.max_running_jobs
        if new.unlimited_credits:
            row.credits_micro = None
        elif new.credits is not None:
            row.credits_micro = to_micro(new.credits)
        row.updated_at = utcnow()
        await session.commit()
        return await self._quota(session, target)

    async def add_credits(self, session: AsyncSession, caller: User, new: CreditsInput) -> Quota:
        """Add to a level's balance (a level with no limit gets one: the amount)."""
        target = new.target
        await self._require_admin(session, caller, target)
        row = await self._row_for_update(session, target)
        await session.flush()
        await session.execute(
            update(QuotaRow)
            .where(QuotaRow.key == target.key)
            .values(
                credits_micro=func.coalesce(QuotaRow.credits_micro, 0) + to_micro(new.amount),
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        await session.refresh(row)
        return await self._quota(session, target)

    async def get(self, session: AsyncSession, caller: User, target: QuotaTarget) -> Quota:
        """A level's limits and use, for whoever may set them."""
        await self._require_admin(session, caller, target)
        return await self._quota(session, target)

    async def _require_admin(
        self, session: AsyncSession, caller: User, target: QuotaTarget
    ) -> None:
        """Who sets a level's limits: the platform's admins any; an org's admins those of
        its members (org user); a cluster's admins those on it (org cluster, cluster user).
        The org itself (its whole budget) is the platform's admins' alone. A caller who may
        not see what the target names gets NotFound."""
        level = target.level
        if target.org is not None:
            await self._orgs.row(session, caller, target.org)  # NotFound unless visible
        if target.cluster is not None:
            exists = await session.scalar(
                select(ClusterRow.id).where(ClusterRow.name == target.cluster)
            )
            if exists is None or not await self._acl.check(
                caller.subject, cluster_uri(target.cluster), Action.READ
            ):
                raise NotFound(
                    f"cluster {target.cluster!r} not found", fields={"cluster": "not found"}
                )
        if target.user is not None:
            await self._orgs.member_subject(session, target.user)  # NotFound unless it exists
        if await self._acl.check(caller.subject, ORGS_URI, Action.MANAGE):
            return
        if level is QuotaLevel.ORG_USER:
            assert target.org is not None
            await self._acl.require(caller.subject, org_uri(target.org), Action.MANAGE)
        elif level in (QuotaLevel.ORG_CLUSTER, QuotaLevel.CLUSTER_USER):
            assert target.cluster is not None
            await self._acl.require(caller.subject, cluster_uri(target.cluster), Action.MANAGE)
        else:
            await self._acl.require(caller.subject, ORGS_URI, Action.MANAGE)

    async def _row_for_update(self, session: AsyncSession, target: QuotaTarget) -> QuotaRow:
        row = await session.get(QuotaRow, target.key)
        if row is None:
            row = QuotaRow(
                key=target.key,
                level=target.level.value,
                org=target.org,
                cluster=target.cluster,
                user=target.user,
            )
            session.add(row)
        return row

    async def _quota(self, session: AsyncSession, target: QuotaTarget) -> Quota:
        row = await session.get(QuotaRow, target.key, populate_existing=True)
        running = await session.scalar(
            select(func.count()).select_from(JobRow).where(holds_seat(), *jobs_in(target))
        )
        return quota_from_row(target, row, running or 0)

    # --- what a user sees -------------------------------------------------------------------

    async def mine(
        self, session: AsyncSession, caller: User, org: str | None, cluster: str | None
    ) -> list[Quota]:
        """The caller's quotas in ``org`` (by default their personal org; a service
        account's, the org of its project) on ``cluster`` (by default the default one)."""
        if org is None:
            row = await session.get(UserRow, caller.id)
            org = row.org if row is not None and row.org is not None else caller.name
        await self._orgs.row(session, caller, org)  # NotFound unless visible
        name = cluster or await self._clusters.default_name(session)
        if not await self._acl.check(caller.subject, cluster_uri(name), Action.READ):
            raise NotFound(f"cluster {name!r} not found", fields={"cluster": "not found"})
        found = await self._clusters.get(session, name)
        scope = Scope(
            org=org, cluster=found.name, cluster_id=found.id, user=caller.name, user_id=caller.id
        )
        return await self.of(session, scope)

    async def of(self, session: AsyncSession, scope: Scope) -> list[Quota]:
        """The four levels a job of ``scope`` would count in, with their limits (null where
        none is set) and the seats held now, the widest first."""
        rows = await self._rows(session, scope)
        counts = await self._seats(session, scope)
        return [
            quota_from_row(target, rows.get(target.key), count)
            for target, count in zip(scope.targets, counts, strict=True)
        ]

    # --- what a submission is held to -------------------------------------------------------

    async def org_running_limit(self, session: AsyncSession, org: str, cluster: str) -> int | None:
        """The tightest limit on running jobs that holds for every job of ``org`` on
        ``cluster`` whoever runs it (the org's and the org-on-cluster's; the org-user and
        cluster-user levels are each one user's); None without one."""
        keys = [QuotaTarget(org=org).key, QuotaTarget(org=org, cluster=cluster).key]
        limits = await session.scalars(
            select(QuotaRow.max_running_jobs).where(
                QuotaRow.key.in_(keys), QuotaRow.max_running_jobs.is_not(None)
            )
        )
        return min((limit for limit in limits if limit is not None), default=None)

    async def take_seat(self, session: AsyncSession, scope: Scope, *, wait: bool) -> str | None:
        """Take a seat for a new job of ``scope`` in the caller's transaction, which must
        write the job before it commits (the lock taken here holds until then): None when
        it has one; when a level is full, why the job waits (``wait``) or QuotaExceeded.
        QuotaExceeded too when a level has no credits left. Call it before the transaction
        writes anything else: on SQLite its lock must be the transaction's first write."""
        rows = await self._rows(session, scope)
        self._require_credits(scope, rows)
        limited = sorted(key for key, row in rows.items() if row.max_running_jobs is not None)
        if not limited:
            return None
        for key in limited:  # in key order: no two submissions lock in a circle
            await session.execute(
                update(QuotaRow)
                .where(QuotaRow.key == key)
                .values(max_running_jobs=QuotaRow.max_running_jobs)
                .execution_options(synchronize_session=False)
            )
        # Read again under the lock: an admin may have changed them meanwhile.
        rows = await self._rows(session, scope, fresh=True)
        self._require_credits(scope, rows)
        counts = await self._seats(session, scope)
        for target, count in zip(scope.targets, counts, strict=True):
            row = rows.get(target.key)
            if row is None or row.max_running_jobs is None or count < row.max_running_jobs:
                continue
            if wait:
                return (
                    f"waits for a seat: {target.describe()} may have {row.max_running_jobs} "
                    f"running job{'' if row.max_running_jobs == 1 else 's'} and has {count}"
                )
            raise QuotaExceeded(
                f"{target.describe()} may have {row.max_running_jobs} running job"
                f"{'' if row.max_running_jobs == 1 else 's'} and has {count}: wait for one to "
                "end, or submit with --wait-for-seat to queue for a seat",
                fields={"quota": f"{target.level.value} full"},
            )
        return None

    @staticmethod
    def _require_credits(scope: Scope, rows: dict[str, QuotaRow]) -> None:
        for target in scope.targets:
            row = rows.get(target.key)
            if row is not None and row.credits_micro is not None and row.credits_micro <= 0:
                raise QuotaExceeded(
                    f"{target.describe()} has no credits left: its admins can add some",
                    fields={"quota": f"{target.level.value} out of credits"},
                )

    async def _rows(
        self, session: AsyncSession, scope: Scope, *, fresh: bool = False
    ) -> dict[str, QuotaRow]:
        keys = [target.key for target in scope.targets]
        query = select(QuotaRow).where(QuotaRow.key.in_(keys))
        if fresh:
            query = query.execution_options(populate_existing=True)
        return {row.key: row for row in await session.scalars(query)}

    async def _seats(self, session: AsyncSession, scope: Scope) -> Sequence[int]:
        """The seats held at each of the scope's four levels, in `job_targets` order."""
        org = JobRow.org == scope.org
        cluster = JobRow.cluster_id == scope.cluster_id
        user = JobRow.owner_id == scope.user_id

        def count(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        row = (
            await session.execute(
                select(
                    count(org),
                    count(and_(org, cluster)),
                    count(and_(org, user)),
                    count(and_(cluster, user)),
                ).where(holds_seat(), or_(org, and_(user, cluster)))
            )
        ).one()
        return [int(value) for value in row]

    # --- what running jobs spend ------------------------------------------------------------

    @staticmethod
    async def spend(session: AsyncSession, scope: Scope, micro: int) -> None:
        """Take ``micro`` millionths of a credit from every limited balance of the scope's
        levels (in the caller's transaction); a negative amount gives it back."""
        if micro == 0:
            return
        await session.execute(
            update(QuotaRow)
            .where(
                QuotaRow.key.in_([target.key for target in scope.targets]),
                QuotaRow.credits_micro.is_not(None),
            )
            .values(credits_micro=QuotaRow.credits_micro - micro)
            .execution_options(synchronize_session=False)
        )

    @staticmethod
    async def exhausted(session: AsyncSession) -> list[QuotaTarget]:
        """The levels whose balance is spent."""
        rows = await session.scalars(
            select(QuotaRow).where(QuotaRow.credits_micro.is_not(None), QuotaRow.credits_micro <= 0)
        )
        return [QuotaTarget(org=r.org, cluster=r.cluster, user=r.user) for r in rows]
