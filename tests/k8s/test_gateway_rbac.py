"""The gateway's RBAC (deploy/helm/glia/templates/gateway-rbac.yaml) and admission policy
(gateway-admission-policy.yaml, rendered by helm) on the test API server: bound to the
gateway's ServiceAccount, whose token comes from the TokenRequest API, they are enough for the
kubernetes runtime to run, stop, exec into and forget jobs in a namespace it makes, and refuse
what it does not need (reading Secrets, RBAC, deleting namespaces) and what RBAC alone would
allow (pods, Secrets and namespaces outside the jobs' namespaces, pods that are not jobs')."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from cluster_gateway.gateway import WorkloadPhase, WorkloadSpec
from cluster_gateway.runtimes.kubernetes import QUOTA, disk_claim_manifest, disk_claim_name
from cluster_gateway.runtimes.kubernetes_setup import kubernetes_runtime, load_configuration
from glia.clusters import Resources
from glia.jobs import JobReason
from tests.contract.harness import FOREVER, Pause, Program
from tests.contract.test_runtime_contract import ended, events_until, of, running
from tests.k8s.conftest import api_client
from tests.k8s.test_runtime_contract_k8s import KubernetesHarness
from tests.k8s.testenv import REPO, Cluster
from tests.polling import eventually

pytestmark = pytest.mark.k8s
RBAC = REPO / "deploy" / "helm" / "glia" / "templates" / "gateway-rbac.yaml"
CHART = REPO / "deploy" / "helm" / "glia"
# The contract harness's namespaces are `ct-<hex>`: the jobs' namespaces of this gateway.
PREFIX = "ct-"
PENDING, RUNNING, EXITED = WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.EXITED


def rendered(path: Path, *, release: str, namespace: str) -> list[dict[str, Any]]:
    """The template's documents, its two expressions substituted as Helm would."""
    text = path.read_text()
    text = text.replace("{{ .Release.Name }}", release)
    text = text.replace("{{ .Release.Namespace }}", namespace)
    assert "{{" not in text, "gateway-rbac.yaml templates more than the release's name/namespace"
    return [doc for doc in yaml.safe_load_all(text) if doc]


async def apply(api: client.ApiClient, documents: list[dict[str, Any]]) -> None:
    rbac: Any = client.RbacAuthorizationV1Api(api)
    for doc in documents:
        kind, namespace = doc["kind"], doc["metadata"].get("namespace")
        if kind == "ClusterRole":
            await rbac.create_cluster_role(doc)
        elif kind == "ClusterRoleBinding":
            await rbac.create_cluster_role_binding(doc)
        elif kind == "Role":
            await rbac.create_namespaced_role(namespace, doc)
        elif kind == "RoleBinding":
            await rbac.create_namespaced_role_binding(namespace, doc)
        else:
            raise AssertionError(f"gateway-rbac.yaml holds a {kind}: the test does not apply it")


class GatewayHarness(KubernetesHarness):
    """The contract harness, its runtime reaching the API server as the gateway's
    ServiceAccount (the administrator only cleans up)."""

    def __init__(self, cluster: Cluster, token: str) -> None:
        self.gateway_token = token
        super().__init__(cluster)

    def _configuration(self) -> client.Configuration:
        configuration = super()._configuration()
        configuration.api_key = {"BearerToken": self.gateway_token}
        return configuration


def admission_policy(helm: str, *, release: str, namespace: str) -> list[dict[str, Any]]:
    """The chart's admission policy and its binding, as `helm template` renders them."""
    done = subprocess.run(
        [
            helm, "template", release, str(CHART), "--namespace", namespace,
            "--show-only", "templates/gateway-admission-policy.yaml",
            "--set", "database.url=postgresql+asyncpg://db/glia",
            "--set", "secrets.existingSecret=s", "--set", "gateway.existingSecret=g",
            "--set", f"gateway.namespacePrefix={PREFIX}",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture
async def gateway_token(k8s_cluster: Cluster, helm: str) -> AsyncIterator[str]:
    release = f"rbac-{uuid.uuid4().hex[:8]}"
    namespace = release  # the release's namespace
    documents = rendered(RBAC, release=release, namespace=namespace)
    policy, binding_of_policy = admission_policy(helm, release=release, namespace=namespace)
    async with api_client(k8s_cluster) as api:
        core: Any = client.CoreV1Api(api)
        rbac: Any = client.RbacAuthorizationV1Api(api)
        admission: Any = client.AdmissionregistrationV1Api(api)
        await core.create_namespace({"metadata": {"name": namespace}})
        await admission.create_validating_admission_policy(policy)
        await admission.create_validating_admission_policy_binding(binding_of_policy)
        # The chart's templates/gateway-serviceaccount.yaml makes it (the name is the same).
        account = f"{release}-gateway"
        await core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
        await apply(api, documents)
        (binding,) = [d for d in documents if d["kind"] == "ClusterRoleBinding"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": namespace}
        ]
        request = await core.create_namespaced_service_account_token(
            account, namespace, {"spec": {"expirationSeconds": 3600}}
        )
        token = request.status.token

        # The API server enforces a new policy a moment after it is made: from here on it is.
        async def enforced() -> bool:
            async with api_client(k8s_cluster, token=token) as as_gateway:
                try:
                    await client.CoreV1Api(as_gateway).create_namespaced_secret(
                        "default", {"metadata": {"name": "probe"}, "stringData": {"a": "b"}}
                    )
                except ApiException as error:
                    if error.status == 403 and "Glia's jobs runtime" in str(error.body):
                        return True
                    raise
            await core.delete_namespaced_secret("probe", "default")
            return False

        await eventually(enforced, within=30)
        try:
            yield token
        finally:
            await admission.delete_validating_admission_policy_binding(release + "-gateway")
            await admission.delete_validating_admission_policy(release + "-gateway")
            for doc in documents:
                name = doc["metadata"]["name"]
                if doc["kind"] == "ClusterRole":
                    await rbac.delete_cluster_role(name)
                elif doc["kind"] == "ClusterRoleBinding":
                    await rbac.delete_cluster_role_binding(name)
            await core.delete_namespace(namespace)


@pytest.fixture
async def harness(k8s_cluster: Cluster, gateway_token: str) -> AsyncIterator[GatewayHarness]:
    harness = GatewayHarness(k8s_cluster, gateway_token)
    await harness.setup()  # the runtime's first list and watch, as the gateway
    try:
        yield harness
    finally:
        await harness.teardown()


async def test_the_gateways_account_runs_stops_and_forgets_jobs(harness: GatewayHarness) -> None:
    runtime = harness.runtime
    capacity = await runtime.capacity()  # nodes and every pod, listed
    assert capacity.cpu > 0 and capacity.free is not None
    async with runtime.watch() as watch:
        # Its namespace and ServiceAccount made, its pod made, watched to the end.
        await runtime.start(harness.spec("done", Program((Pause(1.0),), exit_code=0)))
        events = []
        async for event in watch:
            events.append(event)
            if event.state.job_id == "done" and event.state.phase == EXITED:
                break
    states = of(events, "done")
    assert [s.phase for s in states] == [PENDING, RUNNING, EXITED]
    assert (states[-1].exit_code, states[-1].reason) == (0, JobReason.COMPLETED)
    await runtime.forget("done")  # the finalizer removed

    await running(harness, "stopped", FOREVER)
    # exec and port-forward into it (pods/exec, pods/portforward).
    session = await runtime.exec("stopped", ["echo", "exec allowed"])
    said = b"".join([chunk async for _stream, chunk in session.output()])
    assert (said, await session.wait()) == (b"exec allowed\n", 0)
    reader, writer = await runtime.connect("stopped", 8080)
    writer.write(b"forwarded\n")
    assert await asyncio.wait_for(reader.readline(), 30) == b"forwarded\n"
    writer.close()
    # A terminal job's input (pods/attach).
    async with runtime.watch() as watch:
        await runtime.start(harness.spec("tty", FOREVER).model_copy(update={"tty": True}))
        await events_until(watch, "tty", RUNNING)
    await runtime.write_stdin("tty", b"typed\r")
    await runtime.resize_terminal("tty", 30, 100)
    await runtime.stop("stopped", grace_s=0)  # annotated, then deleted

    # The org's running limit as the namespace's ResourceQuota: made, then changed.
    for limit in (5, 6):
        limited = harness.spec(f"limited-{limit}", FOREVER).model_copy(
            update={"running_limit": limit}
        )
        await runtime.start(limited)
    async with api_client(harness.cluster) as admin:
        quota = await client.CoreV1Api(admin).read_namespaced_resource_quota(
            QUOTA, harness.namespace
        )
        assert quota.spec.hard == {"pods": "6"}

    # A disk deleted through the control plane: its claims found and deleted.
    disk = f"disk-{uuid.uuid4()}"
    claim = disk_claim_manifest(disk, harness.namespace, 1024**3, None)
    async with api_client(harness.cluster) as admin:
        core: Any = client.CoreV1Api(admin)
        await core.create_namespaced_persistent_volume_claim(harness.namespace, claim)
        await runtime.disks.delete(disk)
        left = await core.list_namespaced_persistent_volume_claim(harness.namespace)
        assert all(
            c.metadata.deletion_timestamp is not None
            for c in left.items
            if c.metadata.name == disk_claim_name(disk)
        )
    assert (await ended(runtime, "stopped")).reason == JobReason.USER_REQUESTED


async def test_the_gateways_account_is_refused_what_it_does_not_need(
    k8s_cluster: Cluster, gateway_token: str
) -> None:
    async with api_client(k8s_cluster, token=gateway_token) as api:
        core: Any = client.CoreV1Api(api)
        rbac: Any = client.RbacAuthorizationV1Api(api)
        await core.list_pod_for_all_namespaces(limit=1)  # what it needs works
        refused = [
            lambda: core.list_namespaced_secret("kube-system"),
            lambda: core.list_secret_for_all_namespaces(),
            # It makes a job's Secret and never reads one back.
            lambda: core.read_namespaced_secret("any", "kube-system"),
            lambda: core.list_namespaced_config_map("kube-system"),
            lambda: core.delete_namespace("default"),
            lambda: core.read_namespace("default"),
            lambda: core.patch_node("kwok-node-0", {"metadata": {"labels": {"a": "b"}}}),
            lambda: rbac.list_cluster_role(),
            lambda: rbac.create_cluster_role_binding(
                {
                    "metadata": {"name": "escalate"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [{"kind": "User", "name": "anyone"}],
                }
            ),
            # Proxying to a pod's ports over HTTP is not something the gateway does.
            lambda: core.connect_get_namespaced_pod_proxy("any", "default"),
        ]
        for call in refused:
            with pytest.raises(ApiException) as error:
                await call()
            assert error.value.status == 403, error.value


def _pod(namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"p-{uuid.uuid4().hex[:8]}", "namespace": namespace},
        "spec": {
            "serviceAccountName": "glia-job",
            "containers": [{"name": "job", "image": "busybox"}],
            **spec,
        },
    }


async def test_the_admission_policy_keeps_the_gateway_to_job_pods_in_job_namespaces(
    k8s_cluster: Cluster, gateway_token: str
) -> None:
    jobs = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    async with (
        api_client(k8s_cluster) as admin_api,
        api_client(k8s_cluster, token=gateway_token) as api,
    ):
        admin: Any = client.CoreV1Api(admin_api)
        core: Any = client.CoreV1Api(api)

        async def refused(call: Any) -> str:
            """The policy's refusal of ``call`` (it is enforced a moment after it is made)."""

            async def answer() -> str | None:
                try:
                    made = await call()
                except ApiException as error:
                    if error.status in (403, 422) and "Glia's jobs runtime" in str(error.body):
                        return str(error.body)
                    raise
                # Let through before the policy was loaded: undo, and ask again.
                await admin_cleanup(made)
                return None

            return await eventually(answer, within=20)

        async def admin_cleanup(made: Any) -> None:
            kind = getattr(made, "kind", None)
            name, namespace = made.metadata.name, made.metadata.namespace
            if kind == "Namespace":
                await admin.delete_namespace(name)
            elif kind == "Pod":
                await admin.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
            elif kind == "Secret":
                await admin.delete_namespaced_secret(name, namespace)

        # Outside the jobs' namespaces: refused though RBAC allows it.
        outside = _pod("default", serviceAccountName="default")  # an account that is there
        body = await refused(lambda: core.create_namespaced_pod("default", outside))
        assert "only in its jobs' namespaces" in body
        await refused(lambda: core.create_namespace({"metadata": {"name": "kube-evil"}}))
        await refused(
            lambda: core.create_namespaced_secret(
                "kube-system", {"metadata": {"name": "x"}, "stringData": {"a": "b"}}
            )
        )
        # A jobs' namespace: made, with its job account, as the runtime makes them.
        await core.create_namespace({"metadata": {"name": jobs}})
        try:
            await core.create_namespaced_service_account(jobs, {"metadata": {"name": "glia-job"}})
            for not_a_job in (
                _pod(jobs, serviceAccountName="default"),
                _pod(jobs, hostNetwork=True),
                _pod(jobs, hostPID=True),
                _pod(jobs, volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
                _pod(
                    jobs,
                    containers=[
                        {
                            "name": "job",
                            "image": "busybox",
                            "securityContext": {"privileged": True},
                        }
                    ],
                ),
            ):
                body = await refused(lambda pod=not_a_job: core.create_namespaced_pod(jobs, pod))
                assert "only job pods" in body
            token_secret = {
                "metadata": {
                    "name": "steal",
                    "annotations": {"kubernetes.io/service-account.name": "glia-job"},
                },
                "type": "kubernetes.io/service-account-token",
            }
            await refused(lambda: core.create_namespaced_secret(jobs, token_secret))
            # What a job is goes through.
            made = await core.create_namespaced_pod(jobs, _pod(jobs))
            assert made.spec.service_account_name == "glia-job"
            await core.create_namespaced_secret(
                jobs, {"metadata": {"name": "job-secret"}, "stringData": {"k": "v"}}
            )
        finally:
            await admin.delete_namespace(jobs)


async def test_the_gateway_in_a_pod_reaches_the_api_server_with_its_in_cluster_config(
    k8s_cluster: Cluster, gateway_token: str, tmp_path: Path
) -> None:
    """What a gateway in a pod does (`glia gateway serve --runtime kubernetes` without
    --kubeconfig): the address from KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount token and
    the CA from the files the kubelet mounts — here written as a kubelet would, the token the
    gateway's own from the TokenRequest API; the runtime runs a job with them."""
    mounted = tmp_path / "serviceaccount"
    mounted.mkdir()
    (mounted / "token").write_text(gateway_token)
    (mounted / "ca.crt").write_bytes(k8s_cluster.ca_file.read_bytes())
    host, port = k8s_cluster.host.removeprefix("https://").rsplit(":", 1)
    environ = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    configuration = await load_configuration(None, service_account=mounted, environ=environ)
    assert configuration.host == k8s_cluster.host
    instance = f"ct-{uuid.uuid4().hex[:10]}"
    runtime = kubernetes_runtime(configuration, cluster=instance, namespace_prefix=PREFIX)
    await runtime.open()
    try:
        assert (await runtime.capacity()).cpu > 0
        spec = WorkloadSpec(
            job_id="in-cluster",
            command=("true",),
            resources=Resources(cpu=0.1, memory_mb=64),
            env={"GLIA_JOB_OWNER": "alice"},
        )
        async with runtime.watch() as watch:
            await runtime.start(spec)
            await events_until(watch, "in-cluster", RUNNING)
        await runtime.stop("in-cluster", grace_s=0)
        await ended(runtime, "in-cluster")
        await runtime.forget("in-cluster")
    finally:
        await runtime.close()
        async with api_client(k8s_cluster) as admin:
            await client.CoreV1Api(admin).delete_namespace(f"{PREFIX}alice")
    # Without the mounted files (not in a pod, no kubeconfig): a clear error.
    with pytest.raises(ValueError, match="not inside a pod"):
        await load_configuration(None, service_account=tmp_path / "none", environ=environ)
