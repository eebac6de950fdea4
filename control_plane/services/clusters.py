"""Clusters known to the control plane, their presets, and the gateways that reach them."""

from __future__ import annotations

import builtins
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from cluster_gateway.gateway import ClusterCapacity, Gateway
from control_plane.services.acl import AclService
from control_plane.store.models import ClusterRow, PresetRow
from glia.acl import Action
from glia.auth import User
from glia.clusters import (
    LOCAL_GATEWAY,
    Cluster,
    ClusterRuntime,
    ClusterSettingsInput,
    ClusterStatus,
    Preset,
    PresetInput,
    Resources,
    fit_count,
)
from glia.errors import BadInput, Conflict, Forbidden, NotFound, Unavailable
from glia.tenancy import CLUSTER_ROLES, ClusterRole, Member, cluster_role, cluster_uri

logger = logging.getLogger(__name__)


def preset_from_row(row: PresetRow) -> Preset:
    return Preset(
        name=row.name,
        resources=Resources(
            cpu=row.cpu,
            memory_mb=row.memory_mb,
            gpu=row.gpu,
            pids_limit=row.pids_limit,
            gpu_model=row.gpu_model,
            shm_mb=row.shm_mb,
        ),
        credits_per_hour=row.credits_per_hour,
        preemptible=row.preemptible,
        scheduler_enabled=row.scheduler_enabled,
    )


def cluster_from_row(row: ClusterRow) -> Cluster:
    return Cluster(
        id=row.id,
        name=row.name,
        status=ClusterStatus(row.status),
        presets=tuple(preset_from_row(p) for p in row.presets),
        default_life_span_s=row.default_life_span_s,
    )


def fill_preset_row(row: PresetRow, preset: Preset) -> None:
    resources = preset.resources
    row.cpu = resources.cpu
    row.memory_mb = resources.memory_mb
    row.gpu = resources.gpu
    row.gpu_model = resources.gpu_model
    row.shm_mb = resources.shm_mb
    row.pids_limit = resources.pids_limit
    row.credits_per_hour = preset.credits_per_hour
    row.preemptible = preset.preemptible
    row.scheduler_enabled = preset.scheduler_enabled


def presets_for_host(capacity: ClusterCapacity) -> list[Preset]:
    """A few presets sized to one machine: small, about a quarter and about half of it.

    Medium and large get different cpu counts wherever the host has more than one core
    (on 2 cores: 0.5, 1 and 2), and memory is a round figure (whole GiB, or 256 MiB steps on
    a small host), never more than the host has.
    """
    cpu = max(capacity.cpu, 1.0)
    memory = max(capacity.memory_mb, 1024)
    medium_cpu = max(1.0, _round_cpu(cpu / 4))
    large_cpu = max(_round_cpu(cpu / 2), min(medium_cpu * 2, _round_cpu(cpu)))
    sizes = [
        ("cpu-small", Resources(cpu=min(0.5, cpu), memory_mb=min(1024, _round_memory(memory / 4)))),
        ("cpu-medium", Resources(cpu=medium_cpu, memory_mb=max(1024, _round_memory(memory / 4)))),
        ("cpu-large", Resources(cpu=large_cpu, memory_mb=max(1024, _round_memory(memory / 2)))),
    ]
    if capacity.gpu:
        sizes.append(
            ("gpu-1", Resources(cpu=large_cpu, memory_mb=_round_memory(memory / 2), gpu=1))
        )
    return [Preset(name=name, resources=resources) for name, resources in sizes]


def _round_cpu(cores: float) -> float:
    """Down to a whole core, or to half a core below 2."""
    return float(int(cores)) if cores >= 2 else max(0.5, int(cores * 2) / 2)


def _round_memory(mib: float) -> int:
    """Down to whole GiB from 2 GiB up, else to 256 MiB steps (at least 256 MiB)."""
    step = 1024 if mib >= 2048 else 256
    return max(256, int(mib // step) * step)


class GatewayRegistry:
    """The gateway of each cluster, by cluster name; clusters come and go at run time (the
    Config API, `control_plane.services.cluster_lifecycle`)."""

    def __init__(self) -> None:
        self._gateways: dict[str, Gateway] = {}

    def add(self, name: str, gateway: Gateway) -> None:
        self._gateways[name] = gateway

    def remove(self, name: str) -> Gateway | None:
        """Forget the cluster's gateway (the caller closes it); None if it had none."""
        return self._gateways.pop(name, None)

    def get(self, name: str) -> Gateway:
        try:
            return self._gateways[name]
        except KeyError:
            raise Unavailable(f"cluster {name!r} has no gateway connected") from None

    def __contains__(self, name: object) -> bool:
        return name in self._gateways

    def names(self) -> list[str]:
        return list(self._gateways)

    def items(self) -> list[tuple[str, Gateway]]:
        return list(self._gateways.items())


Part = TypeVar("Part")


class ClusterRegistry(Generic[Part]):
    """One part of each cluster, by cluster name: its storage, its disk store or its bucket
    store. The platform adds a cluster's parts when it makes its gateway (in process, or
    through a remote one), `ClusterLifecycle` removes them when the cluster goes."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._parts: dict[str, Part] = {}

    def add(self, cluster: str, part: Part) -> None:
        self._parts[cluster] = part

    def remove(self, cluster: str) -> None:
        self._parts.pop(cluster, None)

    def get(self, cluster: str) -> Part:
        try:
            return self._parts[cluster]
        except KeyError:
            raise NotFound(f"cluster {cluster!r} has no {self._what}") from None


LocalGatewayFactory = Callable[[str, ClusterRuntime], Awaitable[Gateway]]
# Makes the client of a remote cluster's gateway from its name, URL and shared secret (the
# platform's registers the cluster's storage and disks through it too).
RemoteGatewayFactory = Callable[[str, str, str], Awaitable[Gateway]]


def gateway_for(
    name: str,
    gateway: str,
    *,
    secret: str | None,
    local: LocalGatewayFactory,
    remote: RemoteGatewayFactory,
    runtime: ClusterRuntime = ClusterRuntime.LOCAL,
) -> Awaitable[Gateway]:
    """The gateway that reaches cluster ``name``: ``local`` makes an in-process one (an
    `EmbeddedGateway` over ``runtime``, with a data dir of its own); a URL, ``remote``
    a `RemoteGateway` client of its `glia gateway serve`, which proves itself with
    ``secret``. The gateway is not opened here."""
    if gateway == LOCAL_GATEWAY:
        return local(name, runtime)
    if not secret:
        raise BadInput(f"cluster {name!r}: a remote gateway needs its shared secret")
    return remote(name, gateway, secret)


class ClustersService:
    """Clusters change rarely and are read on every submission and job listing: reads come
    from a snapshot of all clusters, reloaded when it is older than ``cache_ttl_s`` or
    after a change made through this service."""

    def __init__(self, *, cache_ttl_s: float = 5.0) -> None:
        self._cache_ttl_s = cache_ttl_s
        self._snapshot: list[Cluster] | None = None
        self._loaded_at = 0.0
        # Bumped by every change: a load that began before one is not kept as the snapshot
        # (it may have read the rows from before the change).
        self._generation = 0

    async def ensure(
        self,
        session: AsyncSession,
        *,
        name: str,
        presets: Sequence[Preset],
        runtime: ClusterRuntime = ClusterRuntime.LOCAL,
    ) -> Cluster:
        """Register a cluster with its presets unless it exists (existing presets are kept;
        its runtime is ``runtime``, as the settings say now)."""
        existing = await session.scalar(select(ClusterRow).where(ClusterRow.name == name))
        if existing is not None and existing.runtime != runtime.value:
            existing.runtime = runtime.value
            await session.commit()
        if existing is None:
            row = ClusterRow(
                id=str(uuid.uuid4()),
                name=name,
                gateway=LOCAL_GATEWAY,
                runtime=runtime.value,
                status=ClusterStatus.DEPLOYED.value,
            )
            row.presets = []
            for i, preset in enumerate(presets):
                preset_row = PresetRow(name=preset.name, position=i)
                fill_preset_row(preset_row, preset)
                row.presets.append(preset_row)
            session.add(row)
            await session.commit()
        self._snapshot = None
        return await self.get(session, name)

    def changed(self) -> None:
        """A cluster or its presets changed: the next read loads them again."""
        self._snapshot = None
        self._generation += 1

    async def list(self, session: AsyncSession) -> builtins.list[Cluster]:
        snapshot = self._snapshot
        if snapshot is None or time.monotonic() - self._loaded_at > self._cache_ttl_s:
            generation = self._generation
            rows = await session.scalars(
                select(ClusterRow)
                .options(selectinload(ClusterRow.presets))
                .order_by(ClusterRow.created_at, ClusterRow.name)
            )
            snapshot = [cluster_from_row(row) for row in rows]
            if generation == self._generation:
                self._snapshot = snapshot
                self._loaded_at = time.monotonic()
        return list(snapshot)

    async def get(self, session: AsyncSession, name: str) -> Cluster:
        for cluster in await self.list(session):
            if cluster.name == name:
                return cluster
        raise NotFound(f"cluster {name!r} not found")

    async def by_id(self, session: AsyncSession, cluster_id: str) -> Cluster | None:
        return next((c for c in await self.list(session) if c.id == cluster_id), None)

    async def by_names(
        self, session: AsyncSession, names: Sequence[str]
    ) -> builtins.list[Cluster | None]:
        by_name = {cluster.name: cluster for cluster in await self.list(session)}
        return [by_name.get(name) for name in names]

    async def default_name(self, session: AsyncSession) -> str:
        """The cluster new jobs go to when none is named: the first one registered."""
        clusters = await self.list(session)
        if not clusters:
            raise NotFound("no cluster is registered")
        return clusters[0].name


class PresetsService:
    """A cluster's presets and settings: its managers and admins change them (``manage`` on
    ``cluster://NAME``); its users see them, with how many more jobs of each fit now."""

    def __init__(
        self, *, acl: AclService, clusters: ClustersService, gateways: GatewayRegistry
    ) -> None:
        self._acl = acl
        self._clusters = clusters
        self._gateways = gateways

    async def _managed(self, session: AsyncSession, caller: User, cluster: str) -> ClusterRow:
        """The cluster's row, for a caller who manages it; NotFound for one who may not
        see it, Forbidden for a user of it."""
        row = await session.scalar(
            select(ClusterRow)
            .options(selectinload(ClusterRow.presets))
            .where(ClusterRow.name == cluster)
        )
        if row is None or not await self._acl.check(
            caller.subject, cluster_uri(cluster), Action.READ
        ):
            raise NotFound(f"cluster {cluster!r} not found", fields={"cluster": "not found"})
        await self._acl.require(caller.subject, cluster_uri(cluster), Action.MANAGE)
        return row

    async def add(self, session: AsyncSession, caller: User, new: PresetInput) -> Preset:
        row = await self._managed(session, caller, new.cluster)
        if any(p.name == new.name for p in row.presets):
            raise Conflict(
                f"cluster {new.cluster!r} has a preset {new.name!r} already",
                fields={"name": "taken"},
            )
        preset_row = PresetRow(
            name=new.name, position=max((p.position for p in row.presets), default=-1) + 1
        )
        fill_preset_row(preset_row, new.preset)
        row.presets.append(preset_row)
        await session.commit()
        self._clusters.changed()
        return preset_from_row(preset_row)

    async def update(self, session: AsyncSession, caller: User, new: PresetInput) -> Preset:
        row = await self._managed(session, caller, new.cluster)
        preset_row = self._preset(row, new.name)
        fill_preset_row(preset_row, new.preset)
        await session.commit()
        self._clusters.changed()
        return preset_from_row(preset_row)

    async def remove(self, session: AsyncSession, caller: User, cluster: str, name: str) -> Preset:
        """Remove a preset; jobs of it keep their resources, new ones cannot ask for it."""
        row = await self._managed(session, caller, cluster)
        preset_row = self._preset(row, name)
        preset = preset_from_row(preset_row)
        row.presets.remove(preset_row)
        await session.commit()
        self._clusters.changed()
        return preset

    async def update_settings(
        self, session: AsyncSession, caller: User, new: ClusterSettingsInput
    ) -> Cluster:
        row = await self._managed(session, caller, new.cluster)
        row.default_life_span_s = new.default_life_span_s
        await session.commit()
        self._clusters.changed()
        return await self._clusters.get(session, new.cluster)

    @staticmethod
    def _preset(row: ClusterRow, name: str) -> PresetRow:
        found = next((p for p in row.presets if p.name == name), None)
        if found is None:
            raise NotFound(
                f"cluster {row.name!r} has no preset {name!r}", fields={"name": "not found"}
            )
        return found

    async def with_availability(self, cluster: Cluster) -> Cluster:
        """The cluster with how many more jobs of each preset fit in its free capacity now
        (left unknown where its gateway does not answer)."""
        try:
            capacity = await self._gateways.get(cluster.name).capacity()
        except Exception:
            logger.warning("cluster %s: no capacity to report", cluster.name, exc_info=True)
            return cluster
        free = capacity.free or capacity
        return cluster.model_copy(
            update={
                "presets": tuple(
                    p.model_copy(
                        update={"available": fit_count(p.resources, free, capacity.gpu_model)}
                    )
                    for p in cluster.presets
                )
            }
        )


class ClusterUsersService:
    """Who may run on a cluster, and manage it: role links to the cluster's built-in roles
    (`glia.tenancy`). An org's users are the cluster's users through the org's role; this is
    for the users given a role on the cluster itself."""

    def __init__(self, *, acl: AclService, clusters: ClustersService) -> None:
        self._acl = acl
        self._clusters = clusters

    async def _visible(self, session: AsyncSession, caller: User, cluster: str) -> None:
        await self._clusters.get(session, cluster)
        if not await self._acl.check(caller.subject, cluster_uri(cluster), Action.READ):
            raise NotFound(f"cluster {cluster!r} not found")

    def role_in(self, subject: str, cluster: str) -> ClusterRole | None:
        held = self._acl.subjects_of(subject)
        for role in reversed(CLUSTER_ROLES):
            if cluster_role(cluster, role) in held:
                return role
        return None

    async def members(self, session: AsyncSession, caller: User, cluster: str) -> list[Member]:
        """The users given a role on the cluster (its managers and admins may look)."""
        await self._visible(session, caller, cluster)
        await self._acl.require(caller.subject, cluster_uri(cluster), Action.WRITE)
        members: dict[str, str] = {}
        for role in CLUSTER_ROLES:
            for member in self._acl.members_of(cluster_role(cluster, role)):
                if member.startswith("user:"):
                    members[member.removeprefix("user:")] = role.value
        return [Member(user=user, role=role) for user, role in sorted(members.items())]

    async def add_member(
        self, session: AsyncSession, caller: User, cluster: str, member: str, role: ClusterRole
    ) -> Member:
        """Give ``member`` (``user:NAME``, which must exist) a role on the cluster, replacing
        the one they had; managers add users and managers, admins admins too."""
        await self._visible(session, caller, cluster)
        self._require_member_manager(caller, cluster, role)
        current = self.role_in(member, cluster)
        if current is not None:
            self._require_member_manager(caller, cluster, current)
        await self._acl.add_rules([], [(member, cluster_role(cluster, role))])
        others = [(member, cluster_role(cluster, r)) for r in CLUSTER_ROLES if r is not role]
        await self._acl.remove_rules([], others)
        return Member(user=member.removeprefix("user:"), role=role.value)

    async def remove_member(
        self, session: AsyncSession, caller: User, cluster: str, member: str
    ) -> Member:
        await self._visible(session, caller, cluster)
        current = next(
            (r for r in CLUSTER_ROLES if member in self._acl.members_of(cluster_role(cluster, r))),
            None,
        )
        if current is None:
            raise NotFound(f"{member.removeprefix('user:')!r} has no role on cluster {cluster!r}")
        self._require_member_manager(caller, cluster, current)
        await self._acl.remove_rules(
            [], [(member, cluster_role(cluster, role)) for role in CLUSTER_ROLES]
        )
        return Member(user=member.removeprefix("user:"), role=current.value)

    def _require_member_manager(self, caller: User, cluster: str, role: ClusterRole) -> None:
        needed = Action.MANAGE if role is ClusterRole.ADMIN else Action.WRITE
        if not self._acl.index.check(caller.subject, cluster_uri(cluster), needed):
            who = "admins" if needed is Action.MANAGE else "managers"
            what = "an admin" if role is ClusterRole.ADMIN else "a user"
            raise Forbidden(f"only the {who} of cluster {cluster!r} may change who is {what} of it")
