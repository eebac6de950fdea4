"""A gateway that runs its runtime in the control plane's own process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from cluster_gateway.gateway import (
    ClusterCapacity,
    LogLine,
    WorkloadSpec,
    WorkloadState,
)
from cluster_gateway.runtimes.base import Runtime


class EmbeddedGateway:
    """``Gateway`` over a ``Runtime`` in this process (``LocalRuntime``, or a fake in tests)."""

    def __init__(self, name: str, runtime: Runtime) -> None:
        self.name = name
        self.runtime = runtime

    async def open(self) -> None:
        await self.runtime.open()

    async def close(self) -> None:
        await self.runtime.close()

    async def capacity(self) -> ClusterCapacity:
        return await self.runtime.capacity()

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        return await self.runtime.start(spec)

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None:
        await self.runtime.stop(job_id, grace_s=grace_s)

    async def state(self, job_id: str) -> WorkloadState:
        return await self.runtime.state(job_id)

    async def list_workloads(self) -> list[WorkloadState]:
        return await self.runtime.list_workloads()

    def watch(self) -> AsyncIterator[WorkloadState]:
        return self.runtime.watch()

    def logs(
        self, job_id: str, *, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[list[LogLine]]:
        return self.runtime.logs(job_id, since=since, follow=follow)

    async def forget(self, job_id: str) -> None:
        await self.runtime.forget(job_id)
