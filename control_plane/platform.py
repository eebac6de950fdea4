"""Assembly of the control plane's parts from `Settings`: one `Platform` per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.runtimes.base import Runtime
from cluster_gateway.runtimes.local import LocalRuntime
from glia.events import EventBus, create_bus
from glia.metrics import Metrics
from glia.services.acl import AclService, Action, role_subject
from glia.services.auth import ADMIN_ROLE, AuthService
from glia.services.clusters import ClustersService, GatewayRegistry, presets_for_host
from glia.services.jobs import JobsService
from glia.services.monitoring import MonitoringService
from glia.settings import Settings
from glia.store.database import Database

logger = logging.getLogger(__name__)

# Admins manage every resource of every kind.
ADMIN_GRANT_URI = "*"


@dataclass
class Platform:
    settings: Settings
    db: Database
    bus: EventBus
    metrics: Metrics
    acl: AclService
    auth: AuthService
    clusters: ClustersService
    gateways: GatewayRegistry
    jobs: JobsService
    monitoring: MonitoringService

    @classmethod
    async def create(cls, settings: Settings, *, runtime: Runtime | None = None) -> Platform:
        """Build and open every part; ``runtime`` replaces the local runtime (tests)."""
        if settings.secret_key is None:
            raise ValueError("GLIA_SECRET_KEY is not set: tokens cannot be signed")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.effective_database_url)
        await db.migrate()
        bus = create_bus(settings.redis_url, prefix=settings.redis_prefix)
        metrics = Metrics()
        acl = AclService(db, bus)
        await acl.load()
        await acl.grant(role_subject(ADMIN_ROLE), ADMIN_GRANT_URI, Action.MANAGE)
        auth = AuthService(
            acl=acl,
            secret_key=settings.secret_key.get_secret_value(),
            token_ttl_s=settings.token_ttl_s,
        )
        clusters = ClustersService()
        gateways = GatewayRegistry()
        if runtime is None:
            runtime = LocalRuntime(
                settings.runtime_dir,
                use_cgroups=settings.use_cgroups,
                default_grace_s=settings.kill_grace_s,
            )
        gateway = EmbeddedGateway(settings.cluster_name, runtime)
        await gateway.open()
        gateways.add(settings.cluster_name, gateway)
        capacity = await gateway.capacity()
        async with db.session() as session:
            await clusters.ensure(
                session, name=settings.cluster_name, presets=presets_for_host(capacity)
            )
        jobs = JobsService(
            db=db,
            acl=acl,
            bus=bus,
            clusters=clusters,
            gateways=gateways,
            metrics=metrics,
            org=settings.default_org,
            base_env=settings.job_base_env,
            kill_grace_s=settings.kill_grace_s,
        )
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            metrics=metrics,
            acl=acl,
            auth=auth,
            clusters=clusters,
            gateways=gateways,
            jobs=jobs,
            monitoring=MonitoringService(jobs=jobs, gateways=gateways),
        )

    async def close(self) -> None:
        for _name, gateway in self.gateways.items():
            try:
                await gateway.close()
            except Exception:
                logger.exception("closing the gateway of cluster %s", _name)
        await self.bus.close()
        await self.db.dispose()
