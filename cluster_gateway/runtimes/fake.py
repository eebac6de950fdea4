"""An in-memory runtime for tests of the control plane.

Nothing runs: the test drives every transition, with the same observable behaviour as
``LocalRuntime`` (both pass tests/contract/test_runtime_contract.py)::

    runtime = FakeRuntime()
    await runtime.open()
    await runtime.start(spec)          # PENDING; RUNNING follows on the next loop turn
    runtime.emit_log("job-1", "hello")
    runtime.finish("job-1", 3)         # EXITED, reason Error

A life span is enforced as the local runtime does it: the workload ends LifeSpanEnded
``life_span_s`` after it turned RUNNING. So is the output's cap (``log_limit_bytes``): the
oldest whole lines are dropped past it, and readers get the local runtime's marker line
(``logfile.dropped_line``) in their place, as a SYSTEM line in ``logs`` and as bytes in
``read_log``. ``logs`` batches are bounded as the local runtime's, and a reader whose workload
is forgotten while it reads gets a SYSTEM line saying so, then ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cluster_gateway.exec import ExecSession, ExecStream
from cluster_gateway.gateway import (
    ClusterCapacity,
    JobIsolation,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.runtimes import gpus, logfile
from cluster_gateway.runtimes.base import Runtime, check_job_id
from cluster_gateway.runtimes.telemetry import TelemetryHub
from cluster_gateway.watch import DEFAULT_HISTORY, WorkloadFeed
from glia.clock import utcnow
from glia.errors import BadInput, Conflict, NotFound, Unavailable
from glia.jobs import JobReason
from glia.monitoring import LogBatch, LogLine, LogStream, check_log_start
from glia.telemetry import GpuSample, TelemetrySample, TelemetryTick

SIGTERM_EXIT_CODE = 143  # 128 + SIGTERM: what a process that honours SIGTERM exits with
READ_CHUNK = 64 * 1024
# As LocalRuntime's: ``logs`` batches (lines, and bytes of text) and the output's cap.
BATCH_LINES = 1000
BATCH_BYTES = 64 * 1024
DEFAULT_LOG_LIMIT = 1024**3


@dataclass
class _Job:
    spec: WorkloadSpec
    state: WorkloadState
    lines: list[LogLine] = field(default_factory=list)  # those kept
    output: bytearray = field(default_factory=bytearray)  # the kept lines as bytes
    dropped_lines: int = 0  # lines dropped past the cap, before ``lines``
    dropped_bytes: int = 0
    life_span: asyncio.TimerHandle | None = None
    # Replaced after every change, so a follower waits on the event it saw before reading.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class FakeRuntime(Runtime):
    """In-memory ``Runtime``; see the module docstring.

    ``auto_run``: a started workload turns RUNNING by itself on the next loop turn (else call
    ``run``). ``honour_stop``: ``stop`` ends the workload on the next loop turn with
    UserRequested (else the test calls ``finish``). ``stop_requests`` records every ``stop``.
    ``isolation``: what ``isolation()`` answers (by default, both kinds).
    ``capacity``: the cluster's size; its ``gpu`` GPUs (indices 0…) are assigned to
    workloads as the local runtime assigns them, and ``capacity()`` reports what the
    workloads that have not ended leave free.
    """

    def __init__(
        self,
        *,
        capacity: ClusterCapacity | None = None,
        auto_run: bool = True,
        honour_stop: bool = True,
        watch_history: int = DEFAULT_HISTORY,
        isolation: JobIsolation | None = None,
        log_limit_bytes: int = DEFAULT_LOG_LIMIT,
    ) -> None:
        self._capacity = capacity or ClusterCapacity(cpu=8.0, memory_mb=16384)
        self._gpus = tuple(
            gpus.Gpu(str(i), self._capacity.gpu_model) for i in range(self._capacity.gpu)
        )
        self._holdings: dict[str, gpus.Holding] = {}
        self.ports: dict[tuple[str, int], tuple[str, int]] = {}  # see connect
        self.stdin: dict[str, bytes] = {}  # see write_stdin
        self.terminal_sizes: dict[str, list[tuple[int, int]]] = {}  # see resize_terminal
        self._isolation = isolation or JobIsolation(own_uid=True, sandbox=True)
        self._log_limit_bytes = log_limit_bytes
        self.auto_run = auto_run
        self.honour_stop = honour_stop
        self.stop_requests: list[tuple[str, float]] = []
        self._jobs: dict[str, _Job] = {}
        self._watch_history = watch_history
        self._feed = WorkloadFeed(history=watch_history)
        self._open = False
        self._telemetry = TelemetryHub()

    # --- Runtime --------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._feed.closed:
            self._feed = WorkloadFeed(history=self._watch_history)
        self._open = True

    async def close(self) -> None:
        """End every watch and log follower; the workloads stay as they are."""
        self._open = False
        self._feed.close()
        self._telemetry.close()
        for job in self._jobs.values():
            job.wake()

    async def capacity(self) -> ClusterCapacity:
        free = gpus.free_resources(self._capacity, self._holdings.values())
        return self._capacity.model_copy(update={"free": free})

    async def isolation(self) -> JobIsolation:
        return self._isolation

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        if not self._open:
            raise RuntimeError("runtime is not open")
        check_job_id(spec.job_id)
        if not spec.command:
            raise BadInput("empty command", fields={"command": "empty"})
        if spec.job_id in self._jobs:
            return self._jobs[spec.job_id].state
        held = gpus.take(self._gpus, self._holdings, spec.job_id, spec.resources.gpu)
        self._holdings[spec.job_id] = gpus.Holding(spec.resources, held)
        env = {**spec.env, **gpus.visible_env(self._gpus, held)}
        spec = spec.model_copy(update={"env": env})
        job = _Job(spec, WorkloadState(job_id=spec.job_id, phase=WorkloadPhase.PENDING))
        self._jobs[spec.job_id] = job
        self._feed.publish(job.state)
        if self.auto_run:
            asyncio.get_running_loop().call_soon(self._run_if_pending, spec.job_id)
        return job.state

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None:
        job = self._job(job_id)
        self.stop_requests.append((job_id, grace_s))
        if job.state.phase == WorkloadPhase.EXITED or not self.honour_stop:
            return
        asyncio.get_running_loop().call_soon(self._stop_now, job_id, JobReason.USER_REQUESTED)

    async def set_life_span(self, job_id: str, life_span_s: float | None) -> None:
        job = self._job(job_id)
        job.spec = job.spec.model_copy(update={"life_span_s": life_span_s})
        if job.state.phase != WorkloadPhase.RUNNING:
            return  # pending: the timer starts when it runs; ended: nothing to do
        if job.life_span is not None:
            job.life_span.cancel()
            job.life_span = None
        if life_span_s is not None and job.state.started_at is not None:
            left = life_span_s - (utcnow() - job.state.started_at).total_seconds()
            job.life_span = asyncio.get_running_loop().call_later(
                max(0.0, left), self._stop_now, job_id, JobReason.LIFE_SPAN_ENDED
            )

    async def states(self, job_ids: Sequence[str]) -> list[WorkloadState]:
        return [
            job.state
            if (job := self._jobs.get(job_id))
            else WorkloadState(job_id=job_id, phase=WorkloadPhase.MISSING)
            for job_id in job_ids
        ]

    async def active_workloads(self) -> list[WorkloadState]:
        return [job.state for job in self._jobs.values() if job.state.phase != WorkloadPhase.EXITED]

    def watch(self, *, after: str | None = None) -> AbstractAsyncContextManager[WorkloadWatch]:
        return self._feed.watch(after=after)

    async def logs(
        self,
        job_id: str,
        *,
        since: datetime | None = None,
        offset: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogBatch]:
        check_log_start(since, offset, tail)
        job = self._job(job_id)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        position = 0  # lines and bytes of the whole output read so far, dropped ones included
        done_bytes = 0
        if since is not None and job.lines and job.lines[0].time < since:
            position = job.dropped_lines  # the dropped lines were all before ``since``
            done_bytes = job.dropped_bytes
        if tail is not None:
            position = job.dropped_lines + max(len(job.lines) - tail, 0)
            done_bytes = job.dropped_bytes + sum(
                len(line.text.encode()) + 1 for line in job.lines[: position - job.dropped_lines]
            )
        elif offset is not None:
            done_bytes = min(offset, job.dropped_bytes)
            position = job.dropped_lines if offset >= job.dropped_bytes else 0
            for line in job.lines:
                size = len(line.text.encode()) + 1
                if done_bytes + size > offset:
                    break
                position += 1
                done_bytes += size
        while True:
            changed = job.changed
            ended = job.state.phase == WorkloadPhase.EXITED
            if self._jobs.get(job_id) is not job:
                yield LogBatch.of([_system(utcnow(), logfile.REMOVED_LINE)], end=done_bytes)
                return
            batch: list[LogLine] = []
            size = 0
            if position < job.dropped_lines:
                skipped = job.dropped_bytes - done_bytes
                batch.append(_system(job.lines[0].time, logfile.dropped_line(skipped)))
                size += len(batch[0].text)
                position, done_bytes = job.dropped_lines, job.dropped_bytes
            for line in job.lines[position - job.dropped_lines :]:
                text = len(line.text.encode())
                if len(batch) >= BATCH_LINES or (batch and size + text > BATCH_BYTES):
                    break
                position += 1
                done_bytes += text + 1
                if since is None or line.time >= since:
                    batch.append(line)
                    size += text
            if batch:
                yield LogBatch.of(batch, end=done_bytes)
                continue  # batches are bounded: there may be more already
            if not follow or ended or not self._open:
                return
            await changed.wait()

    async def log_size(self, job_id: str) -> int:
        return len(self._bytes(self._job(job_id)))

    async def read_log(
        self, job_id: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        if offset < 0 or (length is not None and length < 0):
            raise BadInput("offset and length must not be negative")
        output = self._bytes(self._job(job_id))
        end = len(output) if length is None else min(len(output), offset + length)
        for position in range(offset, end, READ_CHUNK):
            yield bytes(output[position : min(end, position + READ_CHUNK)])

    @staticmethod
    def _bytes(job: _Job) -> bytes:
        """The output as ``read_log`` gives it: the marker line if some was dropped, then
        the lines kept."""
        head = logfile.dropped_line(job.dropped_bytes) + b"\n" if job.dropped_bytes else b""
        return head + bytes(job.output)

    async def forget(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        if job.state.phase != WorkloadPhase.EXITED:
            raise Conflict(f"workload {job_id} has not ended")
        del self._jobs[job_id]
        job.wake()

    # --- test hooks -----------------------------------------------------------------------------

    @property
    def specs(self) -> dict[str, WorkloadSpec]:
        """What each workload was started with, the GPU variables the runtime adds included."""
        return {job_id: job.spec for job_id, job in self._jobs.items()}

    def run(self, job_id: str) -> WorkloadState:
        """PENDING → RUNNING."""
        job = self._job(job_id)
        if job.state.phase != WorkloadPhase.PENDING:
            raise RuntimeError(f"{job_id} is {job.state.phase}, not pending")
        life_span_s = job.spec.life_span_s
        if life_span_s is not None:
            job.life_span = asyncio.get_running_loop().call_later(
                life_span_s, self._stop_now, job_id, JobReason.LIFE_SPAN_ENDED
            )
        return self._set(
            job,
            job.state.model_copy(update={"phase": WorkloadPhase.RUNNING, "started_at": utcnow()}),
        )

    def emit_log(
        self,
        job_id: str,
        text: str,
        *,
        stream: LogStream = LogStream.STDOUT,
        time: datetime | None = None,
    ) -> None:
        """Append ``text`` (one line per ``\\n``-separated part, each cut into pieces of at most
        ``logfile.MAX_LINE`` bytes as the local runtime cuts them) to the workload's output."""
        job = self._job(job_id)
        if job.state.phase == WorkloadPhase.EXITED:
            raise RuntimeError(f"{job_id} has ended")
        at = time or utcnow()
        pieces, _ = logfile.split_lines(text.encode() + b"\n", final=True)
        for piece in pieces:
            line = piece.decode(errors="replace")
            job.lines.append(LogLine(time=at, stream=stream, text=line))
            job.output += line.encode() + b"\n"
        while len(job.output) > self._log_limit_bytes and len(job.lines) > 1:
            dropped = len(job.lines[0].text.encode()) + 1
            del job.lines[0]
            del job.output[:dropped]
            job.dropped_lines += 1
            job.dropped_bytes += dropped
        job.wake()

    def finish(
        self,
        job_id: str,
        exit_code: int | None = 0,
        *,
        reason: JobReason | None = None,
        description: str | None = None,
    ) -> WorkloadState:
        """End the workload; the reason defaults to Completed for 0, Error otherwise.

        A pending workload passes through RUNNING first, unless it failed to start.
        """
        job = self._job(job_id)
        if job.state.phase == WorkloadPhase.EXITED:
            raise RuntimeError(f"{job_id} has already ended")
        if reason is None:
            reason = JobReason.COMPLETED if exit_code == 0 else JobReason.ERROR
        if job.state.phase == WorkloadPhase.PENDING and reason != JobReason.START_FAILED:
            self.run(job_id)
        return self._end(job, exit_code, reason, description)

    def lose(self, job_id: str, description: str = "supervisor gone") -> WorkloadState:
        return self.finish(job_id, None, reason=JobReason.LOST, description=description)

    # --- internals ------------------------------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"workload {job_id} not found")
        return job

    def _end(
        self, job: _Job, exit_code: int | None, reason: JobReason, description: str | None
    ) -> WorkloadState:
        if job.life_span is not None:
            job.life_span.cancel()
        self._holdings.pop(job.spec.job_id, None)
        self._telemetry.end(job.spec.job_id)
        update: dict[str, Any] = {
            "phase": WorkloadPhase.EXITED,
            "exit_code": exit_code,
            "reason": reason,
            "description": description,
            "finished_at": utcnow(),
        }
        return self._set(job, job.state.model_copy(update=update))

    def _set(self, job: _Job, state: WorkloadState) -> WorkloadState:
        job.state = state
        job.wake()
        self._feed.publish(state)
        return state

    def _run_if_pending(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.state.phase == WorkloadPhase.PENDING:
            self.run(job_id)

    def _stop_now(self, job_id: str, reason: JobReason) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.state.phase == WorkloadPhase.EXITED:
            return
        if job.state.phase == WorkloadPhase.PENDING:  # as a supervisor that got SIGTERM first
            self._end(job, None, reason, "stopped before it started")
        elif reason == JobReason.LIFE_SPAN_ENDED:
            description = f"life span of {job.spec.life_span_s} s ended"
            self.finish(job_id, SIGTERM_EXIT_CODE, reason=reason, description=description)
        else:
            self.finish(job_id, SIGTERM_EXIT_CODE, reason=reason, description="stopped on request")

    # --- exec and port-forward: an echo for exec; ports are real addresses a test sets ------------

    async def exec(
        self,
        job_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        rows: int | None = None,
        cols: int | None = None,
    ) -> ExecSession:
        self._running(job_id)
        return FakeExec(tty=tty, rows=rows, cols=cols)

    async def connect(
        self, job_id: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """``ports[(job_id, port)]``: the (host, port) a test serves the job's port on."""
        self._running(job_id)
        address = self.ports.get((job_id, port))
        if address is None:
            raise Unavailable(f"nothing answers on port {port} of job {job_id}")
        return await asyncio.open_connection(*address)

    async def write_stdin(self, job_id: str, data: bytes) -> None:
        """What a ``tty`` workload was given lands in ``stdin[job_id]``."""
        self._running(job_id)
        if not self._job(job_id).spec.tty:
            raise Conflict(f"job {job_id} has no terminal")
        self.stdin[job_id] = self.stdin.get(job_id, b"") + data

    async def resize_terminal(self, job_id: str, rows: int, cols: int) -> None:
        """A ``tty`` workload's sizes land in ``terminal_sizes[job_id]``, in order."""
        self._running(job_id)
        if not self._job(job_id).spec.tty:
            raise Conflict(f"job {job_id} has no terminal")
        if not (0 < rows <= 10_000 and 0 < cols <= 10_000):
            raise BadInput("rows and cols are 1 to 10000")
        self.terminal_sizes.setdefault(job_id, []).append((rows, cols))

    def _running(self, job_id: str) -> None:
        if self._job(job_id).state.phase != WorkloadPhase.RUNNING:
            raise Conflict(f"job {job_id} is not running")

    # --- telemetry ------------------------------------------------------------------------------

    async def telemetry(self, job_id: str | None = None) -> AsyncGenerator[TelemetryTick, None]:
        running = job_id is None or self._job(job_id).state.phase != WorkloadPhase.EXITED
        subscription = self._telemetry.subscribe(job_id)
        if not self._open or not running:
            subscription.end()
        async with contextlib.aclosing(subscription.ticks()) as ticks:
            async for tick in ticks:
                yield tick

    def emit_telemetry(
        self,
        job_id: str,
        cpu_percent: float,
        memory_bytes: int,
        *,
        gpus: tuple[GpuSample, ...] = (),
        time: datetime | None = None,
    ) -> TelemetrySample:
        """A sample of a running workload, handed to its telemetry's subscribers (a test
        hook: the local runtime samples by itself)."""
        job = self._job(job_id)
        if job.state.phase != WorkloadPhase.RUNNING:
            raise RuntimeError(f"{job_id} is {job.state.phase}, not running")
        sample = TelemetrySample(
            job_id=job_id,
            time=time or utcnow(),
            cpu_percent=cpu_percent,
            memory_bytes=memory_bytes,
            gpus=gpus,
        )
        self._telemetry.publish((sample,))
        return sample


class FakeExec:
    """An `ExecSession` whose command echoes its stdin to stdout (and, with a terminal, says
    its size on each resize) and exits 0 when its stdin ends."""

    def __init__(self, *, tty: bool, rows: int | None, cols: int | None) -> None:
        self.tty = tty
        self.size = (rows, cols)
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(16)
        self.closed = False

    async def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        while (chunk := await self._queue.get()) is not None:
            yield ExecStream.STDOUT, chunk

    async def write(self, data: bytes) -> None:
        await self._queue.put(data)

    async def close_stdin(self) -> None:
        await self._queue.put(None)

    async def resize(self, rows: int, cols: int) -> None:
        self.size = (rows, cols)
        if self.tty:
            await self._queue.put(f"{rows} {cols}\r\n".encode())

    async def wait(self) -> int:
        return 0

    async def close(self) -> None:
        self.closed = True


def _system(at: datetime, text: bytes) -> LogLine:
    return LogLine(time=at, stream=LogStream.SYSTEM, text=text.decode())
