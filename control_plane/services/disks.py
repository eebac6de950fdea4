"""Disks (`glia.disks`): records here, bytes on their cluster (a `DiskStore`).

Permissions follow the project: its writers create and delete disks and mount them read-write,
its readers see them and mount them read-only; a caller who may not read a disk learns
nothing of it (NotFound). A disk is held by one unfinished job at a time (`hold`, a
compare-and-set on ``used_by`` when the scheduler hands the job to the cluster; `release`
when the job ends); one not held for its unused timeout is deleted (`collect_unused`).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.acl import AclService
from control_plane.services.clusters import ClusterRegistry
from control_plane.services.projects import ProjectsService
from control_plane.store.database import Database
from control_plane.store.disks import DiskRow
from control_plane.store.models import UserRow
from glia.acl import Action
from glia.auth import User, UserKind
from glia.clock import utcnow
from glia.disks import (
    SCHEME,
    Disk,
    DiskStatus,
    DiskStore,
    NewDisk,
    check_disk_name,
    disk_uri,
    is_disk_id,
    new_disk_id,
)
from glia.errors import BadInput, Conflict, NotFound, Unavailable
from glia.tenancy import cluster_uri, project_resources_uri

logger = logging.getLogger(__name__)


class DisksService:
    def __init__(
        self,
        *,
        db: Database,
        acl: AclService,
        projects: ProjectsService,
        stores: ClusterRegistry[DiskStore],
        default_cluster: str,
    ) -> None:
        self._db = db
        self._acl = acl
        self._projects = projects
        self._stores = stores
        self._default_cluster = default_cluster

    async def _disk(self, row: DiskRow, owner: str, *, usage: bool = True) -> Disk:
        used = None
        if usage and row.status == DiskStatus.READY.value:
            try:
                used = await self._stores.get(row.cluster).used_bytes(row.id)
            except Exception as exc:  # usage is a nicety: a listing must not fail for it
                logger.warning("disk %s: its usage is unknown: %s", row.id, exc)
        return Disk(
            id=row.id,
            name=row.name,
            uri=disk_uri(row.cluster, row.org, row.project, row.id),
            cluster=row.cluster,
            org=row.org,
            project=row.project,
            owner=owner,
            size_bytes=row.size_bytes,
            used_bytes=used,
            status=DiskStatus(row.status),
            status_description=row.status_description,
            timeout_unused_s=row.timeout_unused_s,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            used_by=row.used_by,
        )

    async def _owner_name(self, session: AsyncSession, row: DiskRow) -> str:
        return await session.scalar(select(UserRow.name).where(UserRow.id == row.owner_id)) or ""

    async def _place(
        self,
        session: AsyncSession,
        caller: User,
        cluster: str | None,
        org: str | None,
        project: str | None,
    ) -> tuple[str, str, str]:
        """The cluster, org and project named, defaulting to the default cluster and the
        caller's personal project; NotFound for a project the caller may not see."""
        if caller.kind is not UserKind.USER and (org is None or project is None):
            raise BadInput(
                "a service account names the org and project of a disk",
                fields={"project": "required"},
            )
        cluster = cluster or self._default_cluster
        org = org or caller.name
        project = project or (caller.name if org == caller.name else "")
        if not project:
            raise BadInput("name the project of the org", fields={"project": "required"})
        await self._projects.row(session, caller, org, project)
        if not await self._acl.check(caller.subject, cluster_uri(cluster), Action.READ):
            raise NotFound(f"cluster {cluster!r} not found", fields={"cluster": "not found"})
        return cluster, org, project

    async def create(self, session: AsyncSession, caller: User, new: NewDisk) -> Disk:
        """Make a disk (the project's writers): its record, then its filesystem on the
        cluster. A cluster that cannot make disks refuses (UNAVAILABLE, saying why); one
        that fails making this one leaves it broken, saying why."""
        cluster, org, project = await self._place(
            session, caller, new.cluster, new.org, new.project
        )
        place = project_resources_uri(SCHEME, cluster, org, project)
        await self._acl.require(caller.subject, place, Action.WRITE)
        store = self._stores.get(cluster)
        row = DiskRow(
            id=new_disk_id(),
            name=new.name,
            cluster=cluster,
            org=org,
            project=project,
            owner_id=caller.id,
            size_bytes=new.size_bytes,
            status=DiskStatus.PENDING.value,
            timeout_unused_s=new.timeout_unused_s,
            created_at=utcnow(),
        )
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise Conflict(
                f"project {org}/{project} has a disk named {new.name!r} on {cluster} already",
                fields={"name": "taken"},
            ) from None
        try:
            await store.create(row.id, new.size_bytes)
        except Unavailable:
            await session.delete(row)
            await session.commit()
            raise
        except Exception as exc:
            logger.error("disk %s could not be made: %s", row.id, exc)
            row.status = DiskStatus.BROKEN.value
            row.status_description = f"the cluster could not make it: {exc}"
        else:
            row.status = DiskStatus.READY.value
        await session.commit()
        return await self._disk(row, caller.name)

    async def list(
        self,
        session: AsyncSession,
        caller: User,
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> builtins.list[Disk]:
        """The disks the caller may read, narrowed to a cluster, org or project if given."""
        query = (
            select(DiskRow, UserRow.name)
            .join(UserRow, UserRow.id == DiskRow.owner_id)
            .order_by(DiskRow.cluster, DiskRow.org, DiskRow.project, DiskRow.created_at)
        )
        if cluster is not None:
            query = query.where(DiskRow.cluster == cluster)
        if org is not None:
            query = query.where(DiskRow.org == org)
        if project is not None:
            query = query.where(DiskRow.project == project)
        found = []
        for row, owner in (await session.execute(query)).all():
            uri = disk_uri(row.cluster, row.org, row.project, row.id)
            if await self._acl.check(caller.subject, uri, Action.READ):
                found.append(await self._disk(row, owner))
        return found

    async def sizes(self, session: AsyncSession, disk_ids: Sequence[str]) -> dict[str, int]:
        """The sizes of the disks ``disk_ids`` (a job's, checked when it was submitted)."""
        if not disk_ids:
            return {}
        rows = await session.execute(
            select(DiskRow.id, DiskRow.size_bytes).where(DiskRow.id.in_(disk_ids))
        )
        return {disk_id: size for disk_id, size in rows.all()}

    async def row(
        self,
        session: AsyncSession,
        caller: User,
        ref: str,
        action: Action,
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> DiskRow:
        """A disk by id, or by name in the project named (the caller's personal one by
        default), once the caller may do ``action`` on it: NotFound for one who may not
        read it (as for none), Forbidden for one who may read it but not do this."""
        if is_disk_id(ref):
            row = await session.get(DiskRow, ref)
        else:
            check_disk_name(ref)
            cluster, org, project = await self._place(session, caller, cluster, org, project)
            row = await session.scalar(
                select(DiskRow).where(
                    DiskRow.cluster == cluster,
                    DiskRow.org == org,
                    DiskRow.project == project,
                    DiskRow.name == ref,
                )
            )
        if row is None:
            raise NotFound(f"disk {ref!r} not found", fields={"disk": "not found"})
        uri = disk_uri(row.cluster, row.org, row.project, row.id)
        if not await self._acl.check(caller.subject, uri, Action.READ):
            raise NotFound(f"disk {ref!r} not found", fields={"disk": "not found"})
        if action > Action.READ:
            await self._acl.require(caller.subject, uri, action)
        return row

    async def get(self, session: AsyncSession, caller: User, ref: str, **place: str | None) -> Disk:
        row = await self.row(session, caller, ref, Action.READ, **place)
        return await self._disk(row, await self._owner_name(session, row))

    async def delete(
        self, session: AsyncSession, caller: User, ref: str, **place: str | None
    ) -> Disk:
        """Delete a disk and its files (the project's writers); not while a job holds it."""
        row = await self.row(session, caller, ref, Action.WRITE, **place)
        if row.used_by is not None:
            raise Conflict(
                f"disk {row.id} is in use by job {row.used_by}: kill the job first",
                fields={"disk": "in use"},
            )
        disk = await self._disk(row, await self._owner_name(session, row), usage=False)
        deleted = await session.scalar(
            delete(DiskRow)
            .where(DiskRow.id == row.id, DiskRow.used_by.is_(None))
            .returning(DiskRow.id)
            .execution_options(synchronize_session=False)
        )
        if deleted is None:
            await session.rollback()
            raise Conflict(f"disk {row.id} was taken by a job meanwhile", fields={"disk": "in use"})
        await session.commit()
        await self._stores.get(row.cluster).delete(row.id)
        return disk

    # --- jobs -------------------------------------------------------------------------------

    async def hold(self, session: AsyncSession, job_id: str, disk_ids: Sequence[str]) -> str | None:
        """Hold every disk of ``disk_ids`` for the job (in the caller's transaction): None
        when it has them all, else the id of one held by another job (the caller rolls
        back)."""
        now = utcnow()
        for disk_id in sorted(disk_ids):  # in one order: no two jobs wait in a circle
            taken = await session.scalar(
                update(DiskRow)
                .where(
                    DiskRow.id == disk_id,
                    or_(DiskRow.used_by.is_(None), DiskRow.used_by == job_id),
                )
                .values(used_by=job_id, last_used_at=now)
                .returning(DiskRow.id)
                .execution_options(synchronize_session=False)
            )
            if taken is None:
                return disk_id
        return None

    async def release(self, session: AsyncSession, job_id: str) -> None:
        """The job ended: its disks are free (in the caller's transaction)."""
        await session.execute(
            update(DiskRow)
            .where(DiskRow.used_by == job_id)
            .values(used_by=None, last_used_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    async def collect_unused(self, cluster: str, now: datetime | None = None) -> builtins.list[str]:
        """Delete the cluster's disks no job has held for their unused timeout."""
        now = now or utcnow()
        deleted: builtins.list[str] = []
        async with self._db.session() as session:
            rows = await session.scalars(
                select(DiskRow).where(
                    DiskRow.cluster == cluster,
                    DiskRow.used_by.is_(None),
                    DiskRow.timeout_unused_s.is_not(None),
                )
            )
            for row in rows.all():
                assert row.timeout_unused_s is not None
                since = row.last_used_at or row.created_at
                if now - since < timedelta(seconds=row.timeout_unused_s):
                    continue
                gone = await session.scalar(
                    delete(DiskRow)
                    .where(DiskRow.id == row.id, DiskRow.used_by.is_(None))
                    .returning(DiskRow.id)
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
                if gone is not None:
                    await self._stores.get(cluster).delete(row.id)
                    deleted.append(row.id)
                    logger.info("disk %s deleted: unused for %s s", row.id, row.timeout_unused_s)
        return deleted
