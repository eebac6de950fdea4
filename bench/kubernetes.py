"""The kubernetes runtime against the test Kubernetes cluster (etcd, kube-apiserver, the
scheduler, the controller manager and kwok, as tests/k8s starts them; kwok marks a pod Running
as soon as it is bound).

Three figures, the runs alternated so that the machine's state weighs on each alike:

- raw create: the API round trip of creating a Pod (`create_namespaced_pod`);
- raw running: creating a Pod until a watch of the API server sees it Running (the API
  server, the scheduler's binding and kwok's status update: the cluster's own time);
- Glia: `KubernetesRuntime.start` until its `watch()` yields RUNNING (Glia's pod, made with
  its namespace, labels and finalizer, seen through the runtime's one cluster-wide watch).

What Glia adds is its median less the raw running median (target ≤ 20 ms).

    python -m bench.kubernetes [--jobs 200]

Needs the binaries deploy/k8s-testenv/build.sh builds (GLIA_K8S_BUILD=1 builds them).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, watch

from bench.harness import summary
from cluster_gateway.gateway import WorkloadPhase, WorkloadSpec
from cluster_gateway.runtimes.kubernetes import KubernetesRuntime
from glia.clusters import Resources
from tests.k8s.testenv import Cluster, add_nodes, api_client, running_cluster

NAMESPACE = "bench"


def configuration(cluster: Cluster) -> client.Configuration:
    made = client.Configuration()
    made.host = cluster.host
    made.ssl_ca_cert = str(cluster.ca_file)
    made.api_key = {"BearerToken": cluster.token}
    made.api_key_prefix = {"BearerToken": "Bearer"}
    return made


def raw_pod(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"bench": "raw"}},
        "spec": {
            "containers": [
                {
                    "name": "job",
                    "image": "busybox",
                    "command": ["true"],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }


class RawRunning:
    """A watch of the bench namespace's raw pods: when each was first seen Running."""

    def __init__(self, core: Any) -> None:
        self._core = core
        self._running: dict[str, asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None

    def expect(self, name: str) -> asyncio.Future[float]:
        return self._running.setdefault(name, asyncio.get_running_loop().create_future())

    async def run(self) -> None:
        stream = watch.Watch().stream(
            self._core.list_namespaced_pod,
            NAMESPACE,
            label_selector="bench=raw",
            timeout_seconds=3600,
        )
        async for event in stream:
            pod = event["object"]
            if pod.status and pod.status.phase == "Running":
                seen = self.expect(pod.metadata.name)
                if not seen.done():
                    seen.set_result(time.perf_counter())


async def measure(cluster: Cluster, jobs: int) -> None:
    async with api_client(cluster) as api:
        core: Any = client.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": NAMESPACE}})
        raw_watch = RawRunning(core)
        watcher = asyncio.create_task(raw_watch.run())
        runtime = KubernetesRuntime(
            configuration(cluster),
            image="busybox",
            namespace_for=lambda spec: f"{NAMESPACE}-glia",
            instance="bench",
            default_grace_s=0,
        )
        await runtime.open()
        creates: list[float] = []
        raw: list[float] = []
        glia: list[float] = []
        try:
            async with runtime.watch() as events:
                feed = aiter(events)
                for i in range(jobs):
                    # Raw: create, then until the watch saw it Running.
                    name = f"raw-{i}"
                    running = raw_watch.expect(name)
                    started = time.perf_counter()
                    await core.create_namespaced_pod(NAMESPACE, raw_pod(name))
                    creates.append(time.perf_counter() - started)
                    async with asyncio.timeout(30):
                        raw.append(await running - started)
                    await core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)

                    # Glia: start, then until its watch yields RUNNING.
                    job_id = f"bench-{i}-{uuid.uuid4().hex[:6]}"
                    spec = WorkloadSpec(
                        job_id=job_id,
                        command=("true",),
                        resources=Resources(cpu=0.1, memory_mb=64),
                        uid=3_100_000,
                        gid=3_100_000,
                    )
                    started = time.perf_counter()
                    await runtime.start(spec)
                    async with asyncio.timeout(30):
                        while True:
                            state = (await anext(feed)).state
                            if state.job_id == job_id and state.phase != WorkloadPhase.PENDING:
                                break
                    glia.append(time.perf_counter() - started)
                    if state.phase != WorkloadPhase.RUNNING:
                        raise RuntimeError(f"{job_id} did not run: {state}")
                    await runtime.stop(job_id, grace_s=0)
                    async with asyncio.timeout(30):
                        while True:
                            state = (await anext(feed)).state
                            if state.job_id == job_id and state.phase == WorkloadPhase.EXITED:
                                break
                    await runtime.forget(job_id)
        finally:
            watcher.cancel()
            await runtime.close()
    print(f"raw create       {summary(creates)}")
    print(f"raw running      {summary(raw)}")
    print(f"Glia running     {summary(glia)}")
    added = statistics.median(glia) - statistics.median(raw)
    print(f"Glia adds (median less raw running median): {added * 1000:.2f} ms (target ≤ 20 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="glia-bench-k8s-") as workdir:
        with running_cluster(Path(workdir) / "cluster") as cluster:
            asyncio.run(add_nodes(cluster))
            asyncio.run(measure(cluster, args.jobs))


if __name__ == "__main__":
    main()
