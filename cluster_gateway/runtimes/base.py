"""What a gateway needs from whatever actually runs workloads.

``Runtime`` is the workload part of ``cluster_gateway.Gateway``; a gateway adds the rest
(its name, later storage) and delegates here. ``FakeRuntime`` implements it in memory for
control-plane unit tests, ``LocalRuntime`` with processes on this host.
"""

from __future__ import annotations

import abc
import asyncio
import re
import weakref
from collections.abc import AsyncIterator
from datetime import datetime

from cluster_gateway.gateway import ClusterCapacity, LogLine, WorkloadSpec, WorkloadState
from glia.errors import BadInput

_JOB_ID = re.compile(r"[A-Za-z0-9._-]+")


class Runtime(abc.ABC):
    """Runs workloads; the semantics are those of ``Gateway`` (see its docstring), plus:

    - ``start`` raises ``glia.errors.BadInput`` for a job id that is not ``[A-Za-z0-9._-]+``,
      and ``RuntimeError`` before ``open``. It emits PENDING to ``watch``.
    - ``watch`` subscribes when called, not at the first ``anext``: changes made after the call
      are seen. A workload that started and ended between two looks is reported RUNNING, then
      EXITED. After ``open``, ``list_workloads`` is the baseline that ``watch`` continues from.
      Iteration ends when the runtime is closed.
    - ``logs``, ``stop`` raise ``glia.errors.NotFound`` for a job the runtime does not know.
      Stopping an ended job does nothing.
    - ``forget`` does nothing for an unknown job and raises ``glia.errors.Conflict`` for one
      that has not ended.
    - ``close`` leaves workloads running; a runtime opened later on the same state finds them.
    """

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def capacity(self) -> ClusterCapacity: ...

    @abc.abstractmethod
    async def start(self, spec: WorkloadSpec) -> WorkloadState: ...

    @abc.abstractmethod
    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None: ...

    @abc.abstractmethod
    async def state(self, job_id: str) -> WorkloadState: ...

    @abc.abstractmethod
    async def list_workloads(self) -> list[WorkloadState]: ...

    @abc.abstractmethod
    def watch(self) -> AsyncIterator[WorkloadState]: ...

    @abc.abstractmethod
    def logs(
        self, job_id: str, *, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[list[LogLine]]: ...

    @abc.abstractmethod
    async def forget(self, job_id: str) -> None: ...


def check_job_id(job_id: str) -> None:
    """Job ids name directories and cgroups, so they are kept to a safe alphabet."""
    if not _JOB_ID.fullmatch(job_id) or job_id in (".", "..") or len(job_id) > 200:
        raise BadInput(f"invalid job id {job_id!r}", fields={"job_id": "invalid"})


class StateFeed:
    """Fan-out of state changes: one unbounded queue per ``watch`` subscriber."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[WorkloadState | None]] = set()

    def publish(self, state: WorkloadState) -> None:
        for queue in self._queues:
            queue.put_nowait(state)

    def subscribe(self) -> AsyncIterator[WorkloadState]:
        queue: asyncio.Queue[WorkloadState | None] = asyncio.Queue()
        self._queues.add(queue)
        return _Subscription(self._queues, queue)

    def close(self) -> None:
        """End every current subscription."""
        for queue in self._queues:
            queue.put_nowait(None)
        self._queues.clear()


class _Subscription:
    def __init__(
        self,
        queues: set[asyncio.Queue[WorkloadState | None]],
        queue: asyncio.Queue[WorkloadState | None],
    ) -> None:
        self._queue = queue
        self._done = False
        # Dropping the iterator without aclose() must not leave a queue filling forever.
        self._finalizer = weakref.finalize(self, queues.discard, queue)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> WorkloadState:
        if self._done:
            raise StopAsyncIteration
        state = await self._queue.get()
        if state is None:
            self._done = True
            self._finalizer()
            raise StopAsyncIteration
        return state

    async def aclose(self) -> None:
        self._done = True
        self._finalizer()
