"""A gateway that runs its runtime in the control plane's own process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from cluster_gateway.exec import ExecSession
from cluster_gateway.gateway import (
    ClusterCapacity,
    JobIsolation,
    WorkloadSpec,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.runtimes.base import Runtime
from glia.monitoring import LogBatch
from glia.telemetry import TelemetryTick


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

    async def isolation(self) -> JobIsolation:
        return await self.runtime.isolation()

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        return await self.runtime.start(spec)

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None:
        await self.runtime.stop(job_id, grace_s=grace_s)

    async def set_life_span(self, job_id: str, life_span_s: float | None) -> None:
        await self.runtime.set_life_span(job_id, life_span_s)

    async def states(self, job_ids: Sequence[str]) -> list[WorkloadState]:
        return await self.runtime.states(job_ids)

    async def active_workloads(self) -> list[WorkloadState]:
        return await self.runtime.active_workloads()

    def watch(self, *, after: str | None = None) -> AbstractAsyncContextManager[WorkloadWatch]:
        return self.runtime.watch(after=after)

    def logs(
        self,
        job_id: str,
        *,
        since: datetime | None = None,
        offset: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogBatch]:
        return self.runtime.logs(job_id, since=since, offset=offset, tail=tail, follow=follow)

    async def log_size(self, job_id: str) -> int:
        return await self.runtime.log_size(job_id)

    def read_log(
        self, job_id: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        return self.runtime.read_log(job_id, offset=offset, length=length)

    async def forget(self, job_id: str) -> None:
        await self.runtime.forget(job_id)

    async def exec(
        self,
        job_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        rows: int | None = None,
        cols: int | None = None,
    ) -> ExecSession:
        return await self.runtime.exec(job_id, command, tty=tty, rows=rows, cols=cols)

    async def connect(
        self, job_id: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await self.runtime.connect(job_id, port)

    async def write_stdin(self, job_id: str, data: bytes) -> None:
        await self.runtime.write_stdin(job_id, data)

    async def resize_terminal(self, job_id: str, rows: int, cols: int) -> None:
        await self.runtime.resize_terminal(job_id, rows, cols)

    def telemetry(self, job_id: str | None = None) -> AsyncGenerator[TelemetryTick, None]:
        return self.runtime.telemetry(job_id)
