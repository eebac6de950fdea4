"""Making the kubernetes runtime from settings (cluster_gateway/runtimes/kubernetes_setup.py):
its namespaces, its instance, and how it finds the API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.runtimes.kubernetes import INSTANCE_LABEL, _stale_quota
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


def spec(owner: str = "", **more: str) -> WorkloadSpec:
    env = {"GLIA_JOB_OWNER": owner, **more} if owner else dict(more)
    return WorkloadSpec(
        job_id="job-1", command=("true",), resources=Resources(cpu=1, memory_mb=64), env=env
    )


def test_a_namespace_per_org_and_project_under_the_prefix() -> None:
    namespace_for = namespace_with_prefix("team-a-")

    def of(org: str, project: str) -> str:
        return namespace_for(spec("alice", GLIA_JOB_ORG=org, GLIA_JOB_PROJECT=project))

    vision = of("acme", "vision")
    assert (
        vision.startswith("team-a-acme-vision-") and len(vision) == len("team-a-acme-vision-") + 16
    )
    assert of("acme", "vision") == vision  # the same project, the same namespace
    assert of("alice", "alice").startswith("team-a-alice-")  # a personal project: once
    # What reads the same once made a DNS label stays apart.
    assert of("Acme", "vision") != vision
    assert of("acme-x", "y") != of("acme", "x-y")
    long = of("o" * 60, "p" * 60)
    assert len(long) <= 63 and long.startswith("team-a-ooo")
    # A spec without them (an older control plane): its owner's.
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


def test_a_refusal_by_a_quota_limit_no_longer_held_is_stale() -> None:
    """The API server's quota admission reads a cache: a refusal at the limit before the one
    just set is retried; one at the current limit, or by another quota, is the answer."""
    reason = (
        'pods "glia-three-8b5b9db0c1" is forbidden: exceeded quota: glia-jobs, '
        "requested: pods=1, used: pods=2, limited: pods=2"
    )
    assert _stale_quota(reason, 3)  # raised to 3 a moment ago
    assert _stale_quota(reason, None)  # removed a moment ago
    assert not _stale_quota(reason, 2)  # the current limit: a real refusal
    other = reason.replace("glia-jobs", "team-quota")
    assert not _stale_quota(other, 3)  # not this runtime's quota
    assert not _stale_quota('pods "x" is forbidden: no PriorityClass with name high', 3)
