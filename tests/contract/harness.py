"""Drives each runtime through the same scripted programs, so one suite holds both to the contract.

A `Program` is what a workload does: print lines, pause, then exit with a code or run until it
is stopped (honouring SIGTERM). `LocalHarness` turns it into a real ``sh`` script;
`FakeHarness` registers it per job and plays it with the fake's hooks (``emit_log``,
``finish``) once the fake reports the job RUNNING. Tests assert through the Runtime API only.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import shlex
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from cluster_gateway.gateway import (
    ClusterCapacity,
    JobIsolation,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
)
from cluster_gateway.runtimes.base import Runtime
from cluster_gateway.runtimes.fake import FakeRuntime
from cluster_gateway.runtimes.gpus import parse_inventory
from cluster_gateway.runtimes.local import LocalRuntime
from cluster_gateway.watch import DEFAULT_HISTORY
from glia.clusters import Resources
from glia.errors import NotFound
from glia.monitoring import LogStream
from tests.polling import eventually

PATH = os.environ.get("PATH", "/usr/bin:/bin")
# Every runtime under contract has this inventory of GPUs (configured: no host GPU needed).
GPUS = 2
GPU_MODEL = "TestGPU"
ROOT = os.geteuid() == 0
# The unprivileged uid and gid the local harness's jobs run as when the tests run as root, as
# the control plane gives them: no user of this host has them.
JOB_UID = 3_100_000
# A pause between lines of different streams: the local runtime orders lines as it reads them
# from two pipes, so lines written within the same moment may arrive either way.
STREAM_SWITCH_S = 0.05


@dataclass(frozen=True)
class Out:
    """Print ``text`` as a line, ``times`` times."""

    text: str
    stream: LogStream = LogStream.STDOUT
    times: int = 1


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Program:
    steps: tuple[Out | Pause, ...] = ()
    exit_code: int | None = 0  # None: run until stopped (SIGTERM ends it: 143)

    def output(self) -> bytes:
        """What the program prints, as ``read_log`` gives it."""
        return b"".join(
            (step.text.encode() + b"\n") * step.times
            for step in self.steps
            if isinstance(step, Out)
        )


def prints(*lines: str, exit_code: int | None = 0) -> Program:
    return Program(tuple(Out(line) for line in lines), exit_code)


FOREVER = Program(exit_code=None)


class Harness(abc.ABC):
    runtime: Runtime
    name: str
    # Whether a new runtime on the same state finds the workloads of a closed one.
    survives_restart: bool
    # What the runtime's isolation() answers where the tests run.
    isolation: JobIsolation

    @abc.abstractmethod
    def spec(
        self, job_id: str, program: Program, *, life_span_s: float | None = None, gpu: int = 0
    ) -> WorkloadSpec: ...

    @abc.abstractmethod
    def new_runtime(
        self, *, watch_history: int = DEFAULT_HISTORY, log_limit_bytes: int | None = None
    ) -> Runtime:
        """Another runtime on the same state, not opened (``log_limit_bytes``: its cap on a
        job's output, else its default)."""

    async def setup(self) -> None:
        await self.runtime.open()

    async def teardown(self) -> None:
        """Stop what still runs and close, leaving no process behind."""
        await self.runtime.close()

    async def reopen(
        self, *, watch_history: int = DEFAULT_HISTORY, log_limit_bytes: int | None = None
    ) -> Runtime:
        """Close the runtime and open a new one on the same state; it replaces the old one."""
        await self.runtime.close()
        self.runtime = self.new_runtime(
            watch_history=watch_history, log_limit_bytes=log_limit_bytes
        )
        await self.setup()
        return self.runtime


class LocalHarness(Harness):
    name = "local"
    survives_restart = True
    # As root with bubblewrap (as CI runs): each job under its uid, in a sandbox.
    isolation = JobIsolation(own_uid=ROOT, sandbox=shutil.which("bwrap") is not None)

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.runtime = self.new_runtime()
        self._opened: list[Runtime] = []

    def new_runtime(
        self, *, watch_history: int = DEFAULT_HISTORY, log_limit_bytes: int | None = None
    ) -> LocalRuntime:
        limit = {} if log_limit_bytes is None else {"log_limit_bytes": log_limit_bytes}
        return LocalRuntime(
            self.state_dir,
            default_grace_s=1.0,
            poll_interval_s=0.2,
            watch_history=watch_history,
            gpu_inventory=parse_inventory(f"{GPUS}x{GPU_MODEL}"),
            **limit,
        )

    def spec(
        self, job_id: str, program: Program, *, life_span_s: float | None = None, gpu: int = 0
    ) -> WorkloadSpec:
        return WorkloadSpec(
            job_id=job_id,
            command=("sh", "-c", self.script(program)),
            resources=Resources(cpu=1, memory_mb=256, gpu=gpu),
            env={"PATH": PATH},
            life_span_s=life_span_s,
            uid=JOB_UID if ROOT else None,
            gid=JOB_UID if ROOT else None,
        )

    @staticmethod
    def script(program: Program) -> str:
        lines: list[str] = []
        last_stream: LogStream | None = None
        for step in program.steps:
            if isinstance(step, Pause):
                lines.append(f"sleep {step.seconds}")
                continue
            if last_stream is not None and step.stream != last_stream:
                lines.append(f"sleep {STREAM_SWITCH_S}")
            last_stream = step.stream
            redirect = " >&2" if step.stream == LogStream.STDERR else ""
            printf = f"printf '%s\\n' {shlex.quote(step.text)}{redirect}"
            if step.times == 1:
                lines.append(printf)
            else:
                lines.append(f"i=0; while [ $i -lt {step.times} ]; do {printf}; i=$((i+1)); done")
        # ``exec sleep``: SIGTERM to the job's group ends it with 143, as the fake has it.
        lines.append(
            "exec sleep 3600" if program.exit_code is None else f"exit {program.exit_code}"
        )
        return "\n".join(lines)

    async def teardown(self) -> None:
        runtime = self.runtime
        for state in await runtime.active_workloads():
            with contextlib.suppress(Exception):
                await runtime.stop(state.job_id, grace_s=0)

        async def all_ended() -> bool:
            return not await runtime.active_workloads()

        try:
            await eventually(all_ended, within=10)
        finally:
            await runtime.close()


@dataclass
class _Player:
    programs: dict[str, Program] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class FakeHarness(Harness):
    name = "fake"
    survives_restart = False
    isolation = JobIsolation(own_uid=True, sandbox=True)  # its default

    def __init__(self) -> None:
        self.runtime = self.new_runtime()
        self._player = _Player()
        self._watcher: asyncio.Task[None] | None = None

    def new_runtime(
        self, *, watch_history: int = DEFAULT_HISTORY, log_limit_bytes: int | None = None
    ) -> FakeRuntime:
        limit = {} if log_limit_bytes is None else {"log_limit_bytes": log_limit_bytes}
        capacity = ClusterCapacity(cpu=8, memory_mb=16384, gpu=GPUS, gpu_model=GPU_MODEL)
        return FakeRuntime(watch_history=watch_history, capacity=capacity, **limit)

    def spec(
        self, job_id: str, program: Program, *, life_span_s: float | None = None, gpu: int = 0
    ) -> WorkloadSpec:
        self._player.programs[job_id] = program
        return WorkloadSpec(
            job_id=job_id,
            command=("program", job_id),
            resources=Resources(cpu=1, memory_mb=256, gpu=gpu),
            life_span_s=life_span_s,
        )

    async def setup(self) -> None:
        await super().setup()
        entered = asyncio.Event()
        self._watcher = asyncio.create_task(self._watch(self.runtime, entered))
        await entered.wait()

    async def teardown(self) -> None:
        await super().teardown()
        tasks = [*self._player.tasks, *([self._watcher] if self._watcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self, runtime: Runtime, entered: asyncio.Event) -> None:
        """Play each registered program once the fake reports its job RUNNING."""
        async with runtime.watch() as watch:
            entered.set()
            async for event in watch:
                state = event.state
                program = self._player.programs.get(state.job_id)
                if program is not None and state.phase == WorkloadPhase.RUNNING:
                    task = asyncio.create_task(self._play(state, program))
                    self._player.tasks.add(task)
                    task.add_done_callback(self._player.tasks.discard)

    async def _play(self, state: WorkloadState, program: Program) -> None:
        runtime = self.runtime
        if not isinstance(runtime, FakeRuntime):
            raise TypeError(runtime)
        try:
            for step in program.steps:
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                else:
                    runtime.emit_log(
                        state.job_id, "\n".join([step.text] * step.times), stream=step.stream
                    )
            if program.exit_code is not None:
                runtime.finish(state.job_id, program.exit_code)
        except (RuntimeError, NotFound):
            pass  # stopped, or ended by its life span, while it played: as a killed process


@contextlib.asynccontextmanager
async def harness_for(kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness: Harness = LocalHarness(tmp_path / "state") if kind == "local" else FakeHarness()
    await harness.setup()
    try:
        yield harness
    finally:
        await harness.teardown()
