"""The Kubernetes test environment, once per session, for the tests marked `k8s`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes_asyncio import client

from tests.k8s import testenv
from tests.k8s.testenv import (
    BUILD_SCRIPT,
    GPU_NODE,
    NODES,
    REPO,
    Cluster,
    TestEnvError,
    add_nodes,
    api_client,
    binaries,
    running_cluster,
)

__all__ = ["GPU_NODE", "NODES", "api_client"]  # what the k8s tests import from here

# The first k8s test may wait for the build that .ci/run started in the background (and then
# starts the control plane): it gets this long instead of the suite's per-test timeout.
FIRST_TEST_TIMEOUT = 3000


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
            asyncio.run(add_nodes(cluster))
            yield cluster
    except TestEnvError as error:
        failure = str(error)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


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
