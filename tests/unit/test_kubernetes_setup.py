"""Making the kubernetes runtime from settings (cluster_gateway/runtimes/kubernetes_setup.py):
its namespaces, its instance, and how it finds the API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.runtimes.kubernetes import INSTANCE_LABEL
from cluster_gateway.runtimes.kubernetes_setup import (
    kubernetes_runtime,
    load_configuration,
    namespace_with_prefix,
)
from glia.clusters import Resources

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: gateway
  user:
    token: abc123
contexts:
- name: test
  context: {cluster: test, user: gateway}
current-context: test
"""


def spec(owner: str = "") -> WorkloadSpec:
    env = {"GLIA_JOB_OWNER": owner} if owner else {}
    return WorkloadSpec(
        job_id="job-1", command=("true",), resources=Resources(cpu=1, memory_mb=64), env=env
    )


def test_a_namespace_per_owner_under_the_prefix() -> None:
    namespace_for = namespace_with_prefix("team-a-")
    assert namespace_for(spec("Alice_B")) == "team-a-alice-b"
    assert namespace_for(spec()) == "team-a-jobs"
    for bad in ("", "Upper-", "-lead", "x" * 30, "a_b"):
        with pytest.raises(ValueError):
            namespace_with_prefix(bad)


async def test_from_a_kubeconfig_else_in_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    configuration = await load_configuration(path)
    assert configuration.host == "https://127.0.0.1:6443"
    assert configuration.api_key["BearerToken"].endswith("abc123")
    assert path.read_text() == KUBECONFIG  # never written back
    with pytest.raises(ValueError, match="cannot load the kubeconfig"):
        await load_configuration(tmp_path / "missing")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ValueError, match="not inside a pod"):
        await load_configuration(None)


async def test_the_runtime_is_the_clusters_instance(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    runtime = kubernetes_runtime(
        await load_configuration(path),
        cluster="gpu-farm",
        namespace_prefix="glia-",
        pod_annotations={"team": "vision"},
    )
    pod = runtime.pod_manifest(spec("bob"), "glia-bob")
    assert pod["metadata"]["labels"][INSTANCE_LABEL] == "gpu-farm"
    assert pod["metadata"]["annotations"]["team"] == "vision"
