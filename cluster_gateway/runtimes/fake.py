"""An in-memory runtime for unit tests of the control plane.

Nothing runs: the test drives every transition, with the same observable behaviour as
``LocalRuntime`` (PENDING from ``start``, changes through ``watch``, ``logs`` following until
the workload ends)::

    runtime = FakeRuntime()
    await runtime.open()
    await runtime.start(spec)          # PENDING; RUNNING follows on the next loop turn
    runtime.emit_log("job-1", "hello")
    runtime.finish("job-1", 3)         # EXITED, reason Error
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cluster_gateway.gateway import (
    ClusterCapacity,
    ExitReason,
    LogLine,
    LogStream,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
)
from cluster_gateway.runtimes.base import Runtime, StateFeed, check_job_id
from glia.clock import utcnow
from glia.errors import Conflict, NotFound

SIGTERM_EXIT_CODE = 143  # 128 + SIGTERM: what a process that honours SIGTERM exits with


@dataclass
class _Job:
    spec: WorkloadSpec
    state: WorkloadState
    lines: list[LogLine] = field(default_factory=list)
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
    """

    def __init__(
        self,
        *,
        capacity: ClusterCapacity | None = None,
        auto_run: bool = True,
        honour_stop: bool = True,
    ) -> None:
        self._capacity = capacity or ClusterCapacity(cpu=8.0, memory_mb=16384)
        self.auto_run = auto_run
        self.honour_stop = honour_stop
        self.stop_requests: list[tuple[str, float]] = []
        self._jobs: dict[str, _Job] = {}
        self._feed = StateFeed()
        self._open = False

    # --- Runtime ------------------------------------------------------------------------------

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False
        self._feed.close()

    async def capacity(self) -> ClusterCapacity:
        return self._capacity

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        if not self._open:
            raise RuntimeError("runtime is not open")
        check_job_id(spec.job_id)
        if spec.job_id in self._jobs:
            return self._jobs[spec.job_id].state
        job = _Job(spec, WorkloadState(spec.job_id, WorkloadPhase.PENDING))
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
        asyncio.get_running_loop().call_soon(self._stop_now, job_id)

    async def state(self, job_id: str) -> WorkloadState:
        job = self._jobs.get(job_id)
        return job.state if job else WorkloadState(job_id, WorkloadPhase.MISSING)

    async def list_workloads(self) -> list[WorkloadState]:
        return [job.state for job in self._jobs.values()]

    def watch(self) -> AsyncIterator[WorkloadState]:
        return self._feed.subscribe()

    async def logs(
        self, job_id: str, *, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[list[LogLine]]:
        job = self._job(job_id)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        position = 0
        while True:
            changed = job.changed
            ended = job.state.phase == WorkloadPhase.EXITED
            batch = job.lines[position:]
            position += len(batch)
            if since is not None:
                batch = [line for line in batch if line.time >= since]
            if batch:
                yield batch
            if not follow or ended or self._jobs.get(job_id) is not job:
                return
            await changed.wait()

    async def forget(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        if job.state.phase != WorkloadPhase.EXITED:
            raise Conflict(f"workload {job_id} has not ended")
        del self._jobs[job_id]
        job.wake()

    # --- test hooks ---------------------------------------------------------------------------

    @property
    def specs(self) -> dict[str, WorkloadSpec]:
        return {job_id: job.spec for job_id, job in self._jobs.items()}

    def run(self, job_id: str) -> WorkloadState:
        """PENDING → RUNNING."""
        job = self._job(job_id)
        if job.state.phase != WorkloadPhase.PENDING:
            raise RuntimeError(f"{job_id} is {job.state.phase}, not pending")
        return self._set(job, replace(job.state, phase=WorkloadPhase.RUNNING, started_at=utcnow()))

    def emit_log(
        self,
        job_id: str,
        text: str,
        *,
        stream: LogStream = LogStream.STDOUT,
        time: datetime | None = None,
    ) -> None:
        """Append ``text`` (one line per ``\\n``-separated part) to the workload's output."""
        job = self._job(job_id)
        if job.state.phase == WorkloadPhase.EXITED:
            raise RuntimeError(f"{job_id} has ended")
        at = time or utcnow()
        job.lines.extend(LogLine(at, stream, line) for line in text.split("\n"))
        job.wake()

    def finish(
        self,
        job_id: str,
        exit_code: int | None = 0,
        *,
        reason: ExitReason | None = None,
        description: str | None = None,
    ) -> WorkloadState:
        """End the workload; the reason defaults to Completed for 0, Error otherwise.

        A pending workload passes through RUNNING first, unless it failed to start.
        """
        job = self._job(job_id)
        if job.state.phase == WorkloadPhase.EXITED:
            raise RuntimeError(f"{job_id} has already ended")
        if reason is None:
            reason = ExitReason.COMPLETED if exit_code == 0 else ExitReason.ERROR
        if job.state.phase == WorkloadPhase.PENDING and reason != ExitReason.START_FAILED:
            self.run(job_id)
        return self._set(
            job,
            replace(
                job.state,
                phase=WorkloadPhase.EXITED,
                exit_code=exit_code,
                reason=reason,
                description=description,
                finished_at=utcnow(),
            ),
        )

    def lose(self, job_id: str, description: str = "supervisor gone") -> WorkloadState:
        return self.finish(job_id, None, reason=ExitReason.LOST, description=description)

    # --- internals ----------------------------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"workload {job_id} not found")
        return job

    def _set(self, job: _Job, state: WorkloadState) -> WorkloadState:
        job.state = state
        job.wake()
        self._feed.publish(state)
        return state

    def _run_if_pending(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.state.phase == WorkloadPhase.PENDING:
            self.run(job_id)

    def _stop_now(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.state.phase == WorkloadPhase.EXITED:
            return
        if job.state.phase == WorkloadPhase.PENDING:
            self.finish(
                job_id,
                None,
                reason=ExitReason.USER_REQUESTED,
                description="stopped before it started",
            )
        else:
            self.finish(
                job_id,
                SIGTERM_EXIT_CODE,
                reason=ExitReason.USER_REQUESTED,
                description="stopped on request",
            )
