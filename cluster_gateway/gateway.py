"""The one door from the control plane into a cluster.

The control plane never talks to a runtime directly: it holds a `Gateway` per cluster. The
embedded gateway runs a runtime in-process; a remote gateway speaks to `glia gateway serve`
next to a real cluster. Everything here is plain data so it crosses a network unchanged, and
nothing here knows about the control plane's database: the control plane decides what should
run, the gateway reports what does.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Resources:
    """What a workload may use. ``memory_mb`` and ``cpu`` are hard limits, not requests."""

    cpu: float
    memory_mb: int
    gpu: int = 0


@dataclass(frozen=True)
class WorkloadSpec:
    job_id: str
    command: Sequence[str]
    resources: Resources
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    # Seconds from start after which the runtime stops the workload itself (LifeSpanEnded);
    # enforced cluster-side so it holds while the control plane is down.
    life_span_s: float | None = None


class WorkloadPhase(enum.StrEnum):
    PENDING = "pending"  # accepted, not yet started (image pull, scheduling, process spawn)
    RUNNING = "running"
    EXITED = "exited"  # ended; exit_code/reason tell how
    MISSING = "missing"  # the runtime has no record of it, or lost it


class ExitReason(enum.StrEnum):
    COMPLETED = "Completed"  # exit code 0
    ERROR = "Error"  # non-zero exit code
    OOM_KILLED = "OOMKilled"
    KILLED = "Killed"  # killed by a signal nobody on the platform sent
    USER_REQUESTED = "UserRequested"  # stopped through Gateway.stop
    LIFE_SPAN_ENDED = "LifeSpanEnded"
    LOST = "Lost"  # the runtime lost track of it (supervisor died, node gone)
    START_FAILED = "StartFailed"  # the command could not be started at all


@dataclass(frozen=True)
class WorkloadState:
    job_id: str
    phase: WorkloadPhase
    exit_code: int | None = None
    reason: ExitReason | None = None
    description: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class LogStream(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True)
class LogLine:
    time: datetime  # when the runtime read the line from the workload, UTC
    stream: LogStream
    text: str  # without the trailing newline


@dataclass(frozen=True)
class ClusterCapacity:
    cpu: float
    memory_mb: int
    gpu: int = 0
    gpu_model: str | None = None


@runtime_checkable
class Gateway(Protocol):
    """Operations a cluster offers to the control plane.

    Contract:
    - ``start`` is idempotent per ``job_id``: starting a job the runtime already knows returns
      its current state and starts nothing.
    - ``stop`` asks the workload to end (SIGTERM or the runtime's equivalent) and forces it
      after ``grace_s``; it returns at once, the EXITED state arrives through ``watch``.
    - ``watch`` yields every phase change of every workload, as it happens, for as long as
      the caller iterates; it never ends on its own while the gateway is open.
    - ``logs`` yields batches of lines from the start (or from ``since``); with ``follow`` it
      waits for new lines and ends once the workload has ended and every line was yielded.
      It waits while the workload is still pending.
    """

    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def capacity(self) -> ClusterCapacity: ...

    async def start(self, spec: WorkloadSpec) -> WorkloadState: ...

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None: ...

    async def state(self, job_id: str) -> WorkloadState: ...

    async def list_workloads(self) -> list[WorkloadState]: ...

    def watch(self) -> AsyncIterator[WorkloadState]: ...

    def logs(
        self, job_id: str, *, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[list[LogLine]]: ...

    async def forget(self, job_id: str) -> None:
        """Drop what the runtime keeps of an ended workload, logs included."""
        ...
