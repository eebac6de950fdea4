"""The kubernetes runtime beyond the contract: the pod it makes as the API server stores it, a
pod deleted behind Glia's back, a pod that fits nowhere, and watches the API server ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from cluster_gateway.gateway import WorkloadPhase, WorkloadState
from cluster_gateway.runtimes.kubernetes import (
    FINALIZER,
    INSTANCE_LABEL,
    JOB_ID,
    QUOTA,
    KubernetesRuntime,
    pod_name,
)
from glia.clusters import Resources
from glia.errors import Conflict
from glia.jobs import JobPriority, JobReason
from tests.contract.harness import FOREVER, GPU_MODEL, Pause, Program
from tests.contract.test_runtime_contract import ended, of, running
from tests.k8s.conftest import GPU_NODE, api_client
from tests.k8s.test_runtime_contract_k8s import KubernetesHarness
from tests.k8s.testenv import Cluster
from tests.polling import eventually

pytestmark = pytest.mark.k8s
PENDING, RUNNING, EXITED = WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.EXITED


@pytest.fixture
async def harness(k8s_cluster: Cluster) -> AsyncIterator[KubernetesHarness]:
    harness = KubernetesHarness(k8s_cluster)
    await harness.setup()
    try:
        yield harness
    finally:
        await harness.teardown()


async def test_the_pod_as_the_api_server_keeps_it(harness: KubernetesHarness) -> None:
    spec = harness.spec("Job_1.a", FOREVER, life_span_s=90).model_copy(
        update={
            "resources": Resources(cpu=0.5, memory_mb=300, shm_mb=64),
            "env": {"GLIA_JOB_OWNER": "alice", "GLIA_PRESET": "cpu-small", "A": "1"},
        }
    )
    await harness.runtime.start(spec)
    async with api_client(harness.cluster) as api:
        pod = await client.CoreV1Api(api).read_namespaced_pod(
            pod_name("Job_1.a"), harness.namespace
        )
    assert pod.metadata.annotations[JOB_ID] == "Job_1.a"
    assert pod.metadata.labels[INSTANCE_LABEL] == harness.instance
    assert pod.metadata.labels["glia.dev/owner"] == "alice"
    assert pod.metadata.labels["glia.dev/preset"] == "cpu-small"
    assert pod.metadata.finalizers == [FINALIZER]
    (container,) = pod.spec.containers
    assert (
        container.resources.requests
        == container.resources.limits
        == {
            "cpu": "500m",
            "memory": "300Mi",
        }
    )
    assert {e.name: e.value for e in container.env}["A"] == "1"
    assert container.security_context.run_as_user == 3_100_000
    assert pod.spec.active_deadline_seconds == 90
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.automount_service_account_token is False
    (shm,) = pod.spec.volumes
    assert (shm.empty_dir.medium, shm.empty_dir.size_limit) == ("Memory", "64Mi")


@pytest.mark.parametrize("force", [False, True], ids=["deleted", "force-deleted"])
async def test_a_pod_deleted_behind_glias_back_is_lost(
    harness: KubernetesHarness, force: bool
) -> None:
    await running(harness, "job-1")
    async with api_client(harness.cluster) as api:
        core = client.CoreV1Api(api)
        name = pod_name("job-1")
        if force:  # its record too: the pod is gone at once
            await core.patch_namespaced_pod(
                name, harness.namespace, {"metadata": {"finalizers": None}}
            )
        await core.delete_namespaced_pod(name, harness.namespace, grace_period_seconds=0)
    state = await ended(harness.runtime, "job-1")
    assert state.reason == JobReason.LOST
    assert state.description


async def test_a_pod_that_fits_nowhere_waits_with_the_schedulers_word(
    harness: KubernetesHarness,
) -> None:
    spec = harness.spec("huge", FOREVER).model_copy(
        update={"resources": Resources(cpu=500, memory_mb=64)}
    )
    await harness.runtime.start(spec)

    async def waiting() -> WorkloadState | None:
        (state,) = await harness.runtime.states(["huge"])
        return state if state.description else None

    state = await eventually(waiting, within=30)
    assert state.phase == PENDING
    assert state.description is not None
    assert (
        state.description.startswith("Unschedulable: ") and "Insufficient cpu" in state.description
    )


async def test_watches_the_server_ends_lose_no_transition(k8s_cluster: Cluster) -> None:
    """The API server ends each watch request after a second here; the runtime watches again
    from the last resourceVersion it saw, and every job is seen pending, running, ended."""
    harness = KubernetesHarness(k8s_cluster)
    original = harness.new_runtime

    def short_watches(**kwargs: object) -> KubernetesRuntime:
        runtime = original(**kwargs)  # type: ignore[arg-type]
        runtime._watch_timeout_s = 1
        return runtime

    harness.new_runtime = short_watches  # type: ignore[method-assign]
    harness.runtime = short_watches()
    await harness.setup()
    try:
        job_ids = [f"slow-{i}" for i in range(4)]
        async with harness.runtime.watch() as watch:
            for index, job_id in enumerate(job_ids):
                # Each ends a while after it runs, the four spread over several watches.
                program = Program((Pause(0.7 + 0.3 * index),), exit_code=0)
                await harness.runtime.start(harness.spec(job_id, program))
                await asyncio.sleep(0.3)
            events = []
            async with asyncio.timeout(60):
                async for event in watch:
                    events.append(event)
                    if sum(1 for e in events if e.state.phase == EXITED) == len(job_ids):
                        break
        for job_id in job_ids:
            assert [s.phase for s in of(events, job_id)] == [PENDING, RUNNING, EXITED]
    finally:
        await harness.teardown()


async def test_gpus_go_to_the_gpu_node_and_are_refused_when_none_is_free(
    harness: KubernetesHarness,
) -> None:
    runtime = harness.runtime

    async def all_free() -> bool:  # other tests' GPU pods may still be going
        free = (await runtime.capacity()).free
        return free is not None and free.gpu == 2

    await eventually(all_free, within=30)
    gpu_job = harness.spec("gpu-1", FOREVER, gpu=2).model_copy(
        update={"resources": Resources(cpu=0.1, memory_mb=64, gpu=2, gpu_model=GPU_MODEL)}
    )
    await runtime.start(gpu_job)
    with pytest.raises(Conflict, match="GPUs"):
        await runtime.start(harness.spec("gpu-2", FOREVER, gpu=1))
    async with api_client(harness.cluster) as api:

        async def placed() -> str | None:
            pod = await client.CoreV1Api(api).read_namespaced_pod(
                pod_name("gpu-1"), harness.namespace
            )
            return pod.spec.node_name

        assert await eventually(placed, within=30) == GPU_NODE
        pod = await client.CoreV1Api(api).read_namespaced_pod(pod_name("gpu-1"), harness.namespace)
    assert pod.spec.node_selector == {"nvidia.com/gpu.product": GPU_MODEL}
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"
    await runtime.stop("gpu-1", grace_s=0)
    await ended(runtime, "gpu-1")
    await eventually(all_free, within=30)
    await runtime.start(harness.spec("gpu-2", FOREVER, gpu=1))


async def test_a_jobs_priority_is_a_priority_class_that_preempts_nothing(
    harness: KubernetesHarness,
) -> None:
    """Each of Glia's priorities is a PriorityClass the runtime makes; the API server's
    Priority admission resolves it to the pod's priority. They only order waiting pods
    (preemptionPolicy Never): Glia's own suspension stays the one preemption."""
    for job_id, priority in (("low-1", JobPriority.LOW), ("high-1", JobPriority.HIGH)):
        spec = harness.spec(job_id, FOREVER).model_copy(update={"priority": priority})
        await harness.runtime.start(spec)
    async with api_client(harness.cluster) as api:
        core = client.CoreV1Api(api)
        low = await core.read_namespaced_pod(pod_name("low-1"), harness.namespace)
        high = await core.read_namespaced_pod(pod_name("high-1"), harness.namespace)
        assert (low.spec.priority_class_name, low.spec.priority) == ("glia-low", 1000)
        assert (high.spec.priority_class_name, high.spec.priority) == ("glia-high", 3000)
        assert high.spec.preemption_policy == "Never"
        scheduling = client.SchedulingV1Api(api)
        for name, value in (("glia-low", 1000), ("glia-high", 3000)):
            priority_class = await scheduling.read_priority_class(name)
            assert (priority_class.value, priority_class.preemption_policy) == (value, "Never")


async def test_a_pod_the_api_server_refuses_is_an_api_error(harness: KubernetesHarness) -> None:
    """The API's refusal (here 422: an invalid annotation) is raised as such, with its
    message, and nothing is recorded (kubernetes-asyncio raises nothing itself for the raw
    answers the runtime reads)."""
    runtime = harness.runtime
    assert isinstance(runtime, KubernetesRuntime)
    runtime._pod_annotations = lambda spec: {"not a valid key!": "x"}
    with pytest.raises(ApiException) as refused:
        await harness.runtime.start(harness.spec("refused-1", FOREVER))
    assert refused.value.status == 422
    assert "not a valid key!" in str(refused.value.reason)
    assert [s.phase for s in await harness.runtime.states(["refused-1"])] == [WorkloadPhase.MISSING]


async def test_the_orgs_running_limit_holds_the_namespace_as_a_resource_quota(
    harness: KubernetesHarness,
) -> None:
    """The control plane admits no more jobs than the org's quota; the namespace's
    ResourceQuota is a second line: the API server refuses a pod past it."""

    def limited(job_id: str, limit: int | None) -> Any:
        return harness.spec(job_id, FOREVER).model_copy(update={"running_limit": limit})

    runtime = harness.runtime
    await runtime.start(limited("one", 2))
    await runtime.start(limited("two", 2))
    async with api_client(harness.cluster) as api:
        core = client.CoreV1Api(api)
        quota = await core.read_namespaced_resource_quota(QUOTA, harness.namespace)
        assert quota.spec.hard == {"pods": "2"}
        assert quota.metadata.labels["app.kubernetes.io/managed-by"] == "glia"
        with pytest.raises(ApiException) as refused:
            await runtime.start(limited("three", 2))
        assert refused.value.status == 403 and "exceeded quota" in str(refused.value.body)

        # The quota raised: the third goes through; removed: the ResourceQuota goes.
        await runtime.start(limited("three", 3))
        quota = await core.read_namespaced_resource_quota(QUOTA, harness.namespace)
        assert quota.spec.hard == {"pods": "3"}
        await runtime.start(limited("four", None))
        with pytest.raises(ApiException) as gone:
            await core.read_namespaced_resource_quota(QUOTA, harness.namespace)
        assert gone.value.status == 404
