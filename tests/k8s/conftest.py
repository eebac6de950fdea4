"""The Kubernetes test environment, once per session, for the tests marked `k8s`."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes_asyncio import client

from tests.contract.harness import GPU_MODEL
from tests.k8s import testenv
from tests.k8s.testenv import (
    BUILD_SCRIPT,
    REPO,
    Cluster,
    TestEnvError,
    binaries,
    fake_node,
    running_cluster,
)

# The first k8s test may wait for the build that .ci/run started in the background (and then
# starts the control plane): it gets this long instead of the suite's per-test timeout.
FIRST_TEST_TIMEOUT = 3000
NODES = ("kwok-node-0", "kwok-node-1")
GPU_NODE = "kwok-gpu-0"  # 2 GPUs of the contract's model (tests.contract.harness.GPU_MODEL)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The k8s tests run last, so that a first build overlaps the rest of the suite."""
    k8s = [item for item in items if item.get_closest_marker("k8s")]
    if not k8s:
        return
    others = [item for item in items if not item.get_closest_marker("k8s")]
    items[:] = others + k8s
    k8s[0].add_marker(pytest.mark.timeout(FIRST_TEST_TIMEOUT))


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """etcd, kube-apiserver, kube-scheduler, kube-controller-manager and kwok, with two kwok
    nodes Ready. Fails (never skips) when the binaries are not built."""
    failure = None
    try:
        with running_cluster(tmp_path_factory.mktemp("k8s")) as cluster:
            asyncio.run(_add_nodes(cluster))
            yield cluster
    except TestEnvError as error:
        failure = str(error)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


def api_client(cluster: Cluster, token: str | None = None) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = cluster.host
    configuration.ssl_ca_cert = str(cluster.ca_file)
    configuration.api_key = {"BearerToken": token or cluster.token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(configuration)


async def _add_nodes(cluster: Cluster) -> None:
    async with api_client(cluster) as api:
        core = client.CoreV1Api(api)
        for name in NODES:
            await core.create_node(fake_node(name))
        gpu_node = fake_node(GPU_NODE, gpus=2)
        gpu_node["metadata"]["labels"]["nvidia.com/gpu.product"] = GPU_MODEL
        # As GPU nodes usually are: only pods that tolerate it (those asking GPUs) go there.
        gpu_node["spec"] = {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}
        await core.create_node(gpu_node)
        deadline = time.monotonic() + 60
        while True:
            nodes = (await core.list_node()).items
            ready = [
                node.metadata.name
                for node in nodes
                if any(
                    c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
                )
            ]
            if {*NODES, GPU_NODE} <= set(ready):
                return
            if time.monotonic() > deadline:
                raise TestEnvError(f"kwok did not make the nodes Ready (ready: {ready})")
            await asyncio.sleep(0.2)


@pytest.fixture
async def k8s_api(k8s_cluster: Cluster) -> AsyncIterator[client.ApiClient]:
    async with api_client(k8s_cluster) as api:
        yield api


@pytest.fixture(scope="session")
def helm() -> str:
    """deploy/k8s-testenv/build.sh's helm: a missing one fails the tests, naming the script."""
    try:
        bin_dir = binaries()
    except testenv.TestEnvError as error:
        pytest.fail(str(error), pytrace=False)
    path = bin_dir / "helm"
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"helm is not built: {path} is missing. Build it with "
            f"{BUILD_SCRIPT.relative_to(REPO)} (or set GLIA_K8S_BUILD=1 to let the tests run it).",
            pytrace=False,
        )
    return str(path)
