"""What a job mounts and exposes on Kubernetes, against the test API server: its secrets as
one Secret, its disks as PersistentVolumeClaims, the cluster's storage as a shared claim
mounted with subPath, its HTTP port as a Service and an Ingress behind Traefik's ForwardAuth.

kwok mounts nothing and runs nothing: what is checked is what the API server stores and what
the scheduler and garbage collector (both real here) do with it. No volume is ever bound (no
provisioner), so a pod with a disk waits on its claim, as it would on a cluster without one.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import SecretBytes, SecretStr

from cluster_gateway.gateway import WorkloadSpec, WorkloadState
from cluster_gateway.runtimes.kubernetes import (
    FORWARD_AUTH,
    JOB_LABEL,
    MIDDLEWARE_ANNOTATION,
    SECRET_MODE,
    WORK,
    KubernetesRuntime,
    disk_claim_name,
    pod_name,
    secret_name,
    storage_sub_path,
)
from glia.errors import BadInput
from glia.volumes import SecretFile, Volume, VolumeKind
from tests.contract.harness import FOREVER, GPU_MODEL
from tests.contract.test_runtime_contract import ended
from tests.k8s.conftest import api_client
from tests.k8s.test_runtime_contract_k8s import KubernetesHarness
from tests.k8s.testenv import Cluster
from tests.polling import eventually

pytestmark = pytest.mark.k8s

AUTH_URL = "http://glia-control-plane.glia.svc:8000/auth/forward"
FILE_A = b"-----BEGIN KEY-----\nfile-secret-aaaa\n"
FILE_B = b"token-file-secret-bbbb"
ENV_SECRET = "env-secret-cccc"


class VolumesHarness(KubernetesHarness):
    """The contract's harness, its runtime given a storage claim and a ForwardAuth URL."""

    def new_runtime(self, **kwargs: Any) -> KubernetesRuntime:
        return KubernetesRuntime(
            self._configuration(),
            image="busybox:1.36",
            namespace_for=lambda spec: self.namespace,
            pod_annotations=self._annotations,
            default_grace_s=1.0,
            instance=self.instance,
            gpu_model=GPU_MODEL,
            storage_claim="glia-storage",
            disk_storage_class="glia-disks",
            forward_auth_url=AUTH_URL,
        )


@pytest.fixture
async def harness(k8s_cluster: Cluster) -> AsyncIterator[VolumesHarness]:
    harness = VolumesHarness(k8s_cluster)
    await harness.setup()
    try:
        yield harness
    finally:
        await harness.teardown()


async def _raw(call: Any) -> dict[str, Any]:
    response = await call
    return dict(json.loads(await response.read()))


async def _gone(call: Any) -> bool:
    try:
        await call
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


async def test_secrets_are_one_secret_the_pod_only_refers_to(harness: VolumesHarness) -> None:
    spec = harness.spec("sec-1", FOREVER).model_copy(
        update={
            "env": {"PLAIN": "visible", "API_KEY": "overridden-by-the-secret"},
            "volumes": (
                Volume(kind=VolumeKind.SECRET, ref="a", mount_path="/etc/a.pem", read_only=True),
                Volume(kind=VolumeKind.SECRET, ref="b", mount_path="/var/b", read_only=True),
            ),
            "secret_files": (
                SecretFile(mount_path="/etc/a.pem", content=SecretBytes(FILE_A)),
                SecretFile(mount_path="/var/b", content=SecretBytes(FILE_B)),
            ),
            "secret_env": {"API_KEY": SecretStr(ENV_SECRET)},
        }
    )
    await harness.runtime.start(spec)
    async with api_client(harness.cluster) as api:
        core = client.CoreV1Api(api)
        name = pod_name("sec-1")
        pod = await _raw(core.read_namespaced_pod(name, harness.namespace, _preload_content=False))
        text = json.dumps(pod)
        for secret in (FILE_A, FILE_B, ENV_SECRET.encode()):
            assert secret.decode() not in text
            assert base64.b64encode(secret).decode() not in text
        assert "overridden-by-the-secret" not in text  # a secret variable wins, and only it
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["PLAIN"] == {"name": "PLAIN", "value": "visible"}
        assert env["API_KEY"] == {
            "name": "API_KEY",
            "valueFrom": {"secretKeyRef": {"name": secret_name("sec-1"), "key": "env.API_KEY"}},
        }
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/a.pem"] == {
            "name": "secrets",
            "mountPath": "/etc/a.pem",
            "subPath": "file.0",
            "readOnly": True,
        }
        assert mounts["/var/b"]["subPath"] == "file.1"
        (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "secrets"]
        assert volume["secret"] == {"secretName": secret_name("sec-1"), "defaultMode": SECRET_MODE}
        assert pod["spec"]["securityContext"]["fsGroup"] == 3_100_000

        secret = await core.read_namespaced_secret(secret_name("sec-1"), harness.namespace)
        assert secret.immutable is True
        assert {k: base64.b64decode(v) for k, v in secret.data.items()} == {
            "file.0": FILE_A,
            "file.1": FILE_B,
            "env.API_KEY": ENV_SECRET.encode(),
        }
        (owner,) = secret.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid) == ("Pod", name, pod["metadata"]["uid"])

        await harness.runtime.stop("sec-1", grace_s=0)
        await ended(harness.runtime, "sec-1")
        assert not await _gone(core.read_namespaced_secret(secret_name("sec-1"), harness.namespace))
        await harness.runtime.forget("sec-1")

        async def secret_gone() -> bool:
            return await _gone(core.read_namespaced_secret(secret_name("sec-1"), harness.namespace))

        assert await eventually(secret_gone, within=30)


async def test_the_garbage_collector_removes_the_secret_with_its_pod(
    harness: VolumesHarness,
) -> None:
    """Owned by the pod: a pod deleted behind Glia's back takes its Secret with it."""
    spec = harness.spec("sec-2", FOREVER).model_copy(
        update={"secret_env": {"TOKEN": SecretStr(ENV_SECRET)}}
    )
    await harness.runtime.start(spec)
    async with api_client(harness.cluster) as api:
        core = client.CoreV1Api(api)
        name = pod_name("sec-2")
        await core.patch_namespaced_pod(name, harness.namespace, {"metadata": {"finalizers": None}})
        await core.delete_namespaced_pod(name, harness.namespace, grace_period_seconds=0)

        async def secret_gone() -> bool:
            return await _gone(core.read_namespaced_secret(secret_name("sec-2"), harness.namespace))

        assert await eventually(secret_gone, within=60)


async def test_a_secret_volume_without_content_is_refused(harness: VolumesHarness) -> None:
    spec = harness.spec("sec-3", FOREVER).model_copy(
        update={
            "volumes": (
                Volume(kind=VolumeKind.SECRET, ref="a", mount_path="/etc/a", read_only=True),
            )
        }
    )
    with pytest.raises(BadInput, match="no content"):
        await harness.runtime.start(spec)


async def test_disks_are_claims_made_on_first_use(harness: VolumesHarness) -> None:
    new_disk, old_disk = f"disk-{uuid.uuid4()}", f"disk-{uuid.uuid4()}"
    async with api_client(harness.cluster) as api:
        core = client.CoreV1Api(api)
        await harness.runtime.start(harness.spec("warmup", FOREVER))  # makes the namespace
        existing = {
            "metadata": {"name": disk_claim_name(old_disk)},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "5Gi"}},
            },
        }
        await core.create_namespaced_persistent_volume_claim(harness.namespace, existing)
        spec = harness.spec("disk-job", FOREVER).model_copy(
            update={
                "volumes": (
                    Volume(kind=VolumeKind.DISK, ref=new_disk, mount_path="/mnt/new"),
                    Volume(
                        kind=VolumeKind.DISK, ref=old_disk, mount_path="/mnt/old", read_only=True
                    ),
                ),
                "disk_sizes": {new_disk: 2 * 1024**3, old_disk: 1024**3},
            }
        )
        await harness.runtime.start(spec)
        claim = await core.read_namespaced_persistent_volume_claim(new_disk, harness.namespace)
        assert claim.spec.access_modes == ["ReadWriteOnce"]
        assert claim.spec.resources.requests["storage"] == "2Gi"
        assert claim.spec.storage_class_name == "glia-disks"
        assert claim.metadata.owner_references is None  # a disk outlives its jobs
        old = await core.read_namespaced_persistent_volume_claim(old_disk, harness.namespace)
        assert old.spec.resources.requests["storage"] == "5Gi"  # used as it is

        pod = await core.read_namespaced_pod(pod_name("disk-job"), harness.namespace)
        claims = {
            v.persistent_volume_claim.claim_name: v
            for v in pod.spec.volumes
            if v.persistent_volume_claim
        }
        assert not claims[new_disk].persistent_volume_claim.read_only  # false is left out
        assert claims[old_disk].persistent_volume_claim.read_only is True
        mounts = {m.mount_path: m for m in pod.spec.containers[0].volume_mounts}
        assert mounts["/mnt/new"].name == claims[new_disk].name
        assert not mounts["/mnt/new"].read_only
        assert mounts["/mnt/old"].read_only is True

        # No provisioner here: the claim stays Pending, and the real scheduler keeps the pod
        # waiting on it, which Glia shows as the pending job's description.
        async def waiting() -> WorkloadState | None:
            (state,) = await harness.runtime.states(["disk-job"])
            return state if state.description else None

        state = await eventually(waiting, within=30)
        assert state.description is not None
        assert "persistentvolumeclaim" in state.description.lower()

        await harness.runtime.stop("disk-job", grace_s=0)
        await ended(harness.runtime, "disk-job")
        await harness.runtime.forget("disk-job")
        # The disk stays for the next job.
        await core.read_namespaced_persistent_volume_claim(new_disk, harness.namespace)

        # The control plane's disk API reaches the claims through the runtime's DiskStore:
        # nothing to make before a job mounts it, its claims gone when it is deleted.
        disks = harness.runtime.disks
        await disks.create(f"disk-{uuid.uuid4()}", 1024**3)
        assert await disks.used_bytes(new_disk) is None
        await disks.delete(new_disk)

        async def claim_gone() -> bool:
            try:
                claim = await core.read_namespaced_persistent_volume_claim(
                    new_disk, harness.namespace
                )
            except ApiException as error:
                return error.status == 404
            return claim.metadata.deletion_timestamp is not None  # its finalizer holds it

        await eventually(claim_gone, within=30)
        await disks.delete(new_disk)  # gone already: nothing to do
        # A claim not made by the runtime (no disk-id annotation) stays.
        await disks.delete(old_disk)
        await core.read_namespaced_persistent_volume_claim(old_disk, harness.namespace)


async def test_storage_is_the_shared_claim_under_its_path(harness: VolumesHarness) -> None:
    spec = harness.spec("store-1", FOREVER).model_copy(
        update={
            "volumes": (
                Volume(
                    kind=VolumeKind.STORAGE,
                    ref="storage://default/acme/vision/data/set 1",
                    mount_path="/data",
                    read_only=True,
                ),
                Volume(
                    kind=VolumeKind.STORAGE,
                    ref="storage://default/acme/vision",
                    mount_path="/project",
                ),
            ),
            "storage_workdir": "storage://default/acme/vision/runs/7",
        }
    )
    await harness.runtime.start(spec)
    async with api_client(harness.cluster) as api:
        pod = await client.CoreV1Api(api).read_namespaced_pod(
            pod_name("store-1"), harness.namespace
        )
    (storage,) = [v for v in pod.spec.volumes if v.name == "storage"]
    assert storage.persistent_volume_claim.claim_name == "glia-storage"
    container = pod.spec.containers[0]
    mounts = {m.mount_path: m for m in container.volume_mounts}
    assert (mounts["/data"].sub_path, mounts["/data"].read_only) == ("acme/vision/data/set 1", True)
    assert (mounts["/project"].sub_path, mounts["/project"].read_only) == ("acme/vision", None)
    assert mounts[WORK].sub_path == "acme/vision/runs/7"
    assert container.working_dir == WORK


@pytest.mark.parametrize(
    "uri",
    [
        "storage://default/acme/vision/../other",
        "storage://default/acme/vision/./x",
        "storage://default/acme/vision/a//b",
        "storage://default/../vision/x",
        "/acme/vision/x",
        "storage:///acme/vision",
    ],
)
def test_a_storage_path_that_could_leave_the_tree_is_refused(uri: str) -> None:
    with pytest.raises(BadInput):
        storage_sub_path(uri)


async def test_storage_without_a_claim_is_refused(k8s_cluster: Cluster) -> None:
    harness = KubernetesHarness(k8s_cluster)  # no storage claim
    spec = harness.spec("store-2", FOREVER).model_copy(
        update={"storage_workdir": "storage://default/acme/vision/runs"}
    )
    await harness.setup()
    try:
        with pytest.raises(BadInput, match="storage"):
            await harness.runtime.start(spec)
    finally:
        await harness.teardown()


MIDDLEWARE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "middlewares.traefik.io"},
    "spec": {
        "group": "traefik.io",
        "names": {
            "kind": "Middleware",
            "listKind": "MiddlewareList",
            "plural": "middlewares",
            "singular": "middleware",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


async def _install_middleware_crd(cluster: Cluster) -> None:
    """Traefik's Middleware resource (its schema left open: what Traefik's chart installs,
    less the schema's detail), established before use."""
    async with api_client(cluster) as api:
        extensions: Any = client.ApiextensionsV1Api(api)
        try:
            await extensions.create_custom_resource_definition(MIDDLEWARE_CRD)
        except ApiException as error:
            if error.status != 409:
                raise

        async def established() -> bool:
            crd = await extensions.read_custom_resource_definition("middlewares.traefik.io")
            return any(
                c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
            )

        await eventually(established, within=30)


def _http_spec(harness: VolumesHarness, job_id: str) -> WorkloadSpec:
    return harness.spec(job_id, FOREVER).model_copy(
        update={
            "env": {
                "GLIA_HTTP_PORT": "8080",
                "GLIA_JOB_URL": "https://app--alice.jobs.example.com/",
            }
        }
    )


async def test_an_http_port_is_a_service_and_an_ingress_behind_forward_auth(
    harness: VolumesHarness,
) -> None:
    await _install_middleware_crd(harness.cluster)
    await harness.runtime.start(_http_spec(harness, "web-1"))
    name = pod_name("web-1")
    async with api_client(harness.cluster) as api:
        core = client.CoreV1Api(api)
        networking = client.NetworkingV1Api(api)
        pod = await core.read_namespaced_pod(name, harness.namespace)
        (port,) = pod.spec.containers[0].ports
        assert (port.name, port.container_port) == ("http", 8080)

        service = await core.read_namespaced_service(name, harness.namespace)
        assert service.spec.type == "ClusterIP"
        assert service.spec.selector[JOB_LABEL] == name
        assert service.spec.selector.items() <= pod.metadata.labels.items()
        (service_port,) = service.spec.ports
        assert (service_port.port, service_port.target_port) == (8080, "http")
        assert [o.uid for o in service.metadata.owner_references] == [pod.metadata.uid]

        ingress = await networking.read_namespaced_ingress(name, harness.namespace)
        assert ingress.spec.ingress_class_name == "traefik"
        (rule,) = ingress.spec.rules
        assert rule.host == "app--alice.jobs.example.com"
        (path,) = rule.http.paths
        assert (path.path, path.path_type) == ("/", "Prefix")
        assert (path.backend.service.name, path.backend.service.port.number) == (name, 8080)
        assert ingress.metadata.annotations[MIDDLEWARE_ANNOTATION] == (
            f"{harness.namespace}-{FORWARD_AUTH}@kubernetescrd"
        )
        assert [o.uid for o in ingress.metadata.owner_references] == [pod.metadata.uid]

        custom: Any = client.CustomObjectsApi(api)
        middleware = await custom.get_namespaced_custom_object(
            "traefik.io", "v1alpha1", harness.namespace, "middlewares", FORWARD_AUTH
        )
        assert middleware["spec"]["forwardAuth"] == {
            "address": AUTH_URL,
            "trustForwardHeader": False,  # /auth/forward reads X-Forwarded-Host: Traefik's own
        }

        await harness.runtime.stop("web-1", grace_s=0)
        await ended(harness.runtime, "web-1")
        await harness.runtime.forget("web-1")

        async def both_gone() -> bool:
            return await _gone(
                core.read_namespaced_service(name, harness.namespace)
            ) and await _gone(networking.read_namespaced_ingress(name, harness.namespace))

        assert await eventually(both_gone, within=30)
