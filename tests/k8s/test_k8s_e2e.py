"""Glia end to end on the test Kubernetes cluster, through the real CLI: `glia up`, and a
cluster `k8s` served by `glia gateway serve --runtime kubernetes` (the production shape: a
gateway process next to the API server, registered by URL) with the test cluster's
kubeconfig. kwok plays the pods: each is Running a second after it is bound and Succeeded
a few seconds on (the gateway's `--pod-annotation`s drive kwok's stages). And a `local` cluster of
the kubernetes runtime: the embedded gateway in `glia up`, reaching the API server with
GLIA_KUBECONFIG."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.runtimes.kubernetes import project_namespace
from glia.clusters import Resources
from tests.e2e.conftest import GLIA, Cli, GatewayProcess, Server, free_port
from tests.factories import kill_leftover_jobs
from tests.k8s.conftest import api_client
from tests.k8s.testenv import Cluster
from tests.polling import eventually

pytestmark = pytest.mark.k8s

CLUSTER = "k8s"
READY_AFTER = "1s"
# Long enough that a test sees the job running, and deletes a pod before it would end.
COMPLETE_AFTER = "8s"


@dataclass
class KubernetesGateway(GatewayProcess):
    """`glia gateway serve --runtime kubernetes` on the test cluster's kubeconfig."""

    kubeconfig: Path = Path()
    namespace_prefix: str = "glia-"

    def start(self) -> None:
        command = [GLIA, "gateway", "serve", "--name", self.name, "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--runtime", "kubernetes"]
        command += ["--kubeconfig", str(self.kubeconfig)]
        command += ["--namespace-prefix", self.namespace_prefix]
        command += ["--pod-annotation", f"pod-ready.stage.kwok.x-k8s.io/delay={READY_AFTER}"]
        command += [
            "--pod-annotation",
            f"pod-complete.stage.kwok.x-k8s.io/delay={COMPLETE_AFTER}",
        ]
        env = {**os.environ, "GLIA_GATEWAY_SECRET": self.secret}
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(
        root=tmp_path,
        extra_env={"GLIA_HEARTBEAT_INTERVAL_S": "1", "GLIA_HEARTBEAT_TIMEOUT_S": "3"},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        kill_leftover_jobs(tmp_path / "data")


@pytest.fixture
def cli(server: Server) -> Cli:
    return Cli(server=server, config=server.root / "home" / "config.toml")


async def _pods(cluster: Cluster, instance: str) -> list[Any]:
    async with api_client(cluster) as api:
        pods = await client.CoreV1Api(api).list_pod_for_all_namespaces(
            label_selector=f"glia.dev/instance={instance}"
        )
        return list(pods.items)


async def _remove_pods(cluster: Cluster, instance: str) -> None:
    """Every pod of ``instance`` gone (finalizers dropped, grace 0): what they held is free
    for the tests after."""
    async with api_client(cluster) as api:
        core = client.CoreV1Api(api)
        pods = await core.list_pod_for_all_namespaces(
            label_selector=f"glia.dev/instance={instance}"
        )
        for pod in pods.items:
            name, namespace = pod.metadata.name, pod.metadata.namespace
            if pod.metadata.finalizers:
                await core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}})
            try:
                await core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
            except client.exceptions.ApiException as error:
                if error.status != 404:
                    raise

        async def gone() -> bool:
            return not await _pods(cluster, instance)

        await eventually(gone, within=30)


@pytest.fixture
def gateway(k8s_cluster: Cluster, tmp_path: Path, server: Server) -> Iterator[KubernetesGateway]:
    gateway = KubernetesGateway(
        CLUSTER,
        "",
        tmp_path / "gateway",
        kubeconfig=k8s_cluster.kubeconfig,
        namespace_prefix=f"e2e-{uuid.uuid4().hex[:6]}-",
    )
    try:
        yield gateway
    finally:
        gateway.stop()
        asyncio.run(_remove_pods(k8s_cluster, CLUSTER))


def _wait_cluster(cli: Cli, name: str, status: str, timeout: float = 30) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        clusters = await asyncio.to_thread(cli.json, "admin", "ls-clusters")
        found = next(c for c in clusters if c["name"] == name)
        return found if found["status"] == status else None

    result: dict[str, Any] = asyncio.run(eventually(reached, within=timeout))
    return result


def _statuses_until(cli: Cli, job: str, final: str, timeout: float = 60) -> list[dict[str, Any]]:
    """`glia status JOB` asked again and again until ``final``: each distinct status seen."""
    seen: list[dict[str, Any]] = []

    async def reached() -> bool:
        found: dict[str, Any] = await asyncio.to_thread(cli.json, "status", job)
        if not seen or seen[-1]["status"] != found["status"]:
            seen.append(found)
        return bool(found["status"].lower() == final)

    asyncio.run(eventually(reached, within=timeout))
    return seen


def test_glia_runs_on_kubernetes_through_a_gateway_process(
    k8s_cluster: Cluster, server: Server, cli: Cli, gateway: KubernetesGateway
) -> None:
    added = cli.json(
        "admin",
        "add-cluster",
        CLUSTER,
        "--gateway",
        gateway.url,
        "--runtime",
        "kubernetes",
        "--preset",
        "k8s:0.5:256M",
    )
    gateway.secret = added["gatewaySecret"]
    gateway.start()
    deployed = _wait_cluster(cli, CLUSTER, "DEPLOYED")
    assert deployed["runtime"] == "KUBERNETES"
    # The capacity is the test cluster's: two 32-cpu kwok nodes and a GPU node.
    assert deployed["health"]["capacity"]["cpu"] >= 64

    # A job: pending, running, succeeded, as kwok moves its pod.
    job = cli.ok("run", "--cluster", CLUSTER, "--no-sync", "--detach", "--", "true").strip()
    seen = _statuses_until(cli, job, "succeeded")
    assert [s["status"].lower() for s in seen][-2:] == ["running", "succeeded"]
    done = seen[-1]
    assert (done["exitCode"], done["reason"]) == (0, "COMPLETED")
    # Its history, as `glia status` shows it: every transition, none skipped.
    history = [item["status"].lower() for item in done["history"]]
    assert history == ["pending", "running", "succeeded"], done["history"]
    shown = cli.ok("status", job)
    assert all(status in shown for status in ("pending", "running", "succeeded")), shown
    (pod,) = [
        p
        for p in asyncio.run(_pods(k8s_cluster, CLUSTER))
        if job in p.metadata.annotations["glia.dev/job-id"]
    ]
    # In its project's namespace (the admin's personal project), which the job is told of.
    env = {e.name: e.value for e in pod.spec.containers[0].env if e.value is not None}
    assert (env["GLIA_JOB_ORG"], env["GLIA_JOB_PROJECT"]) == ("admin", "admin")
    spec = WorkloadSpec(
        job_id=job, command=("true",), resources=Resources(cpu=1, memory_mb=64), env=env
    )
    assert pod.metadata.namespace == project_namespace(spec, prefix=gateway.namespace_prefix)
    assert pod.spec.containers[0].command == ["true"]

    # A pod deleted behind Glia's back: the job fails, Lost.
    lost = cli.ok("run", "--cluster", CLUSTER, "--no-sync", "--detach", "--", "sleep", "1h")
    lost = lost.strip()
    cli.wait_status(lost, "running")

    # Exec and port-forward into it, through the control plane, the gateway process and the
    # API server's pods/exec and pods/portforward (kwok's kubelet server runs the command on
    # this host and answers a forwarded port with `cat`: deploy/k8s-testenv/kwok).
    ran = cli("exec", lost, "--", "sh", "-c", "echo from-the-pod; echo oops >&2; exit 4")
    assert (ran.returncode, ran.stdout, ran.stderr) == (4, "from-the-pod\n", "oops\n")
    fed = cli("exec", lost, "--", "head", "-n", "1", input="typed\n")
    assert (fed.returncode, fed.stdout) == (0, "typed\n")
    local = free_port()
    tunnel = subprocess.Popen(
        [GLIA, "port-forward", lost, f"{local}:8080"],
        env={**cli.server.env, "GLIA_CONFIG": str(cli.config)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        async def echoed() -> bytes | None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", local)
            except OSError:
                return None
            try:
                writer.write(b"through the tunnel\n")
                return await asyncio.wait_for(reader.readline(), 10)
            finally:
                writer.close()

        assert asyncio.run(eventually(echoed, within=30)) == b"through the tunnel\n"
    finally:
        tunnel.terminate()
        tunnel.wait(10)

    async def delete_its_pod() -> None:
        (pod,) = [
            p
            for p in await _pods(k8s_cluster, CLUSTER)
            if lost in p.metadata.annotations["glia.dev/job-id"]
        ]
        async with api_client(k8s_cluster) as api:
            await client.CoreV1Api(api).delete_namespaced_pod(
                pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0
            )

    asyncio.run(delete_its_pod())
    failed = cli.wait_status(lost, "failed")
    assert failed["reason"] == "LOST"
    listed = {j["id"]: j for j in cli.json("ps", "-a")}
    assert listed[lost]["status"].lower() == "failed"
    assert listed[lost]["reason"] == "LOST"
    assert listed[job]["status"].lower() == "succeeded"
    rows = [line.split() for line in cli.ok("ps", "-a").splitlines()[1:]]
    (lost_row,) = [row for row in rows if lost.startswith(row[0])]  # the table's short ids
    (job_row,) = [row for row in rows if job.startswith(row[0])]
    assert (lost_row[2], job_row[2]) == ("failed", "succeeded")
    # `glia status` shows the reason; the job's output it then tails, kwok's pods have none
    # of (the pod log API answers "no logs found" for them; docs/kubernetes.md): it says so,
    # and the status asked for was shown, so the command succeeds.
    status = cli("status", lost)
    assert status.returncode == 0, (status.stdout, status.stderr)
    assert "Lost" in status.stdout, (status.stdout, status.stderr)


def test_a_local_gateway_runs_the_kubernetes_runtime_inside_the_control_plane(
    k8s_cluster: Cluster, tmp_path: Path
) -> None:
    """`--gateway local --runtime kubernetes`: the control plane's own embedded gateway over
    the kubernetes runtime, reaching the API server with GLIA_KUBECONFIG."""
    name = "k8s-local"
    prefix = f"e2e-{uuid.uuid4().hex[:6]}-"
    annotations = {
        "pod-ready.stage.kwok.x-k8s.io/delay": READY_AFTER,
        "pod-complete.stage.kwok.x-k8s.io/delay": "2s",
    }
    server = Server(
        root=tmp_path,
        extra_env={
            "GLIA_KUBECONFIG": str(k8s_cluster.kubeconfig),
            "GLIA_K8S_NAMESPACE_PREFIX": prefix,
            "GLIA_K8S_POD_ANNOTATIONS": json.dumps(annotations),
        },
    )
    server.start()
    try:
        cli = Cli(server=server, config=server.root / "home" / "config.toml")
        added = cli.json(
            "admin",
            "add-cluster",
            name,
            "--gateway",
            "local",
            "--runtime",
            "kubernetes",
            "--preset",
            "small:0.5:256M",
        )
        assert added["gatewaySecret"] is None
        deployed = _wait_cluster(cli, name, "DEPLOYED")
        assert deployed["runtime"] == "KUBERNETES"
        assert deployed["health"]["capacity"]["cpu"] >= 64
        job = cli.ok("run", "--cluster", name, "--no-sync", "--detach", "--", "true").strip()
        done = cli.wait_status(job, "succeeded")
        history = [item["status"].lower() for item in done["history"]]
        assert history == ["pending", "running", "succeeded"], done["history"]
        (pod,) = asyncio.run(_pods(k8s_cluster, name))
        assert pod.metadata.namespace.startswith(prefix)
        assert job in pod.metadata.annotations["glia.dev/job-id"]
    finally:
        server.stop()
        asyncio.run(_remove_pods(k8s_cluster, name))


def test_the_control_planes_own_cluster_on_kubernetes_is_multi_user(
    k8s_cluster: Cluster, tmp_path: Path
) -> None:
    """GLIA_CLUSTER_RUNTIME=kubernetes: the platform's own cluster runs its jobs as pods (what
    a control plane in a pod does, the chart's `controlPlane.clusterRuntime`), so no job runs
    beside the server and each user's jobs are pods of their own: more than one user."""
    name = "k8s-home"
    prefix = f"home-{uuid.uuid4().hex[:6]}-"
    annotations = {
        "pod-ready.stage.kwok.x-k8s.io/delay": READY_AFTER,
        "pod-complete.stage.kwok.x-k8s.io/delay": "2s",
    }
    server = Server(
        root=tmp_path,
        extra_env={
            "GLIA_CLUSTER_NAME": name,
            "GLIA_CLUSTER_RUNTIME": "kubernetes",
            "GLIA_KUBECONFIG": str(k8s_cluster.kubeconfig),
            "GLIA_K8S_NAMESPACE_PREFIX": prefix,
            "GLIA_K8S_POD_ANNOTATIONS": json.dumps(annotations),
        },
    )
    server.start()
    try:
        cli = Cli(server=server, config=server.root / "home" / "config.toml")
        (home,) = [c for c in cli.json("admin", "ls-clusters") if c["name"] == name]
        assert home["runtime"] == "KUBERNETES"
        assert home["health"]["capacity"]["cpu"] >= 64  # the Kubernetes cluster's
        # Not single-user: a second user may be made, and runs a job of their own.
        cli.ok("admin", "add-user", "bob", "--password-stdin", input="bob-password-1\n")
        job = cli.ok("run", "--no-sync", "--detach", "--", "true").strip()
        done = cli.wait_status(job, "succeeded")
        assert [item["status"].lower() for item in done["history"]] == [
            "pending",
            "running",
            "succeeded",
        ]
        (pod,) = asyncio.run(_pods(k8s_cluster, name))
        assert pod.metadata.namespace.startswith(prefix)
        assert job in pod.metadata.annotations["glia.dev/job-id"]
        # Nothing ran beside the server: its own cluster has no local workloads.
        assert not list((server.root / "data").rglob("output.0.log"))
    finally:
        server.stop()
        asyncio.run(_remove_pods(k8s_cluster, name))
