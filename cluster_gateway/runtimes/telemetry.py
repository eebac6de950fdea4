"""Sampling what running jobs use, and handing the samples to whoever follows them.

- `JobSampler` measures one job's whole process tree: CPU from its cgroup's usage counter
  (v2 ``cpu.stat`` ``usage_usec``, v1 ``cpuacct.usage`` where the cpu and cpuacct controllers
  share a hierarchy) and memory from its cgroup (``memory.current``, v1
  ``memory.usage_in_bytes``); where the job has no cgroup, or a file cannot be read, from
  psutil over the processes under the job's first process (CPU time deltas, resident memory).
  Blocking (``/proc``, ``/sys``): runtimes call it in a worker thread.
- `GpuSource` samples a job's assigned GPUs: `NvmlGpus` through NVML (``nvidia-ml-py``,
  imported on first use) degrades to no GPU samples on a host without the library, the
  driver or GPUs; `StandInGpus` is the stand-in for tests and hosts NVML does not see.
- `TelemetryHub` hands each tick's samples to its subscribers, each with a bounded queue:
  telemetry is lossy by design, a subscriber that falls behind loses its oldest ticks (at most
  ``QUEUE_TICKS`` wait), and slows nobody.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import psutil  # type: ignore[import-untyped]

from cluster_gateway.runtimes.cgroups import JobCgroup
from glia.telemetry import GpuSample, TelemetrySample, TelemetryTick

logger = logging.getLogger(__name__)

# The shortest time between two samples of a job: a runtime samples no more often.
MIN_INTERVAL_S = 1.0
# Ticks a subscriber may have waiting; past it the oldest is dropped.
QUEUE_TICKS = 8

Tick = TelemetryTick


# --- one job's process tree --------------------------------------------------------------------


def _read_int(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_keyed(path: str, key: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except (OSError, ValueError):
        return None
    return None


def cgroup_cpu_usec(cgroup: JobCgroup) -> int | None:
    """The CPU time the cgroup's processes used so far (µs); None where it is not counted."""
    if cgroup.version == 2:
        stat = os.path.join(cgroup.cpu_dir or cgroup.memory_dir, "cpu.stat")
        return _read_keyed(stat, "usage_usec")
    if cgroup.cpu_dir is None:
        return None
    ns = _read_int(os.path.join(cgroup.cpu_dir, "cpuacct.usage"))
    return None if ns is None else ns // 1000


def cgroup_memory_bytes(cgroup: JobCgroup) -> int | None:
    name = "memory.current" if cgroup.version == 2 else "memory.usage_in_bytes"
    return _read_int(os.path.join(cgroup.memory_dir, name))


class JobSampler:
    """Measures one job between calls (see the module docstring). ``root_pid``: the job's
    first process (the sandbox's, in one); ``cgroup``: the job's, if it has one."""

    def __init__(self, root_pid: int | None, cgroup: JobCgroup | None) -> None:
        self._cgroup = cgroup
        self._root_pid = root_pid
        self._root: psutil.Process | None = None
        if root_pid is not None:
            with contextlib.suppress(psutil.Error):
                self._root = psutil.Process(root_pid)
        self._last_at: float | None = None
        self._last_cgroup_usec: int | None = None
        # CPU seconds each process (pid, create time) had used at the previous sample.
        self._cpu: dict[tuple[int, float], float] = {}

    def sample(self, children: Callable[[], Mapping[int, list[int]]]) -> tuple[float, int] | None:
        """CPU percent since the previous call (the first call: since the job started) and
        memory bytes; None when the job has no process left to measure. ``children`` gives
        the host's processes by parent pid, read once per tick for all the jobs that need
        their process tree (those whose cgroup does not count both)."""
        now = time.monotonic()
        root = self._root
        if self._root_pid is not None and not self._running(root):
            return None  # its first process ended: the job did (or started again, anew)
        cgroup_usec = cgroup_cpu_usec(self._cgroup) if self._cgroup else None
        cgroup_memory = cgroup_memory_bytes(self._cgroup) if self._cgroup else None
        procs: list[psutil.Process] = []
        if cgroup_usec is None or cgroup_memory is None:
            procs = self._processes(children())
            if not procs and cgroup_memory is None:
                return None
        cpu_s, memory = self._tree_usage(procs)
        elapsed = None if self._last_at is None else now - self._last_at
        if cgroup_usec is not None and self._last_cgroup_usec is not None and elapsed:
            cpu_percent = (cgroup_usec - self._last_cgroup_usec) / 1e4 / elapsed
        elif elapsed:
            cpu_percent = cpu_s / elapsed * 100
        else:  # the first sample: what it used since it started (its cgroup is its own)
            age = self._age()
            used_s = cgroup_usec / 1e6 if cgroup_usec is not None else cpu_s
            cpu_percent = used_s / age * 100 if age else 0.0
        self._last_at = now
        self._last_cgroup_usec = cgroup_usec
        return max(cpu_percent, 0.0), cgroup_memory if cgroup_memory is not None else memory

    def _age(self) -> float | None:
        if self._root is None:
            return None
        with contextlib.suppress(psutil.Error):
            return max(time.time() - self._root.create_time(), 1e-3)
        return None

    @staticmethod
    def _running(root: psutil.Process | None) -> bool:
        try:
            return root is not None and root.is_running()
        except psutil.Error:
            return False

    def _processes(self, children: Mapping[int, list[int]]) -> list[psutil.Process]:
        """The job's first process and every process under it, by ``children``."""
        root = self._root
        if root is None:
            return []
        found = [root]
        pending = list(children.get(root.pid, ()))
        while pending:
            pid = pending.pop()
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(pid))
            pending.extend(children.get(pid, ()))
        return found

    def _tree_usage(self, procs: Sequence[psutil.Process]) -> tuple[float, int]:
        """CPU seconds used since the previous call (a process new since then counts all of
        its time) and resident bytes, over ``procs``."""
        seen: dict[tuple[int, float], float] = {}
        used = 0.0
        memory = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
                    rss = proc.memory_info().rss
            except psutil.Error:
                continue  # it ended meanwhile
            total = times.user + times.system
            seen[key] = total
            used += total - self._cpu.get(key, 0.0)
            memory += rss
        self._cpu = seen
        return max(used, 0.0), memory


def process_children() -> dict[int, list[int]]:
    """The host's processes by parent pid, from one pass over the process table."""
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info["ppid"]
        if ppid is not None:
            children.setdefault(ppid, []).append(proc.pid)
    return children


# --- GPUs ----------------------------------------------------------------------------------------


class GpuSource(Protocol):
    """Samples GPUs by their host indices; a GPU it cannot see is left out."""

    def sample(self, devices: Sequence[str]) -> tuple[GpuSample, ...]: ...

    def close(self) -> None: ...


class NvmlGpus:
    """GPUs through NVML. NVML is initialized on the first sample asked for; where that
    fails (no library, no driver, no GPU) this source says nothing from then on."""

    def __init__(self) -> None:
        self._nvml: object | None = None
        self._failed = False
        self._lock = threading.Lock()

    def sample(self, devices: Sequence[str]) -> tuple[GpuSample, ...]:
        if not devices:
            return ()
        nvml = self._init()
        if nvml is None:
            return ()
        found = []
        for device in devices:
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(int(device))  # type: ignore[attr-defined]
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)  # type: ignore[attr-defined]
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)  # type: ignore[attr-defined]
            except Exception as exc:  # NVMLError_*: that GPU is left out
                logger.debug("NVML cannot sample GPU %s: %s", device, exc)
                continue
            found.append(
                GpuSample(
                    device=device,
                    utilization_percent=float(rates.gpu),
                    memory_bytes=int(memory.used),
                )
            )
        return tuple(found)

    def _init(self) -> object | None:
        with self._lock:
            if self._nvml is not None or self._failed:
                return self._nvml
            try:
                import pynvml  # type: ignore[import-untyped]

                pynvml.nvmlInit()
            except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, …
                logger.debug("no GPU telemetry: %s", exc)
                self._failed = True
                return None
            self._nvml = pynvml
            return pynvml

    def close(self) -> None:
        with self._lock:
            nvml, self._nvml = self._nvml, None
        if nvml is not None:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()  # type: ignore[attr-defined]


class StandInGpus:
    """A stand-in for NVML: the GPUs in ``readings`` (device → (utilization %, memory
    bytes)), for tests and for GPUs that ``GLIA_LOCAL_GPUS`` stands in for."""

    def __init__(self, readings: Mapping[str, tuple[float, int]] | None = None) -> None:
        self.readings: dict[str, tuple[float, int]] = dict(readings or {})

    def sample(self, devices: Sequence[str]) -> tuple[GpuSample, ...]:
        return tuple(
            GpuSample(device=d, utilization_percent=u, memory_bytes=m)
            for d in devices
            if d in self.readings
            for u, m in (self.readings[d],)
        )

    def close(self) -> None:
        pass


# --- a runtime's samplers -------------------------------------------------------------------------


@dataclass
class Watched:
    """A running job as the sampler needs it: its first process, cgroup and GPUs."""

    job_id: str
    root_pid: int | None
    cgroup: JobCgroup | None
    gpus: tuple[str, ...] = ()


@dataclass
class Sampler:
    """The samplers of a runtime's running jobs, kept between ticks (CPU needs the previous
    reading); a job no longer listed is forgotten."""

    gpus: GpuSource
    _jobs: dict[str, tuple[Watched, JobSampler]] = field(default_factory=dict)

    def sample(self, jobs: Sequence[Watched], at: datetime) -> Tick:
        """One sample per job that still has something to measure. Blocking.

        The host's process table is read at most once per tick, and only when a job needs
        its process tree: reading it per job (what ``Process.children`` does) costs a scan
        of ``/proc`` per running job every second."""
        keep: dict[str, tuple[Watched, JobSampler]] = {}
        samples = []
        table: dict[int, list[int]] | None = None

        def children() -> Mapping[int, list[int]]:
            nonlocal table
            if table is None:
                table = process_children()
            return table

        for job in jobs:
            known = self._jobs.get(job.job_id)
            if known is None or known[0] != job:
                known = (job, JobSampler(job.root_pid, job.cgroup))
            keep[job.job_id] = known
            try:
                measured = known[1].sample(children)
                gpus = self.gpus.sample(job.gpus)
            except Exception:
                logger.exception("cannot sample job %s", job.job_id)
                continue
            if measured is None:
                continue
            cpu, memory = measured
            samples.append(
                TelemetrySample(
                    job_id=job.job_id,
                    time=at,
                    cpu_percent=round(cpu, 2),
                    memory_bytes=memory,
                    gpus=gpus,
                )
            )
        self._jobs = keep
        return tuple(samples)


# --- subscribers ---------------------------------------------------------------------------------


class _Subscriber:
    def __init__(self, job_id: str | None) -> None:
        self.job_id = job_id
        self.ticks: collections.deque[Tick] = collections.deque(maxlen=QUEUE_TICKS)
        self.ended = False
        self.ready = asyncio.Event()

    def give(self, tick: Tick) -> None:
        self.ticks.append(tick)  # the deque drops the oldest past QUEUE_TICKS
        self.ready.set()

    def end(self) -> None:
        self.ended = True
        self.ready.set()


class TelemetryHub:
    """Subscribers to a runtime's samples: of one job, or of all (``job_id`` None)."""

    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()

    @property
    def wanted(self) -> bool:
        """Whether anybody listens: a runtime samples only then."""
        return bool(self._subscribers)

    def wanted_jobs(self) -> set[str] | None:
        """The jobs somebody listens to; None when somebody listens to all."""
        jobs: set[str] = set()
        for subscriber in self._subscribers:
            if subscriber.job_id is None:
                return None
            jobs.add(subscriber.job_id)
        return jobs

    def publish(self, tick: Tick) -> None:
        if not tick:
            return
        by_job: dict[str, Tick] | None = None
        for subscriber in self._subscribers:
            if subscriber.job_id is None:
                subscriber.give(tick)
                continue
            if by_job is None:
                by_job = {sample.job_id: (sample,) for sample in tick}
            mine = by_job.get(subscriber.job_id)
            if mine is not None:
                subscriber.give(mine)

    def end(self, job_id: str) -> None:
        """The job ended: its subscribers end once they have what waits for them."""
        for subscriber in self._subscribers:
            if subscriber.job_id == job_id:
                subscriber.end()

    def close(self) -> None:
        for subscriber in self._subscribers:
            subscriber.end()

    def subscribe(self, job_id: str | None) -> _Subscription:
        subscriber = _Subscriber(job_id)
        self._subscribers.add(subscriber)
        return _Subscription(self, subscriber)

    def _leave(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)


class _Subscription:
    """Subscribed from creation (no tick published after it is missed); iterate it once."""

    def __init__(self, hub: TelemetryHub, subscriber: _Subscriber) -> None:
        self._hub = hub
        self.subscriber = subscriber

    def end(self) -> None:
        self.subscriber.end()

    async def ticks(self) -> AsyncGenerator[Tick, None]:
        subscriber = self.subscriber
        try:
            while True:
                while subscriber.ticks:
                    yield subscriber.ticks.popleft()
                if subscriber.ended:
                    return
                subscriber.ready.clear()
                await subscriber.ready.wait()
        finally:
            self._hub._leave(subscriber)
