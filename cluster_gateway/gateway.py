"""The one door from the control plane into a cluster.

The control plane never talks to a runtime directly: it holds a `Gateway` per cluster. The
embedded gateway runs a runtime in-process; a remote gateway speaks to `glia gateway serve`
next to a real cluster. Everything here is plain data (kernel models) so it crosses a network
unchanged, and nothing here knows about the control plane's database: the control plane
decides what should run, the gateway reports what does.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import Field, SecretStr

from cluster_gateway.exec import ExecSession
from glia.clusters import Resources
from glia.errors import GliaError, Unavailable
from glia.jobs import JobPriority, JobReason
from glia.model import Model
from glia.monitoring import LogBatch
from glia.telemetry import TelemetryTick
from glia.volumes import SecretFile, Volume

# Exit reasons a gateway reports; the rest of JobReason is the control plane's to give.
EXIT_REASONS = frozenset(
    {
        JobReason.COMPLETED,
        JobReason.ERROR,
        JobReason.OOM_KILLED,
        JobReason.KILLED,
        JobReason.USER_REQUESTED,
        JobReason.LIFE_SPAN_ENDED,
        JobReason.LOST,
        JobReason.START_FAILED,
    }
)


class WorkloadSpec(Model):
    """What to run for a job; ``env`` is complete (the platform's variables included)."""

    job_id: str
    command: tuple[str, ...]
    resources: Resources
    # Out of the repr: it may hold a token acting for the job's owner (--pass-config).
    env: Mapping[str, str] = Field(default_factory=dict, repr=False)
    working_dir: str | None = None
    # A directory of the cluster's storage (`storage://…`) the job starts in, writable,
    # instead; the control plane checked that the job's owner may write it. A runtime binds
    # it only from inside its storage's tree.
    storage_workdir: str | None = None
    # What the job mounts (`glia.volumes.Volume`, resolved: storage URIs, disk ids): the
    # control plane checked the job's owner may use each; a runtime binds storage only from
    # inside its storage's tree, and refuses volumes where it has no sandbox.
    volumes: tuple[Volume, ...] = ()
    # The contents of its secret volumes, and its variables set from secrets: out of the
    # repr, and never written where anything shows them (the runtime's spec.json included).
    secret_files: tuple[SecretFile, ...] = Field(default=(), repr=False)
    secret_env: Mapping[str, SecretStr] = Field(default_factory=dict, repr=False)
    # The size in bytes of each disk it mounts, by disk id, for a runtime that makes a disk's
    # volume itself on first use (kubernetes: a PersistentVolumeClaim); others ignore it.
    disk_sizes: Mapping[str, int] = Field(default_factory=dict)
    # At most this many of its org's jobs run at once on this cluster (the tightest of the
    # org's quotas that hold whoever runs the job): the control plane enforces it when it
    # admits a job; a runtime may hold the workload's namespace to it too, as a second line
    # (kubernetes: a ResourceQuota on its project's namespace). None: no such quota.
    running_limit: int | None = None
    # Seconds from start after which the runtime stops the workload itself (LifeSpanEnded);
    # enforced cluster-side so it holds while the control plane is down.
    life_span_s: float | None = None
    # The unprivileged uid and gid the workload runs as: one pair per Glia user, allocated by
    # the control plane. A runtime that cannot switch users (it does not run as root) runs
    # it as its own user, inside its sandbox (see `JobIsolation`).
    uid: int | None = None
    gid: int | None = None
    # Under a terminal the runtime holds, its input fed through `Gateway.write_stdin`.
    tty: bool = False
    # The job's priority, for a runtime whose scheduler orders waiting work by it
    # (kubernetes: a PriorityClass); the local runtime ignores it (the control plane orders).
    priority: JobPriority = JobPriority.NORMAL


class WorkloadPhase(enum.StrEnum):
    PENDING = "pending"  # accepted, not yet started (image pull, scheduling, process spawn)
    RUNNING = "running"
    EXITED = "exited"  # ended; exit_code/reason tell how
    MISSING = "missing"  # the runtime has no record of it (never started, or forgotten)


class WorkloadState(Model):
    job_id: str
    phase: WorkloadPhase
    exit_code: int | None = None
    reason: JobReason | None = None  # one of EXIT_REASONS once EXITED
    description: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class WorkloadEvent(Model):
    """A state change, with the cursor to resume a watch right after it."""

    cursor: str
    state: WorkloadState


class ClusterCapacity(Resources):
    """What the cluster has in all, and what of it its workloads leave free.

    ``free`` is the capacity less what the workloads that have not ended hold (it may go
    below zero for cpu and memory, which the control plane's admission never asks for);
    ``gpu_model`` (inherited) is the model of the cluster's GPUs.
    """

    free: Resources | None = None


class JobIsolation(Model):
    """How a cluster keeps a job from the platform and from other users' jobs."""

    own_uid: bool
    """Each user's jobs run under an unprivileged uid of their own (the runtime runs as root)."""
    sandbox: bool
    """Each job runs in a sandbox that shows it only its own working directory and volumes,
    read-only system directories and a private /tmp and HOME."""

    @property
    def multi_user(self) -> bool:
        """Whether jobs of several users may share the cluster: with neither, a job could
        read what the platform and other jobs keep on the host."""
        return self.own_uid or self.sandbox


class WatchExpired(GliaError):
    """A watch cannot go on from where it was: its cursor is older than what the gateway
    keeps (or from before the gateway restarted), or the watcher fell too far behind. The
    watcher subscribes again without a cursor and relists (``active_workloads`` and
    ``states``), as a Kubernetes client does on 410 Gone."""

    code = "WATCH_EXPIRED"


class GatewayUnreachable(Unavailable):
    """A remote gateway did not answer in time, or the connection to it failed: the cluster
    may be down, stopped, or cut off. Nothing is known of the operation's outcome (a start or
    stop may have happened); the control plane keeps the cluster's jobs at their last known
    status and asks again later. Never raised by an embedded gateway."""


class WorkloadWatch(Protocol):
    """An open watch. ``cursor`` is the position it started from: events after it, and only
    those, are yielded. Iteration ends when the gateway closes and raises `WatchExpired`
    when the watcher fell behind."""

    @property
    def cursor(self) -> str: ...

    def __aiter__(self) -> AsyncIterator[WorkloadEvent]: ...


@runtime_checkable
class Gateway(Protocol):
    """Operations a cluster offers to the control plane.

    Contract (tests/contract/test_gateway_contract.py holds every implementation to it):
    - ``start`` is idempotent per ``job_id``: starting a job the cluster already knows returns
      its current state and starts nothing. A job id is ``[A-Za-z0-9._-]+`` (BadInput else).
    - ``stop`` asks the workload to end (SIGTERM or the runtime's equivalent) and forces it
      after ``grace_s``; it returns at once, the EXITED state arrives through ``watch``.
      Stopping an ended workload does nothing; an unknown one is NotFound.
    - ``watch`` is a handshake: once ``async with gateway.watch(...)`` has entered, every
      later change is seen. With ``after`` (a cursor from an earlier event or watch) it first
      replays what happened since, or raises `WatchExpired`. A workload that started and
      ended between two looks is reported RUNNING, then EXITED.
    - ``active_workloads`` lists what is pending or running; ``states`` answers for any job
      ids, MISSING for those the cluster does not know (never started, or forgotten).
    - ``logs`` yields batches of lines (`LogBatch`: runs of lines, not an object per line)
      from the start, from ``since`` (a time), from ``offset`` (a run's end an earlier
      reader got: it goes on from there without losing or repeating a line) or from the
      last ``tail`` lines (at most one of the three: BadInput else, and for a negative
      number); with ``follow`` it waits for new lines and ends once
      the workload has ended and every line was yielded, each once and in order, however many
      follow it and however slowly one of them reads. A batch holds at most 1,000 lines and
      64 KiB of text (a line is at most 64 KiB).
      ``read_log`` yields the output's bytes (lines joined with newlines) from ``offset``;
      ``log_size`` is their count so far. All three raise NotFound for an unknown workload.
    - A workload's output is capped: past the cluster's limit the oldest lines are dropped,
      and in their place ``logs`` yields a ``LogStream.SYSTEM`` line ``[glia: N bytes of
      older output were dropped]``, which ``read_log``'s bytes start with too (``log_size``
      counts it). A reader whose workload is forgotten (or whose log is truncated) while it
      reads gets a ``SYSTEM`` line saying so, and ends.
    - ``isolation`` says how the cluster keeps jobs apart (`JobIsolation`).
    - ``capacity`` is what the cluster has, and (``free``) what the workloads that have not
      ended leave of it. A workload's GPUs are its own from ``start`` until it ends: they are
      named in its CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES (empty, and ``void``, for
      a workload that asked for none, on a cluster with GPUs); a start that asks for more
      GPUs than are free is Conflict. Cpu and memory are the control plane's to admit.
    - ``set_life_span`` gives a workload that has not ended a new life span, in seconds from
      its start (None: no limit); an ended one is left as it is, an unknown one is NotFound.
    - ``forget`` drops an ended workload, logs included; Conflict for one that has not ended,
      nothing for an unknown one. Ended workloads are also forgotten by the cluster itself
      after its retention period.
    - ``telemetry`` yields ticks of samples (`TelemetrySample`, one per running workload and
      tick, ticks at least a second apart): with ``job_id`` that workload's only, ending once
      it has ended (at once for an ended one; NotFound for an unknown one); without, every
      running workload's until the gateway closes. A reader that falls behind loses its oldest
      ticks (a few wait for it at most), and nobody waits for it.
    """

    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def capacity(self) -> ClusterCapacity: ...

    async def isolation(self) -> JobIsolation: ...

    async def start(self, spec: WorkloadSpec) -> WorkloadState: ...

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None: ...

    async def set_life_span(self, job_id: str, life_span_s: float | None) -> None: ...

    async def states(self, job_ids: Sequence[str]) -> list[WorkloadState]: ...

    async def active_workloads(self) -> list[WorkloadState]: ...

    def watch(self, *, after: str | None = None) -> AbstractAsyncContextManager[WorkloadWatch]: ...

    def logs(
        self,
        job_id: str,
        *,
        since: datetime | None = None,
        offset: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogBatch]: ...

    async def log_size(self, job_id: str) -> int: ...

    def read_log(
        self, job_id: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]: ...

    async def forget(self, job_id: str) -> None: ...

    # Exec and port-forward (cluster_gateway/exec.py): NotFound for an unknown workload,
    # Conflict for one that is not running; ``exec`` runs ``command`` inside the workload (its
    # sandbox, mounts, env, working dir, uid and cgroup), with a PTY of ``rows`` x ``cols``
    # for ``tty``; ``connect`` opens a TCP connection to its ``port`` (in its network);
    # ``write_stdin`` feeds the terminal of a workload started with ``tty`` (Conflict else),
    # ``resize_terminal`` sets its size (its processes get SIGWINCH).
    async def exec(
        self,
        job_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        rows: int | None = None,
        cols: int | None = None,
    ) -> ExecSession: ...

    async def connect(
        self, job_id: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...

    async def write_stdin(self, job_id: str, data: bytes) -> None: ...

    async def resize_terminal(self, job_id: str, rows: int, cols: int) -> None: ...

    def telemetry(self, job_id: str | None = None) -> AsyncGenerator[TelemetryTick, None]: ...
