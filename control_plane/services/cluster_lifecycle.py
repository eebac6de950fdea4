"""The Config API: clusters registered, changed and decommissioned at run time, their
gateways opened and watched (the cluster life cycle of docs/clusters.md).

A cluster goes blank -> deploying -> deployed; it is failed while its gateway cannot be
opened or stops answering (with the reason), deployed again once it answers, and deleting
while it is decommissioned. Only the platform's admins see or change clusters this way; the
presets keep their own API (`PresetsService`, the cluster's admins).

A remote gateway proves itself to the control plane with a shared secret made here at
registration: it is handed to the admin once (to give to ``glia gateway serve`` as
``GLIA_GATEWAY_SECRET``), kept sealed with the keyring, and never shown or logged again.
This module is separate from `control_plane.services.clusters` because decommissioning
stops jobs, and the jobs package already depends on that one.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from cluster_gateway.gateway import ClusterCapacity
from control_plane.keyring import Keyring, Unreadable
from control_plane.services.acl import AclService
from control_plane.services.clusters import (
    ClusterRegistry,
    ClustersService,
    GatewayRegistry,
    LocalGatewayFactory,
    RemoteGatewayFactory,
    fill_preset_row,
    gateway_for,
    preset_from_row,
    presets_for_host,
)
from control_plane.services.jobs.records import unfinished_jobs
from control_plane.services.jobs.status import JobStatusMachine
from control_plane.store.database import Database
from control_plane.store.models import ClusterRow, JobRow, PresetRow
from control_plane.store.telemetry import TelemetryRow
from glia.acl import Action
from glia.auth import User
from glia.clock import utcnow
from glia.clusters import (
    LOCAL_GATEWAY,
    ClusterConfig,
    ClusterHealth,
    ClusterRuntime,
    ClusterStatus,
    ClusterUpdate,
    DecommissionedCluster,
    NewCluster,
    RegisteredCluster,
    Resources,
)
from glia.errors import (
    BadInput,
    Conflict,
    Forbidden,
    GliaError,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from glia.jobs import JobReason, JobStatus
from glia.tenancy import cluster_role_rules, cluster_uri

logger = logging.getLogger(__name__)

# What an unreachable gateway's failure reads as, at most (a reason is for people).
_REASON_CHARS = 500


def config_from_row(row: ClusterRow) -> ClusterConfig:
    capacity = ClusterCapacity.model_validate(row.capacity) if row.capacity else None
    return ClusterConfig(
        id=row.id,
        name=row.name,
        status=ClusterStatus(row.status),
        status_reason=row.status_reason,
        gateway=row.gateway,
        runtime=ClusterRuntime(row.runtime),
        storage_url=row.storage_url,
        registry_url=row.registry_url,
        default_life_span_s=row.default_life_span_s,
        presets=tuple(preset_from_row(p) for p in row.presets),
        health=ClusterHealth(
            last_heartbeat_at=row.last_heartbeat_at,
            capacity=Resources.model_validate(capacity.model_dump()) if capacity else None,
            free=capacity.free if capacity else None,
        ),
        created_at=row.created_at,
    )


def _reason(exc: BaseException) -> str:
    """A failure as people read it, never more than a line or two; a GliaError's message is
    meant for callers, anything else shows its kind only (it might carry what it should not)."""
    text = exc.message if isinstance(exc, GliaError) else type(exc).__name__
    return text[:_REASON_CHARS]


class ClusterLifecycle:
    def __init__(
        self,
        *,
        db: Database,
        acl: AclService,
        clusters: ClustersService,
        gateways: GatewayRegistry,
        status: JobStatusMachine,
        keyring: Keyring,
        local_gateway: LocalGatewayFactory,
        remote_gateway: RemoteGatewayFactory,
        cluster_parts: Sequence[ClusterRegistry[Any]],
        home_cluster: str,
        kill_grace_s: float,
        heartbeat_timeout_s: float = 5.0,
    ) -> None:
        self._db = db
        self._acl = acl
        self._clusters = clusters
        self._gateways = gateways
        self._status = status
        self._keyring = keyring
        self._local_gateway = local_gateway
        self._remote_gateway = remote_gateway
        # Each cluster's storage, disks and buckets: forgotten with its gateway.
        self._cluster_parts = cluster_parts
        # The cluster of the settings: its gateway is the platform's own, made at start.
        self._home_cluster = home_cluster
        self._kill_grace_s = kill_grace_s
        self._heartbeat_timeout_s = heartbeat_timeout_s
        # Clusters whose gateway is in the registry but has not opened yet (a remote gateway
        # registered before its `glia gateway serve` runs): the heartbeat opens them.
        self._unopened: set[str] = set()
        # Clusters whose gateway could not be made (failed, with the reason): not retried
        # until the control plane starts again.
        self._unmade: set[str] = set()
        # Clusters whose gateway this process is opening now (registration, start, sync):
        # never two gateways for one cluster.
        self._opening: set[str] = set()
        # Set when this process registers or removes a cluster: the heartbeat loop wakes to
        # start or stop its controller at once.
        self.registry_changed = asyncio.Event()

    # -- the Config API (platform admins) ------------------------------------------------

    @staticmethod
    def _require_admin(caller: User) -> None:
        if not caller.is_admin:
            raise Forbidden("only the platform's admins may register or change clusters")

    async def _row(self, session: AsyncSession, name: str) -> ClusterRow:
        row = await session.scalar(
            select(ClusterRow)
            .options(selectinload(ClusterRow.presets))
            .where(ClusterRow.name == name)
        )
        if row is None:
            raise NotFound(f"cluster {name!r} not found", fields={"name": "not found"})
        return row

    async def _visible_row(self, session: AsyncSession, caller: User, name: str) -> ClusterRow:
        """The cluster's row for a platform admin; NotFound for a caller who may not see
        the cluster (as for one that does not exist), Forbidden for one who may."""
        row = await session.scalar(
            select(ClusterRow)
            .options(selectinload(ClusterRow.presets))
            .where(ClusterRow.name == name)
        )
        if row is None or not await self._acl.check(caller.subject, cluster_uri(name), Action.READ):
            raise NotFound(f"cluster {name!r} not found", fields={"name": "not found"})
        self._require_admin(caller)
        return row

    async def list(self, session: AsyncSession, caller: User) -> builtins.list[ClusterConfig]:
        self._require_admin(caller)
        rows = await session.scalars(
            select(ClusterRow)
            .options(selectinload(ClusterRow.presets))
            .order_by(ClusterRow.created_at, ClusterRow.name)
        )
        return [config_from_row(row) for row in rows]

    async def get(self, session: AsyncSession, caller: User, name: str) -> ClusterConfig:
        return config_from_row(await self._visible_row(session, caller, name))

    async def register(
        self, session: AsyncSession, caller: User, new: NewCluster
    ) -> RegisteredCluster:
        """Store the cluster (blank), then open its gateway: deployed when it answers,
        deploying while a remote one does not yet (its operator starts it with the secret
        returned here), failed with the reason when it cannot be made at all."""
        self._require_admin(caller)
        taken = await session.scalar(select(ClusterRow.id).where(ClusterRow.name == new.name))
        if taken is not None or new.name in self._gateways:
            raise Conflict(f"a cluster {new.name!r} exists already", fields={"name": "taken"})
        secret = None if new.gateway == LOCAL_GATEWAY else secrets.token_urlsafe(32)
        row = ClusterRow(
            id=str(uuid.uuid4()),
            name=new.name,
            gateway=new.gateway,
            runtime=new.runtime.value,
            storage_url=new.storage_url,
            registry_url=new.registry_url,
            default_life_span_s=new.default_life_span_s,
            gateway_secret=self._keyring.seal(secret.encode()) if secret else None,
            status=ClusterStatus.BLANK.value,
        )
        row.presets = []
        for position, spec in enumerate(new.presets):
            preset_row = PresetRow(name=spec.name, position=position)
            fill_preset_row(preset_row, spec.preset)
            row.presets.append(preset_row)
        session.add(row)
        self._opening.add(new.name)  # before the commit: the registry sync must not open it
        try:
            await session.commit()
        except IntegrityError:
            self._opening.discard(new.name)
            await session.rollback()
            # Registered by another request between the check above and this commit.
            raise Conflict(
                f"a cluster {new.name!r} exists already", fields={"name": "taken"}
            ) from None
        except BaseException:
            self._opening.discard(new.name)
            raise
        self._clusters.changed()
        # Its built-in roles (user, manager, admin of cluster://NAME), as `OrgsService.sync`
        # writes them for every cluster.
        await self._acl.add_rules(*cluster_role_rules(new.name))
        logger.info("cluster %s registered by %s (gateway %s)", new.name, caller.name, new.gateway)
        try:
            await self._open(new.name)
        finally:
            self._opening.discard(new.name)
        self.registry_changed.set()
        return RegisteredCluster(
            cluster=config_from_row(await self._fresh_row(session, new.name)),
            gateway_secret=secret,
        )

    async def update(
        self, session: AsyncSession, caller: User, new: ClusterUpdate
    ) -> ClusterConfig:
        """Set the cluster's settings; its presets are changed with their own API and take
        effect for jobs submitted after."""
        row = await self._visible_row(session, caller, new.name)
        if row.gateway == LOCAL_GATEWAY and new.runtime.value != row.runtime:
            # Its in-process gateway was made for the runtime it was registered with, and
            # its jobs live there: another runtime is another cluster.
            raise BadInput(
                "a local gateway keeps the runtime it was registered with; decommission the "
                "cluster and register it again for another",
                fields={"runtime": "fixed for a local gateway"},
            )
        row.runtime = new.runtime.value
        row.storage_url = new.storage_url
        row.registry_url = new.registry_url
        row.default_life_span_s = new.default_life_span_s
        await session.commit()
        self._clusters.changed()
        return config_from_row(await self._fresh_row(session, new.name))

    async def decommission(
        self, session: AsyncSession, caller: User, name: str
    ) -> DecommissionedCluster:
        """Stop the cluster's unfinished jobs (cancelled, UserRequested), close its gateway
        and remove it with its records (jobs, presets, telemetry). The platform's own cluster
        stays: the control plane's storage and defaults live there."""
        row = await self._visible_row(session, caller, name)
        if name == self._home_cluster:
            raise Conflict(
                f"cluster {name!r} is the control plane's own (GLIA_CLUSTER_NAME) and cannot be "
                "removed",
                fields={"name": "the platform's own cluster"},
            )
        row.status = ClusterStatus.DELETING.value
        row.status_reason = f"decommissioned by {caller.name}"
        await session.commit()
        self._clusters.changed()
        before = config_from_row(row)
        stopped = await self._stop_jobs(name, caller)
        gateway = self._gateways.remove(name)
        self._unopened.discard(name)
        self._forget_parts(name)
        if gateway is not None:
            try:
                await gateway.close()
            except Exception:
                logger.warning("cluster %s: closing its gateway failed", name, exc_info=True)
        await session.execute(
            delete(JobRow)
            .where(JobRow.cluster_id == row.id)
            .execution_options(synchronize_session=False)
        )
        await session.execute(delete(TelemetryRow).where(TelemetryRow.cluster == name))
        await session.delete(row)
        await session.commit()
        self._clusters.changed()
        await self._acl.remove_rules(*cluster_role_rules(name))
        self._unmade.discard(name)
        self.registry_changed.set()
        logger.info(
            "cluster %s decommissioned by %s; %d jobs stopped", name, caller.name, len(stopped)
        )
        return DecommissionedCluster(
            cluster=before.model_copy(update={"status": ClusterStatus.DELETING}),
            stopped_jobs=tuple(stopped),
        )

    def _forget_parts(self, name: str) -> None:
        for registry in self._cluster_parts:
            registry.remove(name)

    async def _stop_jobs(self, name: str, caller: User) -> builtins.list[str]:
        async with self._db.session() as session:
            jobs = await unfinished_jobs(session, name)
        stopped: list[str] = []
        gateway = self._gateways.get(name) if name in self._gateways else None
        for job in jobs:
            async with self._db.session() as session:
                await self._status.transition(
                    session,
                    job.id,
                    JobStatus.CANCELLED,
                    reason=JobReason.USER_REQUESTED,
                    description=f"its cluster {name} was decommissioned by {caller.name}",
                )
            stopped.append(job.id)
            if gateway is None:
                continue
            try:
                await gateway.stop(job.id, grace_s=self._kill_grace_s)
            except Exception:
                # Its record says cancelled; a workload left behind on a gateway that comes
                # back is an orphan nobody stops: say so where an operator looks.
                log = logger.warning if job.status is JobStatus.RUNNING else logger.debug
                log("cluster %s: stopping job %s failed", name, job.id, exc_info=True)
        return stopped

    async def _fresh_row(self, session: AsyncSession, name: str) -> ClusterRow:
        session.expire_all()
        return await self._row(session, name)

    # -- gateways: opened at start and registration, watched by the heartbeat -------------

    async def open_registered(self) -> None:
        """Open the gateway of every registered cluster but the platform's own (made by
        `Platform.create`); one that cannot be opened is failed, the others go on."""
        async with self._db.session() as session:
            names = list(
                await session.scalars(
                    select(ClusterRow.name).where(
                        ClusterRow.name != self._home_cluster,
                        ClusterRow.status != ClusterStatus.DELETING.value,
                    )
                )
            )
        # At once: a gateway that does not answer holds up the start by its timeout, not
        # by its timeout per cluster.
        await asyncio.gather(*(self.open(name) for name in names))

    async def sync_registry(self) -> None:
        """Bring this process's gateways in line with the registered clusters: open those
        registered through another process, close those removed through another one."""
        async with self._db.session() as session:
            rows = (await session.execute(select(ClusterRow.name, ClusterRow.status))).all()
        registered = {name for name, status in rows if status != ClusterStatus.DELETING.value}
        for name in sorted(registered - set(self._gateways.names()) - self._unmade):
            if name != self._home_cluster:
                await self.open(name)
        for name in set(self._gateways.names()) - registered - {self._home_cluster}:
            if any(row_name == name for row_name, _status in rows):
                continue  # being decommissioned: the process doing it closes it
            gateway = self._gateways.remove(name)
            self._unopened.discard(name)
            self._forget_parts(name)
            if gateway is not None:
                try:
                    await gateway.close()
                except Exception:
                    logger.warning("cluster %s: closing its gateway failed", name, exc_info=True)

    async def open(self, name: str) -> None:
        """Make the cluster's gateway, add it to the registry and open it, unless this
        process has it or is opening it; never raises for a gateway's failure: the
        cluster's status says it."""
        if name in self._gateways or name in self._opening:
            return
        self._opening.add(name)
        try:
            await self._open(name)
        finally:
            self._opening.discard(name)

    async def _open(self, name: str) -> None:
        async with self._db.session() as session:
            row = await self._row(session, name)
            gateway_setting, sealed = row.gateway, row.gateway_secret
            runtime = ClusterRuntime(row.runtime)
        await self._set_status(name, ClusterStatus.DEPLOYING, None)
        try:
            secret = self._keyring.open(sealed).decode() if sealed else None
            gateway = await gateway_for(
                name,
                gateway_setting,
                secret=secret,
                local=self._local_gateway,
                remote=self._remote_gateway,
                runtime=runtime,
            )
        except (Unreadable, GliaError, ImportError, ValueError, OSError) as exc:
            reason = (
                "its gateway's secret cannot be opened with the keyring's keys"
                if isinstance(exc, Unreadable)
                else f"its gateway cannot be made: {_reason(exc)}"
            )
            logger.error("cluster %s: %s", name, reason)
            self._unmade.add(name)
            await self._set_status(name, ClusterStatus.FAILED, reason)
            return
        self._gateways.add(name, gateway)
        self._unopened.add(name)
        await self.heartbeat(name)

    async def heartbeat(self, name: str, *, record: bool = True) -> bool:
        """Ask the cluster's gateway for its capacity (opening it first if it has not
        opened yet) and, with ``record``, record the answer: deployed, its heartbeat and
        capacity; or, when it does not answer, failed with why (deploying, for one that never
        answered). True when it answered. Of several processes, the one controlling the
        cluster records: another's view (a process cut off from a gateway the rest reach)
        must not flip the cluster's status back and forth."""
        try:
            gateway = self._gateways.get(name)
        except Unavailable:
            return False
        try:
            async with asyncio.timeout(self._heartbeat_timeout_s):
                if name in self._unopened:
                    await gateway.open()
                    self._unopened.discard(name)
                capacity = await gateway.capacity()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, Unavailable | Unauthenticated | TimeoutError | OSError):
                # Not a gateway that is away but one that failed: its jobs are treated the
                # same (their status kept), and the failure goes to the log in full.
                logger.error("cluster %s: its heartbeat failed", name, exc_info=True)
            if record:
                await self._missed(name, exc)
            return False
        if record:
            await self.answered(name, capacity)
        return True

    async def answered(self, name: str, capacity: ClusterCapacity) -> None:
        """Record that the cluster's gateway answered with ``capacity``: deployed, with its
        heartbeat (presets sized to it for a cluster registered without any)."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(ClusterRow)
                .options(selectinload(ClusterRow.presets))
                .where(ClusterRow.name == name)
            )
            if row is None or row.status == ClusterStatus.DELETING.value:
                return
            first = row.last_heartbeat_at is None
            row.last_heartbeat_at = utcnow()
            row.capacity = capacity.model_dump(mode="json")
            changed = row.status != ClusterStatus.DEPLOYED.value
            row.status = ClusterStatus.DEPLOYED.value
            row.status_reason = None
            if first and not row.presets:
                # Registered without presets: three sized to what it has, as for the
                # platform's own cluster.
                for position, preset in enumerate(presets_for_host(capacity)):
                    preset_row = PresetRow(name=preset.name, position=position)
                    fill_preset_row(preset_row, preset)
                    row.presets.append(preset_row)
                changed = True
            await session.commit()
        if changed:
            logger.info("cluster %s: its gateway answers; deployed", name)
            self._clusters.changed()

    async def _missed(self, name: str, exc: BaseException) -> None:
        async with self._db.session() as session:
            row = await session.scalar(select(ClusterRow).where(ClusterRow.name == name))
            if row is None or row.status == ClusterStatus.DELETING.value:
                return
            if isinstance(exc, Unauthenticated):
                # It answers, but does not take this control plane's claims: another secret
                # (or another cluster) behind the URL. Not something waiting mends.
                status = ClusterStatus.FAILED
                reason = _reason(exc)
            elif row.last_heartbeat_at is None:
                # A gateway that never answered: deploying while it may still come up.
                status = ClusterStatus.DEPLOYING
                reason = f"waiting for its gateway to answer: {_reason(exc)}"
            else:
                status = ClusterStatus.FAILED
                why = "timed out" if isinstance(exc, TimeoutError) else _reason(exc)
                since = row.last_heartbeat_at.strftime("%Y-%m-%d %H:%M:%S")
                reason = f"its gateway has not answered since {since} UTC: {why}"
            changed = row.status != status.value
            row.status = status.value
            row.status_reason = reason
            await session.commit()
        if changed:
            logger.warning("cluster %s: %s", name, reason)
            self._clusters.changed()

    async def _set_status(self, name: str, status: ClusterStatus, reason: str | None) -> None:
        async with self._db.session() as session:
            row = await session.scalar(select(ClusterRow).where(ClusterRow.name == name))
            if row is None:
                return
            row.status = status.value
            row.status_reason = reason
            await session.commit()
        self._clusters.changed()
