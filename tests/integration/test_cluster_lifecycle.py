"""The Config API (docs/clusters.md): clusters registered, changed and decommissioned at run
time by the platform's admins; their heartbeat; and jobs on a cluster whose gateway stops
answering, which keep their last known status (GatewayUnreachable) until it answers again."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cluster_gateway.gateway import (
    ClusterCapacity,
    WorkloadEvent,
    WorkloadSpec,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.runtimes.base import Runtime
from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.store.models import ClusterRow, JobRow, LeaseRow
from glia.errors import Unavailable
from tests.factories import Api, GraphQLErrors, make_settings, running_api
from tests.polling import eventually

CONFIG = """id name status statusReason gateway runtime storageUrl registryUrl
    defaultLifeSpanSeconds presets { name resources { cpu memoryMb } }
    health { lastHeartbeatAt capacity { cpu memoryMb } free { cpu } } createdAt"""
ADD = f"""mutation($input: AddClusterInput!) {{
    addCluster(input: $input) {{ cluster {{ {CONFIG} }} gatewaySecret }} }}"""
UPDATE = f"""mutation($input: UpdateClusterInput!) {{
    updateCluster(input: $input) {{ cluster {{ {CONFIG} }} }} }}"""
REMOVE = f"""mutation($name: String!) {{
    removeCluster(name: $name) {{ cluster {{ {CONFIG} }} stoppedJobs }} }}"""
LIST = f"query {{ clusterConfigs {{ {CONFIG} }} }}"
ONE = f"query($name: String!) {{ clusterConfig(name: $name) {{ {CONFIG} }} }}"
JOB = "query($id: ID!) { job(id: $id) { id status reason statusDescription } }"


class _CutWatch:
    """A watch whose events are lost while its runtime is cut off (as over a cut network)."""

    def __init__(self, inner: WorkloadWatch, runtime: UnreachableRuntimeStandIn) -> None:
        self._inner = inner
        self._runtime = runtime

    @property
    def cursor(self) -> str:
        return self._inner.cursor

    async def __aiter__(self) -> AsyncIterator[WorkloadEvent]:
        async for event in self._inner:
            if not self._runtime.cut:
                yield event


class UnreachableRuntimeStandIn(FakeRuntime):
    """A stand-in for a cluster across a network: the fake runtime (which passes the runtime
    contract suite), except that while ``cut`` every call raises `Unavailable`, as a
    `RemoteGateway` does when it cannot reach its gateway, and watch events are lost."""

    def __init__(self) -> None:
        super().__init__(capacity=ClusterCapacity(cpu=4.0, memory_mb=8192))
        self.cut = False

    def _check(self) -> None:
        if self.cut:
            raise Unavailable("the gateway does not answer (stand-in: connection cut)")

    async def capacity(self) -> ClusterCapacity:
        self._check()
        return await super().capacity()

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        self._check()
        return await super().start(spec)

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None:
        self._check()
        await super().stop(job_id, grace_s=grace_s)

    async def states(self, job_ids: Sequence[str]) -> list[WorkloadState]:
        self._check()
        return await super().states(job_ids)

    async def active_workloads(self) -> list[WorkloadState]:
        self._check()
        return await super().active_workloads()

    def watch(self, *, after: str | None = None) -> AbstractAsyncContextManager[WorkloadWatch]:
        self._check()
        inner = super().watch(after=after)

        @asynccontextmanager
        async def cut_watch() -> AsyncIterator[WorkloadWatch]:
            async with inner as watch:
                yield _CutWatch(watch, self)

        return cut_watch()


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    runtimes: dict[str, Runtime] = {}

    def local_runtime(name: str, _root: Path) -> Runtime:
        runtimes[name] = UnreachableRuntimeStandIn()
        return runtimes[name]

    settings = make_settings(
        tmp_path,
        database_url,
        reconcile_interval_s=0.2,
        heartbeat_interval_s=0.2,
        heartbeat_timeout_s=1.0,
    )
    async with running_api(settings, FakeRuntime(), local_runtime=local_runtime) as served:
        served.runtimes = runtimes  # type: ignore[attr-defined]
        yield served


def _runtime(api: Api, name: str) -> UnreachableRuntimeStandIn:
    runtime: UnreachableRuntimeStandIn = api.runtimes[name]  # type: ignore[attr-defined]
    return runtime


async def _add(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    data = await api.gql(ADD, {"input": fields}, token=token)
    added: dict[str, Any] = data["addCluster"]
    return added


async def _config(api: Api, token: str, name: str) -> dict[str, Any]:
    config: dict[str, Any] = (await api.gql(ONE, {"name": name}, token=token))["clusterConfig"]
    return config


async def _job(api: Api, token: str, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await api.gql(JOB, {"id": job_id}, token=token))["job"]
    return job


async def test_a_local_cluster_is_registered_deployed_listed_changed_and_removed(
    api: Api,
) -> None:
    admin = await api.user("root", role="admin")
    added = await _add(
        api,
        admin,
        name="second",
        storageUrl="https://storage.example.com/",
        presets=[{"name": "tiny", "cpu": 0.5, "memoryMb": 256}],
    )
    assert added["gatewaySecret"] is None  # a local gateway needs none
    cluster = added["cluster"]
    assert cluster["status"] == "DEPLOYED" and cluster["statusReason"] is None
    assert (cluster["gateway"], cluster["runtime"]) == ("local", "LOCAL")
    assert cluster["storageUrl"] == "https://storage.example.com"
    assert [p["name"] for p in cluster["presets"]] == ["tiny"]
    assert cluster["health"]["lastHeartbeatAt"] is not None
    assert cluster["health"]["capacity"] == {"cpu": 4.0, "memoryMb": 8192}

    listed = (await api.gql(LIST, token=admin))["clusterConfigs"]
    assert [c["name"] for c in listed] == ["default", "second"]
    assert listed[0]["status"] == "DEPLOYED"  # the platform's own, as before

    # Users of the platform see it (as admins they may use every cluster) and run there.
    job = await api.submit_job(admin, cluster="second", command=["sleep", "1000"])
    assert job["preset"] == "tiny"

    updated = (
        await api.gql(
            UPDATE,
            {
                "input": {
                    "name": "second",
                    "registryUrl": "http://registry:5000",
                    "defaultLifeSpanSeconds": 60,
                }
            },
            token=admin,
        )
    )["updateCluster"]["cluster"]
    assert updated["registryUrl"] == "http://registry:5000"
    assert updated["storageUrl"] is None  # every field is set
    assert updated["defaultLifeSpanSeconds"] == 60

    # A preset added with the presets' API is offered to jobs submitted after.
    await api.gql(
        """mutation { addPreset(input: {cluster: "second", name: "big", cpu: 2,
           memoryMb: 2048}) { preset { name } } }""",
        token=admin,
    )
    later = await api.submit_job(admin, cluster="second", preset="big")
    assert later["preset"] == "big"

    async def running() -> bool:
        return (await _job(api, admin, job["id"]))["status"] == "RUNNING"

    await eventually(running)
    removed = (await api.gql(REMOVE, {"name": "second"}, token=admin))["removeCluster"]
    assert job["id"] in removed["stoppedJobs"]
    assert removed["cluster"]["status"] == "DELETING"
    assert _runtime(api, "second").stop_requests  # its workloads were told to stop
    assert [c["name"] for c in (await api.gql(LIST, token=admin))["clusterConfigs"]] == ["default"]
    assert "second" not in api.platform.gateways
    with pytest.raises(GraphQLErrors) as gone:
        await _config(api, admin, "second")
    assert gone.value.code == "NOT_FOUND"


async def test_the_config_api_refuses_what_it_must(api: Api) -> None:
    admin = await api.user("root", role="admin")
    user = await api.user("alice")
    await _add(api, admin, name="second")
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        (ADD, {"input": {"name": "second"}}, admin, "CONFLICT"),
        (ADD, {"input": {"name": "default"}}, admin, "CONFLICT"),
        (ADD, {"input": {"name": "third", "gateway": "ftp://host"}}, admin, "BAD_USER_INPUT"),
        (ADD, {"input": {"name": "third", "gateway": "http://"}}, admin, "BAD_USER_INPUT"),
        (ADD, {"input": {"name": "Bad_Name"}}, admin, "BAD_USER_INPUT"),
        (ADD, {"input": {"name": "third", "storageUrl": "nope"}}, admin, "BAD_USER_INPUT"),
        # A local gateway keeps the runtime it was made with.
        (UPDATE, {"input": {"name": "second", "runtime": "KUBERNETES"}}, admin, "BAD_USER_INPUT"),
        (ADD, {"input": {"name": "third"}}, user, "FORBIDDEN"),
        (LIST, {}, user, "FORBIDDEN"),
        # A cluster the user may not see is not found; the platform's own (every user's
        # org uses it) is forbidden.
        (ONE, {"name": "second"}, user, "NOT_FOUND"),
        (REMOVE, {"name": "second"}, user, "NOT_FOUND"),
        (UPDATE, {"input": {"name": "second"}}, user, "NOT_FOUND"),
        (REMOVE, {"name": "default"}, user, "FORBIDDEN"),
        (REMOVE, {"name": "nowhere"}, admin, "NOT_FOUND"),
        (REMOVE, {"name": "default"}, admin, "CONFLICT"),  # the platform's own stays
    ]
    for document, variables, token, code in cases:
        with pytest.raises(GraphQLErrors) as refused:
            await api.gql(document, variables, token=token)
        assert refused.value.code == code, (document, variables, refused.value)


async def test_a_local_kubernetes_cluster_without_a_way_to_its_api_server_fails_saying_so(
    api: Api,
) -> None:
    """`--gateway local --runtime kubernetes`: the embedded gateway over the kubernetes
    runtime; with no GLIA_KUBECONFIG and not in a pod, it cannot be made, and says why."""
    admin = await api.user("root", role="admin")
    added = await _add(api, admin, name="kube", runtime="KUBERNETES")
    cluster = added["cluster"]
    assert added["gatewaySecret"] is None
    assert cluster["status"] == "FAILED"
    assert "no kubeconfig given" in cluster["statusReason"]
    with pytest.raises(GraphQLErrors) as refused:
        await api.submit_job(admin, cluster="kube")
    assert refused.value.code == "UNAVAILABLE"


async def test_a_remote_cluster_gets_its_secret_once_sealed_and_fails_without_a_gateway(
    api: Api,
) -> None:
    """Where the remote gateway's client cannot be made or reached, the cluster is not
    deployed, with the reason; the control plane goes on, and the secret is stored sealed."""
    admin = await api.user("root", role="admin")
    added = await _add(api, admin, name="far", gateway="http://127.0.0.1:9/", runtime="KUBERNETES")
    secret = added["gatewaySecret"]
    assert isinstance(secret, str) and len(secret) >= 40
    cluster = added["cluster"]
    assert cluster["gateway"] == "http://127.0.0.1:9"
    assert cluster["status"] in ("FAILED", "DEPLOYING")
    assert cluster["statusReason"]
    assert secret not in str(cluster)
    async with api.platform.db.session() as session:
        sealed = await session.scalar(
            select(ClusterRow.gateway_secret).where(ClusterRow.name == "far")
        )
    assert sealed and secret not in sealed
    # Never shown again: not in its config, not in the listing.
    assert secret not in str(await _config(api, admin, "far"))
    assert secret not in str(await api.gql(LIST, token=admin))
    with pytest.raises(GraphQLErrors) as refused:
        await api.submit_job(admin, cluster="far")
    assert refused.value.code == "UNAVAILABLE"
    removed = (await api.gql(REMOVE, {"name": "far"}, token=admin))["removeCluster"]
    assert removed["stoppedJobs"] == []


async def test_jobs_keep_their_last_status_while_the_gateway_is_unreachable(api: Api) -> None:
    admin = await api.user("root", role="admin")
    await _add(api, admin, name="far")
    runtime = _runtime(api, "far")
    job = await api.submit_job(admin, cluster="far", command=["sleep", "1000"])

    async def status_is(status: str, reason: str | None) -> bool:
        found = await _job(api, admin, job["id"])
        return (found["status"], found["reason"]) == (status, reason)

    await eventually(lambda: status_is("RUNNING", None))

    runtime.cut = True

    async def cluster_failed() -> bool:
        return (await _config(api, admin, "far"))["status"] == "FAILED"

    await eventually(cluster_failed)
    await eventually(lambda: status_is("RUNNING", "GATEWAY_UNREACHABLE"))
    config = await _config(api, admin, "far")
    assert "has not answered since" in config["statusReason"]
    with pytest.raises(GraphQLErrors) as refused:
        await api.submit_job(admin, cluster="far")
    assert refused.value.code == "UNAVAILABLE"

    # The job ends while nobody can tell; a few reconcile intervals on, it is still running
    # as last known, never failed.
    runtime.finish(job["id"], 0)
    for _ in range(5):
        await api.platform.reconciler.mark_unreachable("far", "still cut")
        with contextlib.suppress(Unavailable):
            await api.platform.reconciler.reconcile("far")
    assert await status_is("RUNNING", "GATEWAY_UNREACHABLE")

    runtime.cut = False
    await eventually(lambda: status_is("SUCCEEDED", "COMPLETED"), within=10)

    async def deployed() -> bool:
        return (await _config(api, admin, "far"))["status"] == "DEPLOYED"

    await eventually(deployed)
    async with api.platform.db.session() as session:
        marked = await session.scalar(
            select(JobRow.id).where(JobRow.reason == "GatewayUnreachable")
        )
    assert marked is None


async def test_registered_clusters_open_again_when_the_control_plane_starts(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, heartbeat_interval_s=0.2)

    def local_runtime(_name: str, _root: Path) -> Runtime:
        return FakeRuntime()

    async with running_api(settings, FakeRuntime(), local_runtime=local_runtime) as first:
        admin = await first.user("root", role="admin")
        await _add(first, admin, name="second")
        await _add(first, admin, name="far", gateway="https://gateway.invalid:8443")
    async with running_api(settings, FakeRuntime(), local_runtime=local_runtime) as second:
        assert "second" in second.platform.gateways
        assert (await _config(second, admin, "second"))["status"] == "DEPLOYED"
        far = await _config(second, admin, "far")
        assert far["status"] in ("FAILED", "DEPLOYING") and far["statusReason"]


async def test_a_job_submitted_before_the_heartbeat_sees_the_cut_waits_then_runs(
    tmp_path: Path, database_url: str
) -> None:
    """Between the cut and the heartbeat that notices it, a submission is accepted: the job
    waits (its cluster's capacity cannot be read, so the scheduler hands it nothing), and
    runs once the gateway answers."""
    runtimes: dict[str, UnreachableRuntimeStandIn] = {}

    def local_runtime(name: str, _root: Path) -> Runtime:
        runtimes[name] = UnreachableRuntimeStandIn()
        return runtimes[name]

    settings = make_settings(
        tmp_path, database_url, reconcile_interval_s=0.2, heartbeat_interval_s=3600
    )
    async with running_api(settings, FakeRuntime(), local_runtime=local_runtime) as api:
        admin = await api.user("root", role="admin")
        await _add(api, admin, name="far")

        async def controlled() -> bool:
            # Its controller holds the lease: the heartbeat loop that started it sleeps now.
            async with api.platform.db.session() as session:
                return bool(
                    await session.scalar(
                        select(LeaseRow.name).where(LeaseRow.name == "cluster-controller:far")
                    )
                )

        await eventually(controlled)
        runtimes["far"].cut = True
        job = await api.submit_job(admin, cluster="far", command=["sleep", "1000"])
        assert job["status"] == "PENDING"
        assert (await _job(api, admin, job["id"]))["status"] == "PENDING"
        runtimes["far"].cut = False

        async def running() -> bool:
            return (await _job(api, admin, job["id"]))["status"] == "RUNNING"

        await eventually(running, within=10)
