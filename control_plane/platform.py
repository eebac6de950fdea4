"""Assembly of the control plane's parts from `Settings`: one `Platform` per process."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cluster_gateway.blobs.base import BlobStore
from cluster_gateway.blobs.fs import FilesystemBlobStore
from cluster_gateway.disks import LocalDisks
from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import Gateway
from cluster_gateway.runtimes.base import Runtime
from cluster_gateway.runtimes.gpus import parse_inventory
from cluster_gateway.runtimes.local import LocalRuntime
from cluster_gateway.storage import LocalStorage, Storage
from control_plane.events import EventBus, create_bus
from control_plane.keyring import Keyring
from control_plane.metrics import Metrics
from control_plane.rate_limits import RateLimits
from control_plane.services.acl import AclService
from control_plane.services.auth import ADMIN_ROLE, AuthService
from control_plane.services.blobs import BlobsService, blob_s3_config
from control_plane.services.cluster_lifecycle import ClusterLifecycle
from control_plane.services.clusters import (
    ClusterRegistry,
    ClustersService,
    ClusterUsersService,
    GatewayRegistry,
    PresetsService,
    presets_for_host,
)
from control_plane.services.disks import DisksService
from control_plane.services.ingress import IngressService
from control_plane.services.jobs import (
    ClusterReconciler,
    JobsService,
    JobStatusMachine,
    JobSubmitter,
)
from control_plane.services.jobs.billing import Billing
from control_plane.services.jobs.life_span import LifeSpans
from control_plane.services.jobs.scheduler import Scheduler
from control_plane.services.monitoring import MonitoringService
from control_plane.services.orgs import OrgsService
from control_plane.services.projects import ProjectsService
from control_plane.services.quotas import QuotasService
from control_plane.services.secrets import SecretsService
from control_plane.services.service_accounts import ServiceAccountsService
from control_plane.services.sharing import SharingService
from control_plane.services.storage import StorageService
from control_plane.services.telemetry import TelemetryService
from control_plane.services.users import UsersService
from control_plane.services.volumes import VolumesService
from control_plane.settings import Settings
from control_plane.store.database import Database
from glia.acl import ALL_URIS, Action, role_subject
from glia.clusters import ClusterRuntime
from glia.disks import DiskStore
from glia.errors import Unavailable

if TYPE_CHECKING:  # imported where used: only a control plane with such a cluster needs it
    from cluster_gateway.runtimes.kubernetes import KubernetesRuntime

logger = logging.getLogger(__name__)
# How long closing waits for each cluster's gateway.
GATEWAY_CLOSE_S = 10.0


def keep_private(data_dir: Path) -> None:
    """The data dir holds the database, the signing key and every job's files: the server's
    user alone may enter it."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if data_dir.stat().st_uid == os.geteuid():
        data_dir.chmod(0o700)


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
    users: UsersService
    orgs: OrgsService
    projects: ProjectsService
    cluster_users: ClusterUsersService
    sharing: SharingService
    service_accounts: ServiceAccountsService
    job_status: JobStatusMachine
    reconciler: ClusterReconciler
    scheduler: Scheduler
    quotas: QuotasService
    billing: Billing
    presets: PresetsService
    life_spans: LifeSpans
    monitoring: MonitoringService
    ingress: IngressService
    blobs: BlobsService
    secrets: SecretsService
    storage: StorageService
    disks: DisksService
    telemetry: TelemetryService
    lifecycle: ClusterLifecycle

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        runtime: Runtime | None = None,
        local_runtime: Callable[[str, Path], Runtime] | None = None,
    ) -> Platform:
        """Build and open every part; ``runtime`` replaces the local runtime of the
        platform's own cluster, ``local_runtime`` (cluster name, data dir) those of the
        `local` clusters registered beside it (tests)."""
        if settings.secret_key is None:
            raise ValueError("GLIA_SECRET_KEY is not set: tokens cannot be signed")
        keep_private(settings.data_dir)
        db = Database(settings.effective_database_url)
        await db.migrate()
        bus = create_bus(settings.redis_url, prefix=settings.redis_prefix)
        metrics = Metrics()
        acl = AclService(db, bus)
        await acl.load()
        # Admins manage every resource of every kind.
        await acl.grant(role_subject(ADMIN_ROLE), ALL_URIS, Action.MANAGE)
        clusters = ClustersService()
        orgs = OrgsService(acl=acl, clusters=clusters)
        projects = ProjectsService(acl=acl, orgs=orgs)
        gateways = GatewayRegistry()
        # Each cluster's files, disks and buckets, by cluster name.
        storages = ClusterRegistry[Storage]("storage")
        disk_stores = ClusterRegistry[DiskStore]("disks")
        blob_stores = ClusterRegistry[BlobStore]("buckets")
        local_storage = LocalStorage(settings.runtime_dir / "storage")
        await local_storage.open()
        storages.add(settings.cluster_name, local_storage)
        local_disks = LocalDisks(settings.runtime_dir / "disks")
        blob_stores.add(
            settings.cluster_name,
            FilesystemBlobStore(settings.data_dir / "clusters" / settings.cluster_name / "blobs"),
        )

        def local_runtime_at(
            root: Path, storage: LocalStorage, disks: LocalDisks, *, gpus: bool = False
        ) -> LocalRuntime:
            """The settings' local runtime over ``root``; ``gpus``: with this host's GPU
            inventory (the platform's own cluster has it, clusters added beside it not)."""
            return LocalRuntime(
                root,
                use_cgroups=settings.use_cgroups,
                default_grace_s=settings.kill_grace_s,
                retention_s=settings.workload_retention_s,
                log_limit_bytes=settings.job_log_limit_bytes,
                gpu_inventory=(
                    parse_inventory(settings.local_gpus) if gpus and settings.local_gpus else None
                ),
                storage=storage,
                disks=disks,
                telemetry_interval_s=settings.telemetry_interval_s,
            )

        async def kubernetes_pods(name: str) -> KubernetesRuntime:
            """The settings' kubernetes runtime for cluster ``name`` (``GLIA_KUBECONFIG``, else
            the in-cluster config); imported here: only a control plane with such a cluster
            needs the client."""
            from cluster_gateway.runtimes.kubernetes import DEFAULT_IMAGE
            from cluster_gateway.runtimes.kubernetes_setup import (
                kubernetes_runtime,
                load_configuration,
            )

            try:
                configuration = await load_configuration(settings.kubeconfig)
            except ValueError as error:  # shown as the cluster's reason: say why
                raise Unavailable(str(error)) from None
            return kubernetes_runtime(
                configuration,
                cluster=name,
                namespace_prefix=settings.k8s_namespace_prefix,
                pod_annotations=settings.k8s_pod_annotations,
                image=settings.k8s_image or DEFAULT_IMAGE,
                default_grace_s=settings.kill_grace_s,
                storage_claim=settings.k8s_storage_claim,
                forward_auth_url=f"{settings.effective_public_url}/auth/forward",
            )

        home_disks: DiskStore = local_disks
        if runtime is None:
            if settings.cluster_runtime is ClusterRuntime.KUBERNETES:
                pods = await kubernetes_pods(settings.cluster_name)
                runtime, home_disks = pods, pods.disks  # its disks are claims
            else:
                runtime = local_runtime_at(
                    settings.runtime_dir, local_storage, local_disks, gpus=True
                )
        disk_stores.add(settings.cluster_name, home_disks)

        async def local_gateway(name: str, kind: ClusterRuntime) -> Gateway:
            """A `local` cluster registered beside the platform's own: an in-process gateway
            over a local runtime, or over a Kubernetes cluster (``GLIA_KUBECONFIG``, else
            in-cluster), with storage and disks of its own under its data dir."""
            root = settings.data_dir / "clusters" / name
            cluster_runtime: Runtime
            cluster_disks: DiskStore | None = None
            if kind is ClusterRuntime.KUBERNETES:
                pods = await kubernetes_pods(name)
                cluster_runtime, cluster_disks = pods, pods.disks  # its disks are claims
            storage = LocalStorage(root / "storage")
            await storage.open()
            disks = LocalDisks(root / "disks")
            if kind is not ClusterRuntime.KUBERNETES:  # that one was made above, first
                cluster_runtime = (
                    local_runtime(name, root)
                    if local_runtime is not None
                    else local_runtime_at(root, storage, disks)
                )
            storages.add(name, storage)
            disk_stores.add(name, cluster_disks or disks)
            blob_stores.add(name, FilesystemBlobStore(root / "blobs"))
            return EmbeddedGateway(name, cluster_runtime)

        async def remote_gateway(name: str, url: str, secret: str) -> Gateway:
            """A cluster served by `glia gateway serve` at ``url``: its workloads, storage,
            disks and buckets, all through that gateway (imported here: only a control plane that
            federates remote clusters needs the client's libraries)."""
            from cluster_gateway.remote import RemoteGateway

            remote = RemoteGateway(name, url, secret=secret)
            storages.add(name, remote.storage)
            disk_stores.add(name, remote.disks)
            blob_stores.add(name, remote.blobs)
            return remote

        gateway = EmbeddedGateway(settings.cluster_name, runtime)
        await gateway.open()
        gateways.add(settings.cluster_name, gateway)
        isolation = await gateway.isolation()
        if not isolation.multi_user:
            logger.warning(
                "single-user mode: cluster %s can neither run each user's jobs under a uid of "
                "their own (run the server as root) nor sandbox them (install bubblewrap); "
                "jobs could read what the platform and other users keep on this host, so "
                "Glia refuses a second user",
                settings.cluster_name,
            )
        auth = AuthService(
            db=db,
            bus=bus,
            acl=acl,
            orgs=orgs,
            home_cluster=settings.cluster_name,
            secret_key=settings.secret_key.get_secret_value(),
            token_ttl_s=settings.token_ttl_s,
            rate_limits=RateLimits(settings.redis_url, prefix=settings.redis_prefix),
            login_rate_per_user=settings.login_rate_per_user,
            login_rate_per_address=settings.login_rate_per_address,
            uid_range=range(settings.job_uid_base, settings.job_uid_base + settings.job_uid_count),
            single_user=not isolation.multi_user,
            ingress_session_ttl_s=settings.ingress_session_ttl_s,
        )
        capacity = await gateway.capacity()
        async with db.session() as session:
            await clusters.ensure(
                session,
                name=settings.cluster_name,
                presets=presets_for_host(capacity),
                runtime=settings.cluster_runtime,
            )
            # The rules orgs, projects and clusters mean, where a migration or a crash left
            # some unwritten.
            await orgs.sync(session)
        # One keyring seals secrets and imported buckets' credentials (docs/security.md).
        keyring = Keyring.from_config(
            secret_key=settings.secret_key.get_secret_value(),
            secrets_keys=(
                settings.secrets_keys.get_secret_value() if settings.secrets_keys else None
            ),
        )
        blobs = BlobsService(
            db=db,
            acl=acl,
            projects=projects,
            cluster_blobs=blob_stores,
            secret_key=settings.secret_key.get_secret_value(),
            public_url=settings.effective_public_url,
            default_cluster=settings.cluster_name,
            cluster_s3=blob_s3_config(settings),
            import_private_endpoints=settings.blob_import_private_endpoints,
            keyring=keyring,
        )
        secrets = SecretsService(
            acl=acl,
            projects=projects,
            blobs=blobs,
            keyring=keyring,
            public_url=settings.effective_public_url,
            default_cluster=settings.cluster_name,
        )
        status = JobStatusMachine(db=db, bus=bus, metrics=metrics, auth=auth)
        lifecycle = ClusterLifecycle(
            db=db,
            acl=acl,
            clusters=clusters,
            gateways=gateways,
            status=status,
            keyring=keyring,
            local_gateway=local_gateway,
            remote_gateway=remote_gateway,
            cluster_parts=(storages, disk_stores, blob_stores),
            home_cluster=settings.cluster_name,
            kill_grace_s=settings.kill_grace_s,
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
        )
        # The platform's own cluster answered (its capacity, above): deployed, whatever the
        # last run left. Every other registered cluster's gateway is opened; one that cannot
        # open is failed, with the reason, and the control plane serves the rest.
        await lifecycle.answered(settings.cluster_name, capacity)
        await lifecycle.open_registered()
        quotas = QuotasService(acl=acl, orgs=orgs, clusters=clusters)
        disks = DisksService(
            db=db,
            acl=acl,
            projects=projects,
            stores=disk_stores,
            default_cluster=settings.cluster_name,
        )
        submitter = JobSubmitter(
            db=db,
            acl=acl,
            auth=auth,
            clusters=clusters,
            gateways=gateways,
            status=status,
            orgs=orgs,
            projects=projects,
            quotas=quotas,
            volumes=VolumesService(acl=acl, disks=disks, secrets=secrets),
            base_env=settings.job_base_env,
            max_unfinished=settings.max_unfinished_jobs_per_user,
            job_url=settings.job_url,
            api_url=settings.effective_public_url,
        )
        scheduler = Scheduler(
            db=db,
            bus=bus,
            clusters=clusters,
            gateways=gateways,
            status=status,
            submitter=submitter,
            quotas=quotas,
            disks=disks,
            kill_grace_s=settings.kill_grace_s,
        )
        submitter.on_submitted = scheduler.request
        jobs = JobsService(
            db=db,
            acl=acl,
            bus=bus,
            gateways=gateways,
            status=status,
            submitter=submitter,
            kill_grace_s=settings.kill_grace_s,
        )
        users = UsersService(acl=acl, auth=auth, jobs=jobs, orgs=orgs)
        return cls(
            lifecycle=lifecycle,
            settings=settings,
            db=db,
            bus=bus,
            metrics=metrics,
            acl=acl,
            auth=auth,
            clusters=clusters,
            gateways=gateways,
            jobs=jobs,
            users=users,
            orgs=orgs,
            projects=projects,
            cluster_users=ClusterUsersService(acl=acl, clusters=clusters),
            sharing=SharingService(acl=acl),
            service_accounts=ServiceAccountsService(
                acl=acl,
                auth=auth,
                users=users,
                projects=projects,
                token_ttl_s=settings.service_account_token_ttl_s,
            ),
            job_status=status,
            reconciler=ClusterReconciler(
                db=db,
                gateways=gateways,
                status=status,
                submitter=submitter,
                scheduler=scheduler,
                kill_grace_s=settings.kill_grace_s,
            ),
            scheduler=scheduler,
            quotas=quotas,
            billing=Billing(
                db=db, gateways=gateways, status=status, kill_grace_s=settings.kill_grace_s
            ),
            presets=PresetsService(acl=acl, clusters=clusters, gateways=gateways),
            life_spans=LifeSpans(acl=acl, gateways=gateways),
            monitoring=MonitoringService(db=db, jobs=jobs, gateways=gateways),
            ingress=IngressService(db=db, acl=acl, auth=auth, jobs_domain=settings.jobs_domain),
            disks=disks,
            storage=StorageService(
                acl=acl, storages=storages, max_upload_bytes=settings.storage_upload_limit_bytes
            ),
            blobs=blobs,
            secrets=secrets,
            telemetry=TelemetryService(
                db=db,
                jobs=jobs,
                gateways=gateways,
                retention_s=settings.telemetry_retention_s,
                flush_interval_s=settings.telemetry_flush_interval_s,
            ),
        )

    async def close(self) -> None:
        await self.blobs.close()
        for name, gateway in self.gateways.items():
            try:
                # A gateway that does not let go (a remote one mid-connect) must not hold
                # the server's shutdown.
                async with asyncio.timeout(GATEWAY_CLOSE_S):
                    await gateway.close()
            except TimeoutError:
                logger.error("cluster %s: its gateway did not close in %s s", name, GATEWAY_CLOSE_S)
            except Exception:
                logger.exception("closing the gateway of cluster %s", name)
        await self.bus.close()
        await self.db.dispose()
