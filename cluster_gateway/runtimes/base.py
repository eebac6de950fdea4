"""What a gateway needs from whatever actually runs workloads.

``Runtime`` is the workload part of ``cluster_gateway.Gateway``; a gateway adds the rest
(its name, later storage) and delegates here. ``FakeRuntime`` implements it in memory for
control-plane tests, ``LocalRuntime`` with processes on this host; both pass the same contract
suite (tests/contract/test_runtime_contract.py).
"""

from __future__ import annotations

import abc
import asyncio
import re
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
from glia.errors import BadInput
from glia.monitoring import LogBatch
from glia.telemetry import TelemetryTick

_JOB_ID = re.compile(r"[A-Za-z0-9._-]+")


class Runtime(abc.ABC):
    """Runs workloads; the semantics are those of ``Gateway`` (see its docstring), plus:

    - ``start`` raises ``RuntimeError`` before ``open``. It emits PENDING to ``watch``.
    - ``close`` ends every watch and leaves workloads running; a runtime opened later on the
      same state finds them.
    """

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def capacity(self) -> ClusterCapacity: ...

    @abc.abstractmethod
    async def isolation(self) -> JobIsolation: ...

    @abc.abstractmethod
    async def start(self, spec: WorkloadSpec) -> WorkloadState: ...

    @abc.abstractmethod
    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None: ...

    @abc.abstractmethod
    async def set_life_span(self, job_id: str, life_span_s: float | None) -> None: ...

    @abc.abstractmethod
    async def states(self, job_ids: Sequence[str]) -> list[WorkloadState]: ...

    @abc.abstractmethod
    async def active_workloads(self) -> list[WorkloadState]: ...

    @abc.abstractmethod
    def watch(self, *, after: str | None = None) -> AbstractAsyncContextManager[WorkloadWatch]: ...

    @abc.abstractmethod
    def logs(
        self,
        job_id: str,
        *,
        since: datetime | None = None,
        offset: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogBatch]: ...

    @abc.abstractmethod
    async def log_size(self, job_id: str) -> int: ...

    @abc.abstractmethod
    def read_log(
        self, job_id: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def forget(self, job_id: str) -> None: ...

    @abc.abstractmethod
    async def exec(
        self,
        job_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        rows: int | None = None,
        cols: int | None = None,
    ) -> ExecSession: ...

    @abc.abstractmethod
    async def connect(
        self, job_id: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...

    @abc.abstractmethod
    async def write_stdin(self, job_id: str, data: bytes) -> None: ...

    @abc.abstractmethod
    async def resize_terminal(self, job_id: str, rows: int, cols: int) -> None:
        """Set the size of a ``tty`` workload's terminal (1 to 10,000 each; its processes get
        SIGWINCH): NotFound, Conflict as `write_stdin`."""

    @abc.abstractmethod
    def telemetry(self, job_id: str | None = None) -> AsyncGenerator[TelemetryTick, None]: ...


def check_job_id(job_id: str) -> None:
    """Job ids name directories and cgroups, so they are kept to a safe alphabet."""
    if not _JOB_ID.fullmatch(job_id) or job_id in (".", "..") or len(job_id) > 200:
        raise BadInput(f"invalid job id {job_id!r}", fields={"job_id": "invalid"})
