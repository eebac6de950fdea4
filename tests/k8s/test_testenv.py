"""The test environment is a real Kubernetes control plane: the API server stores and validates,
RBAC authorizes, the scheduler binds, kwok's nodes run pods through their phases, watches resume
from a resourceVersion, and Debian's kubectl talks to it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.k8s.conftest import NODES, api_client
from tests.k8s.testenv import Cluster, kubectl

pytestmark = pytest.mark.k8s


_CREATED: list[str] = []


@pytest.fixture(autouse=True)
async def _cleanup(k8s_cluster: Cluster) -> AsyncIterator[None]:
    """The namespaces a test made go, their pods at once: later tests find the nodes free."""
    yield
    async with api_client(k8s_cluster) as api:
        core = client.CoreV1Api(api)
        while _CREATED:
            namespace = _CREATED.pop()
            await core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
            await core.delete_namespace(namespace)


async def _namespace(core: client.CoreV1Api) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await core.create_namespace({"metadata": {"name": name}})
    _CREATED.append(name)
    # The controller manager adds the namespace's default ServiceAccount, which admission
    # requires before it accepts a pod.
    deadline = time.monotonic() + 30
    while True:
        try:
            await core.read_namespaced_service_account("default", name)
            return name
        except ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


def _pod(name: str, annotations: dict[str, str] | None = None, cpu: str = "100m") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}, "labels": {"app": "t"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "command": ["true"],
                    "resources": {
                        "requests": {"cpu": cpu, "memory": "64Mi"},
                        "limits": {"cpu": cpu, "memory": "64Mi"},
                    },
                }
            ],
        },
    }


async def _phases(
    core: client.CoreV1Api, namespace: str, name: str, resource_version: str, until: set[str]
) -> list[tuple[str, dict[str, Any]]]:
    """(phase, raw pod) of each event of one pod, from resource_version until a phase in `until`."""
    seen: list[tuple[str, dict[str, Any]]] = []
    w = watch.Watch()
    async with w:
        async for event in w.stream(
            core.list_namespaced_pod,
            namespace,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=60,
        ):
            raw = event["raw_object"]
            phase = raw["status"].get("phase", "")
            seen.append((phase, raw))
            if phase in until:
                break
    return seen


async def test_it_is_a_real_api_server(k8s_cluster: Cluster, k8s_api: client.ApiClient) -> None:
    version = await client.VersionApi(k8s_api).get_code()
    assert version.git_version.startswith("v1.37.")
    names = {ns.metadata.name for ns in (await client.CoreV1Api(k8s_api).list_namespace()).items}
    assert {"default", "kube-system", "kube-public"} <= names
    # Validation is the API server's own.
    with pytest.raises(ApiException) as invalid:
        await client.CoreV1Api(k8s_api).create_namespaced_pod(
            "default", {"metadata": {"name": "Not_Valid"}, "spec": {"containers": []}}
        )
    assert invalid.value.status == 422


async def test_rbac_authorizes(k8s_cluster: Cluster) -> None:
    async with api_client(k8s_cluster, token="not-a-token") as anonymous:
        with pytest.raises(ApiException) as unauthenticated:
            await client.CoreV1Api(anonymous).list_namespace()
    assert unauthenticated.value.status == 401
    # The scheduler's own user may read pods but not delete namespaces.
    scheduler_token = k8s_cluster.kubeconfig.with_name("scheduler.kubeconfig").read_text()
    token = scheduler_token.split("token: ")[1].split()[0]
    async with api_client(k8s_cluster, token=token) as scheduler:
        await client.CoreV1Api(scheduler).list_pod_for_all_namespaces(limit=1)
        with pytest.raises(ApiException) as forbidden:
            await client.CoreV1Api(scheduler).delete_namespace("default")
    assert forbidden.value.status == 403


async def test_kwok_plays_the_nodes(k8s_api: client.ApiClient) -> None:
    nodes = {n.metadata.name: n for n in (await client.CoreV1Api(k8s_api).list_node()).items}
    assert set(NODES) <= set(nodes)
    for name in NODES:
        node = nodes[name]
        assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
        assert node.status.node_info.kubelet_version.startswith("kwok-")
    leases = await client.CoordinationV1Api(k8s_api).list_namespaced_lease("kube-node-lease")
    assert set(NODES) <= {lease.metadata.name for lease in leases.items}


async def test_a_pod_goes_pending_running_succeeded(k8s_api: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api)
    namespace = await _namespace(core)
    created = await core.create_namespaced_pod(
        namespace,
        _pod(
            "ok",
            {
                "pod-ready.stage.kwok.x-k8s.io/delay": "500ms",
                "pod-complete.stage.kwok.x-k8s.io/delay": "1s",
            },
        ),
    )
    assert created.status.phase == "Pending"
    events = await _phases(
        core, namespace, "ok", created.metadata.resource_version, {"Succeeded", "Failed"}
    )
    phases = [phase for phase, _ in events]
    # Each phase in order, none skipped (consecutive duplicates collapsed).
    ordered = [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]
    assert ordered == ["Pending", "Running", "Succeeded"], phases
    final = events[-1][1]
    assert final["spec"]["nodeName"] in NODES  # bound by the real scheduler
    terminated = final["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")


async def test_a_pod_can_fail(k8s_api: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api)
    namespace = await _namespace(core)
    created = await core.create_namespaced_pod(
        namespace, _pod("bad", {"pod-fail.stage.kwok.x-k8s.io/delay": "200ms"})
    )
    events = await _phases(
        core, namespace, "bad", created.metadata.resource_version, {"Succeeded", "Failed"}
    )
    terminated = events[-1][1]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert events[-1][0] == "Failed"
    assert (terminated["exitCode"], terminated["reason"]) == (1, "Error")


async def test_a_pod_too_big_is_unschedulable(k8s_api: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api)
    namespace = await _namespace(core)
    await core.create_namespaced_pod(namespace, _pod("huge", cpu="500"))
    deadline = time.monotonic() + 30
    while True:
        pod = await core.read_namespaced_pod("huge", namespace)
        conditions = {c.type: c for c in pod.status.conditions or []}
        if "PodScheduled" in conditions:
            break
        assert time.monotonic() < deadline, "the scheduler never looked at the pod"
        await asyncio.sleep(0.2)
    scheduled = conditions["PodScheduled"]
    assert (pod.status.phase, scheduled.status, scheduled.reason) == (
        "Pending",
        "False",
        "Unschedulable",
    )
    assert "Insufficient cpu" in scheduled.message


async def test_a_watch_resumes_from_its_resource_version(k8s_api: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api)
    namespace = await _namespace(core)
    created = await core.create_namespaced_pod(namespace, _pod("w"))
    # A first watch sees the pod run, then is dropped.
    first = await _phases(core, namespace, "w", created.metadata.resource_version, {"Running"})
    last_seen = first[-1][1]["metadata"]["resourceVersion"]
    # Changes made while nobody watches...
    await core.patch_namespaced_pod("w", namespace, {"metadata": {"labels": {"step": "1"}}})
    await core.patch_namespaced_pod(
        "w",
        namespace,
        {"metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "0s"}}},
    )
    # ...are all delivered, in order, to a watch resumed from the last version seen.
    resumed = await _phases(core, namespace, "w", last_seen, {"Succeeded"})
    versions = [int(raw["metadata"]["resourceVersion"]) for _, raw in resumed]
    assert versions == sorted(versions) and versions[0] > int(last_seen)
    assert resumed[0][1]["metadata"]["labels"]["step"] == "1"
    assert resumed[-1][0] == "Succeeded"


def test_kubectl_talks_to_it(k8s_cluster: Cluster) -> None:
    base = [kubectl(), f"--kubeconfig={k8s_cluster.kubeconfig}"]
    namespace = f"kubectl-{uuid.uuid4().hex[:8]}"
    subprocess.run([*base, "create", "namespace", namespace], check=True, timeout=60)
    _CREATED.append(namespace)
    deadline = time.monotonic() + 30
    while subprocess.run(
        [*base, "-n", namespace, "get", "serviceaccount", "default"],
        capture_output=True,
        timeout=60,
    ).returncode:
        assert time.monotonic() < deadline, "no default ServiceAccount"
        time.sleep(0.2)
    manifest = json.dumps(_pod("from-kubectl"))
    subprocess.run(
        [*base, "-n", namespace, "apply", "-f", "-"],
        input=manifest,
        text=True,
        check=True,
        timeout=60,
    )
    pods = subprocess.run(
        [*base, "-n", namespace, "get", "pods", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert [p["metadata"]["name"] for p in json.loads(pods.stdout)["items"]] == ["from-kubectl"]
    nodes = subprocess.run(
        [*base, "get", "nodes"], capture_output=True, text=True, check=True, timeout=60
    )
    assert all(name in nodes.stdout for name in NODES)
