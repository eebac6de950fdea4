"""A cluster's config as the Config API takes it (`glia.clusters.NewCluster`), and the
gateway each kind of config makes (`control_plane.services.clusters.gateway_for`)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import Gateway
from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.services.clusters import GatewayRegistry, gateway_for
from glia.clusters import ClusterRuntime, ClusterStatus, NewCluster
from glia.errors import BadInput, Unavailable


def test_a_new_cluster_takes_local_or_an_http_url_and_endpoints_without_credentials() -> None:
    assert NewCluster(name="lab").gateway == "local"
    remote = NewCluster(
        name="gpu-farm",
        gateway="https://farm.example.com:8443/",
        storage_url="http://s3.farm:9000/",
    )
    assert remote.gateway == "https://farm.example.com:8443"
    assert remote.storage_url == "http://s3.farm:9000"
    for bad in (
        {"name": "Lab"},
        {"name": "9lab"},
        {"name": "lab", "gateway": "farm.example.com"},
        {"name": "lab", "gateway": "ftp://farm"},
        {"name": "lab", "gateway": "http://"},
        {"name": "lab", "gateway": "https://user:pw@farm"},
        {"name": "lab", "registry_url": "registry:5000"},
        {"name": "lab", "presets": [{"name": "a", "cpu": 1, "memory_mb": 1}] * 2},
    ):
        with pytest.raises(ValidationError):
            NewCluster.model_validate(bad)


def test_only_a_deployed_cluster_takes_jobs() -> None:
    assert [s for s in ClusterStatus if s.takes_jobs] == [ClusterStatus.DEPLOYED]


async def test_gateway_for_local_makes_the_local_kind_and_a_url_needs_a_secret() -> None:
    made: list[tuple[str, ...]] = []

    async def local(name: str, runtime: ClusterRuntime) -> Gateway:
        made.append((name, runtime.value))
        return EmbeddedGateway(name, FakeRuntime())

    async def remote(name: str, url: str, secret: str) -> Gateway:
        made.append((name, url, secret))
        return EmbeddedGateway(name, FakeRuntime())

    gateway = await gateway_for("lab", "local", secret=None, local=local, remote=remote)
    assert isinstance(gateway, EmbeddedGateway) and made == [("lab", "local")]
    await gateway_for(
        "k8s", "local", secret=None, local=local, remote=remote, runtime=ClusterRuntime.KUBERNETES
    )
    assert made[-1] == ("k8s", "kubernetes")
    url = "https://farm.example.com"
    await gateway_for("farm", url, secret="s" * 32, local=local, remote=remote)
    assert made[-1] == ("farm", url, "s" * 32)
    with pytest.raises(BadInput):
        await gateway_for("farm", url, secret=None, local=local, remote=remote)


def test_the_registry_gains_and_loses_gateways_at_run_time() -> None:
    registry = GatewayRegistry()
    gateway = EmbeddedGateway("lab", FakeRuntime())
    registry.add("lab", gateway)
    assert "lab" in registry and registry.names() == ["lab"]
    assert registry.remove("lab") is gateway
    assert registry.remove("lab") is None
    with pytest.raises(Unavailable):
        registry.get("lab")
