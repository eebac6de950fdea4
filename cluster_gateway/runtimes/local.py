"""Workloads as processes on this host, each under its own supervisor.

Every job has a directory ``<state_dir>/jobs/<job_id>/`` (``jobdir.py``); its files are the
truth, so a control plane that restarts, or is killed, finds its jobs again: the supervisors
run in their own sessions and never depend on it. Supervisors are forked by a pre-started
spawner (``spawner.py``, driven by ``spawner_client.py``) and push ``<job_id>
running|log|exited`` datagrams to one unix socket per state directory (``notify.py``), which
wakes ``watch`` and ``logs`` at once; a slow poll catches what a lost datagram or a killed
supervisor would hide.

Isolation (``isolation()``): run as root, the runtime runs each job under the uid and gid its
spec names (one pair per Glia user); each job runs in a bubblewrap sandbox (``sandbox.py``)
that shows it its working dir, its HOME, read-only system dirs and nothing of the runtime's
state, the data dir or the server's HOME; the state dir is 0700 and its files 0600. Where
neither works (not root, no bwrap) jobs still run, as the runtime's user and unconfined
(single-user mode), and ``isolation()`` says so. Without a sandbox but as root, a job under
its own uid runs in its working dir as that uid; its scratch dir is then reachable only
relatively (its parents are the runtime's) and HOME is what the spec's env says.

What the runtime keeps in memory is the workloads that have not ended (``_jobs``): it answers
``active_workloads`` and the states of those jobs, and is where every state change is
published from. Ended workloads live on disk only, for point lookups, until ``forget`` or the
retention period removes them. ``open`` scans the directories once to find the running jobs.

Log followers of one job that have caught up with its output share one reader of what comes
next (`_Tail`): a line printed is read once and handed to each of them, however many there are;
one that falls behind reads on its own again.

No file, ``/proc`` or psutil work runs on the event loop: it goes through ``asyncio.to_thread``,
and the spawner is awaited with the loop's socket API. State changes of a job are published in
order (PENDING, RUNNING, EXITED) whatever order the reads finish in: a state that is not ahead
of the one known is dropped, and a job that ran and ended between two looks is published
RUNNING first. A job whose supervisor the spawner has not answered for yet is never read
(there is no supervisor to judge lost); the supervisor writes ``supervisor.json`` before it
answers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import hashlib
import itertools
import logging
import os
import shutil
import stat
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from cluster_gateway.disks import LocalDisks
from cluster_gateway.exec import ExecSession
from cluster_gateway.gateway import (
    ClusterCapacity,
    JobIsolation,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.runtimes import cgroups, gpus, isolation, jobdir, jobstate, logfile, notify
from cluster_gateway.runtimes import exec as job_exec
from cluster_gateway.runtimes import telemetry as telemetry_
from cluster_gateway.runtimes.base import Runtime, check_job_id
from cluster_gateway.runtimes.sandbox import HOME as SANDBOX_HOME
from cluster_gateway.runtimes.sandbox import Bind, Sandbox
from cluster_gateway.runtimes.spawner_client import Spawners, SpawnFailed
from cluster_gateway.storage import LocalStorage
from cluster_gateway.watch import DEFAULT_HISTORY, WorkloadFeed
from glia.clock import utcnow
from glia.clusters import Resources
from glia.errors import BadInput, Conflict, GliaError, NotFound
from glia.monitoring import LogBatch, LogStream, check_log_start, time_us
from glia.storage import parse_storage_uri
from glia.telemetry import TelemetryTick
from glia.volumes import VolumeKind

logger = logging.getLogger(__name__)

DAY_S = 24 * 3600.0
# A follower re-reads at least this often even when no datagram comes.
FOLLOW_RECHECK_S = 1.0
# ``logs`` batches (lines, and bytes of text) and ``read_log`` chunks.
BATCH_LINES = 1000
BATCH_BYTES = 64 * 1024
# Batches a follower of a job's tail may have waiting before it falls behind (and reads on
# its own): what a slow follower holds in memory is bounded, and it stalls nobody.
FOLLOWER_BATCHES = 16
READ_CHUNK = 64 * 1024
DEFAULT_LOG_LIMIT = 1024**3
_ORDER = {WorkloadPhase.PENDING: 0, WorkloadPhase.RUNNING: 1, WorkloadPhase.EXITED: 2}
_STREAMS = {
    logfile.STDOUT: LogStream.STDOUT,
    logfile.STDERR: LogStream.STDERR,
    logfile.SYSTEM: LogStream.SYSTEM,
}


@dataclass
class _Job:
    """A workload that has not ended."""

    state: WorkloadState
    # The spawner has not answered yet: there is no supervisor to check on.
    starting: bool = True
    # A stop that came while it was starting, delivered once the supervisor is there.
    stop_grace_s: float | None = None
    # Its supervisor's pid: the one sender whose datagrams about this job count.
    supervisor: int | None = None


class _Follower:
    """A follower of a job's tail: the batches it has yet to take (at most
    ``FOLLOWER_BATCHES``), then, if it fell behind, the reader it goes on with alone."""

    def __init__(self, room: asyncio.Event) -> None:
        self.batches: collections.deque[LogBatch] = collections.deque()
        self.behind: logfile.LogReader | None = None
        self.ended = False
        self._ready = asyncio.Event()
        self._room = room  # the tail's: set when a batch is taken

    def give(self, batch: LogBatch) -> None:
        self.batches.append(batch)
        self._ready.set()

    def end(self, behind: logfile.LogReader | None = None) -> None:
        self.behind = behind
        self.ended = True
        self._ready.set()

    async def take(self) -> LogBatch | None:
        """The next batch, joined with those waiting behind it as far as one batch's bounds
        allow; None once the tail has no more for it (see ``behind``).

        Joining is what keeps a busy server from falling further behind: a follower whose
        sender is slower than the job gets fewer, fuller messages (each costs the same to send
        whatever its size), not a growing delay.
        """
        while not self.batches:
            if self.ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        self._room.set()
        first = self.batches.popleft()
        if not self.batches:
            return first
        parts = [first]
        lines, size = _extent(first)
        while self.batches:
            more_lines, more_size = _extent(self.batches[0])
            if lines + more_lines > BATCH_LINES or size + more_size > BATCH_BYTES:
                break
            parts.append(self.batches.popleft())
            lines, size = lines + more_lines, size + more_size
        if len(parts) == 1:
            return first
        return LogBatch(
            times=tuple(itertools.chain.from_iterable(part.times for part in parts)),
            streams=tuple(itertools.chain.from_iterable(part.streams for part in parts)),
            texts=tuple(itertools.chain.from_iterable(part.texts for part in parts)),
            ends=tuple(itertools.chain.from_iterable(part.ends for part in parts)),
        )


class _Tail:
    """One reader of a job's newest output for all the followers that have caught up with it,
    so that a line printed is read once, not once per follower (see `LocalRuntime.logs`)."""

    def __init__(self, reader: logfile.LogReader) -> None:
        self.reader = reader
        # Where the next batch given to the followers starts; a follower joins only there.
        self.position = reader.position
        self.followers: set[_Follower] = set()
        self.woken = asyncio.Event()
        self.room = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def full(self) -> bool:
        return all(len(f.batches) >= FOLLOWER_BATCHES for f in self.followers)

    def deliver(self, batch: LogBatch, before: logfile.LogReader) -> None:
        for follower in list(self.followers):
            if len(follower.batches) < FOLLOWER_BATCHES:
                follower.give(batch)
            else:
                self.followers.discard(follower)
                follower.end(behind=copy.copy(before))

    def close(self, behind: logfile.LogReader | None = None) -> None:
        """End every follower: done, or to read on its own from ``behind``."""
        self.closed = True
        for follower in self.followers:
            follower.end(behind=copy.copy(behind) if behind is not None else None)
        self.followers.clear()


class LocalRuntime(Runtime):
    def __init__(
        self,
        state_dir: Path,
        *,
        cgroup_root: Path | None = Path("/sys/fs/cgroup"),
        use_cgroups: bool = True,
        default_grace_s: float = 10.0,
        poll_interval_s: float = 1.0,
        retention_s: float = 7 * DAY_S,
        retention_check_s: float = 600.0,
        watch_history: int = DEFAULT_HISTORY,
        python: str = sys.executable,
        spawner_reply_s: float = 2.0,
        sandbox: bool | None = None,
        bwrap: str | None = None,
        job_network: bool = True,
        extra_ro_binds: Sequence[str | Path] | None = None,
        own_uid: bool | None = None,
        log_limit_bytes: int = DEFAULT_LOG_LIMIT,
        gpu_inventory: Sequence[gpus.Gpu] | None = None,
        storage: LocalStorage | None = None,
        disks: LocalDisks | None = None,
        telemetry_interval_s: float = 1.0,
        gpu_telemetry: telemetry_.GpuSource | None = None,
    ) -> None:
        """``retention_s``: how long an ended workload's directory is kept (checked every
        ``retention_check_s``). ``python``: the interpreter the spawner (and so every
        supervisor) runs in; ``spawner_reply_s``: how long a start waits for the spawner.

        ``sandbox``: run jobs in a bubblewrap sandbox (``sandbox.py``): None when bwrap works
        here (``bwrap``: its path or name, else found on PATH), True always (``open`` fails
        otherwise), False never. ``job_network``: jobs share the host's network (see
        ``sandbox.py`` on what that means). ``extra_ro_binds``: directories outside /usr that
        jobs' commands need, shown read-only (default: the prefixes of this Python). ``own_uid``:
        run jobs under the uid/gid of their spec: None when the runtime is root, True (root
        only), False never. ``log_limit_bytes``: how much of a job's output is kept; the oldest
        is dropped past it (``logfile.py``). ``gpu_inventory``: the GPUs workloads are given
        (``gpus.parse_inventory``); None to find the host's NVIDIA GPUs at ``open``.
        ``storage``: the cluster's storage, whose directories jobs may be given as working
        directories (``WorkloadSpec.storage_workdir``) or mount; ``disks``: the cluster's
        disks, which jobs mount; None: such a job fails to start.
        ``telemetry_interval_s``: how often running jobs are sampled while someone follows
        their telemetry (at least ``telemetry.MIN_INTERVAL_S``); ``gpu_telemetry``: where GPU
        samples come from (NVML by default, nothing where it is absent)."""
        if telemetry_interval_s < telemetry_.MIN_INTERVAL_S:
            raise ValueError(f"telemetry_interval_s must be at least {telemetry_.MIN_INTERVAL_S}")
        if log_limit_bytes < logfile.MAX_LINE:
            raise ValueError(f"log_limit_bytes must be at least {logfile.MAX_LINE}")
        root = os.geteuid() == 0
        if own_uid and not root:
            raise ValueError("running jobs under uids of their own needs root")
        self._state_dir = state_dir
        self._jobs_dir = state_dir / "jobs"
        # Keeps runtimes on different state apart, in cgroups and task names.
        self._key = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:16]
        self._euid = os.geteuid()
        self._switch_uid = root if own_uid is None else own_uid
        self._want_sandbox = sandbox
        self._bwrap = bwrap
        self._job_network = job_network
        self._extra_ro_binds = extra_ro_binds
        self._log_limit_bytes = log_limit_bytes
        self._storage = storage
        self._disks = disks
        # The disks each job has mounted, unmounted when it ends.
        self._job_disks: dict[str, list[str]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._sandbox: Sandbox | None = None
        self._sandbox_known = False
        self._cgroup_root = cgroup_root if use_cgroups else None
        self._default_grace_s = default_grace_s
        self._poll_interval_s = poll_interval_s
        self._retention_s = retention_s
        self._retention_check_s = retention_check_s
        self._watch_history = watch_history
        self._python = python
        self._spawner_reply_s = spawner_reply_s
        self._layout: cgroups.Layout | None = None
        self._listener: notify.Listener | None = None
        self._spawners: Spawners | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: dict[str, _Job] = {}
        self._gpus: tuple[gpus.Gpu, ...] | None = (
            tuple(gpu_inventory) if gpu_inventory is not None else None
        )
        # What each workload that has not ended holds (its resources, its GPUs): set when it
        # is started, read back from its spec when the runtime finds it again at ``open``.
        self._holdings: dict[str, gpus.Holding] = {}
        self._starting: dict[str, asyncio.Task[WorkloadState]] = {}
        self._dirty: set[str] = set()  # jobs to read again
        self._dirty_event = asyncio.Event()
        self._followers: dict[str, set[asyncio.Event]] = {}
        self._tails: dict[str, _Tail] = {}
        self._feed = WorkloadFeed(history=watch_history)
        self._host: tuple[float, int] | None = None
        self._open = False
        self._telemetry_interval_s = telemetry_interval_s
        self._telemetry = telemetry_.TelemetryHub()
        self._sampler = telemetry_.Sampler(gpu_telemetry or telemetry_.NvmlGpus())
        self._watched: dict[str, telemetry_.Watched] = {}  # the sampler thread's

    # --- seams for operators and tests ----------------------------------------------------------

    @property
    def cgroups_usable(self) -> bool:
        """Whether limits are enforced with cgroups (else with rlimits); known after ``open``."""
        return self._layout is not None

    @property
    def sandboxed(self) -> bool:
        """Whether jobs run in a sandbox; known after ``open``."""
        return self._sandbox is not None

    @property
    def spawner_pid(self) -> int | None:
        """The pid of the supervisor spawner, while one is alive."""
        return self._spawners.pid if self._spawners is not None else None

    def job_dir(self, job_id: str) -> Path:
        """The directory of ``job_id``'s files (see ``jobdir.py``), whether or not it exists."""
        check_job_id(job_id)
        return self._jobs_dir / job_id

    # --- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._open:
            return
        await asyncio.to_thread(self._make_private_dirs)
        if self._cgroup_root is not None:
            self._layout = await asyncio.to_thread(cgroups.detect, str(self._cgroup_root))
        if not self._sandbox_known:
            self._sandbox = await asyncio.to_thread(self._find_sandbox)
            self._sandbox_known = True
        if self._gpus is None:
            self._gpus = await asyncio.to_thread(gpus.detect_nvidia)
        try:
            listener = await asyncio.to_thread(notify.Listener, str(self._state_dir))
        except OSError as exc:
            raise RuntimeError(f"cannot serve {self._state_dir}: {exc}") from exc
        self._listener = listener
        loop = asyncio.get_running_loop()
        loop.add_reader(listener.fileno(), self._on_datagrams)
        # Bound before the scan: a job that changes meanwhile is read again on its datagram.
        try:
            active = await asyncio.to_thread(self._scan, time.time() - self._retention_s)
        except BaseException:
            loop.remove_reader(listener.fileno())
            listener.close()
            self._listener = None
            raise
        # What was known before a close may have changed since: the scan has it now.
        self._jobs = {job_id: job for job_id, job in self._jobs.items() if job.starting}
        self._holdings = {i: h for i, h in self._holdings.items() if i in self._jobs}
        for state, supervisor, holding in active:
            self._jobs[state.job_id] = _Job(state, starting=False, supervisor=supervisor)
            self._holdings[state.job_id] = holding
        if self._feed.closed:
            self._feed = WorkloadFeed(history=self._watch_history)
        self._spawners = Spawners(
            self._state_dir / "spawner.log",
            python=self._python,
            reply_timeout_s=self._spawner_reply_s,
        )
        self._open = True
        await self._spawners.ensure()
        self._tasks = [
            asyncio.create_task(self._refresher(), name=f"glia-rt-refresh-{self._key}"),
            asyncio.create_task(self._poll(), name=f"glia-rt-poll-{self._key}"),
            asyncio.create_task(self._retain(), name=f"glia-rt-retain-{self._key}"),
            asyncio.create_task(self._sample_telemetry(), name=f"glia-rt-sample-{self._key}"),
        ]

    async def close(self) -> None:
        """Stop listening and end every watch and log follower; the workloads keep running."""
        if not self._open:
            return
        self._open = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        if self._spawners is not None:
            await self._spawners.close()
        self._feed.close()
        self._telemetry.close()
        for tail in list(self._tails.values()):
            if tail.task is not None:
                tail.task.cancel()
        self._wake_followers(None)

    async def capacity(self) -> ClusterCapacity:
        def measure() -> tuple[float, int]:
            return float(psutil.cpu_count() or 1), psutil.virtual_memory().total // (1024 * 1024)

        if self._host is None:  # the host's size does not change while it runs
            self._host = await asyncio.to_thread(measure)
        inventory = self._gpus or ()
        total = ClusterCapacity(
            cpu=self._host[0],
            memory_mb=self._host[1],
            gpu=len(inventory),
            gpu_model=gpus.model_of(inventory),
        )
        return total.model_copy(
            update={"free": gpus.free_resources(total, self._holdings.values())}
        )

    async def isolation(self) -> JobIsolation:
        if not self._sandbox_known:
            raise RuntimeError("runtime is not open")
        return JobIsolation(own_uid=self._switch_uid, sandbox=self._sandbox is not None)

    # --- workloads ------------------------------------------------------------------------------

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        if not self._open or self._spawners is None:
            raise RuntimeError("runtime is not open")
        check_job_id(spec.job_id)
        if not spec.command:
            raise BadInput("empty command", fields={"command": "empty"})
        _check_ids(spec)
        job = self._jobs.get(spec.job_id)
        if job is not None:
            return job.state
        task = self._starting.get(spec.job_id)
        if task is None:
            # Its GPUs are taken before the first await: two starts never get the same one.
            held = gpus.take(self._gpus or (), self._holdings, spec.job_id, spec.resources.gpu)
            self._holdings[spec.job_id] = gpus.Holding(spec.resources, held)
            env = {**spec.env, **gpus.visible_env(self._gpus or (), held)}
            spec = spec.model_copy(update={"env": env})
            # A task of its own: a caller that is cancelled does not leave a half-started job.
            task = asyncio.create_task(self._start(spec, self._spawners))
            self._starting[spec.job_id] = task
            task.add_done_callback(self._started)
        return await asyncio.shield(task)

    async def _start(self, spec: WorkloadSpec, spawners: Spawners) -> WorkloadState:
        job_id = spec.job_id
        try:
            volumes = await self._mount_volumes(spec)
            known = await asyncio.to_thread(self._prepare, spec, volumes)
        except BaseException:
            self._holdings.pop(job_id, None)
            raise
        if known is not None:
            state, supervisor = known
            self._holdings.pop(job_id, None)
            if state.phase != WorkloadPhase.EXITED:
                self._follow(state, supervisor)
                self._holdings[job_id] = await asyncio.to_thread(self._read_holding, job_id)
            return state
        job = _Job(WorkloadState(job_id=job_id, phase=WorkloadPhase.PENDING))
        self._jobs[job_id] = job
        self._feed.publish(job.state)
        try:
            pid, start_time = await spawners.spawn(self._jobs_dir / job_id)
        except Exception as exc:  # SpawnFailed, or a bug: either way the job must end
            if not isinstance(exc, SpawnFailed):
                logger.exception("cannot start the supervisor of %s", job_id)
            logger.warning("cannot start the supervisor of %s: %s", job_id, exc)
            ended = await asyncio.to_thread(
                self._record_start_failure, job_id, f"cannot start the supervisor: {exc}"
            )
            job.starting = False
            self._apply(ended)
            return ended
        logger.debug("supervisor %d started for %s (%.3f)", pid, job_id, start_time)
        job.supervisor = pid
        job.starting = False
        if job.stop_grace_s is not None:
            await self._stop_supervisor(job_id, job.stop_grace_s)
        if job_id in self._dirty:  # a datagram came while it was starting
            self._dirty_event.set()
        return job.state

    def _started(self, task: asyncio.Task[WorkloadState]) -> None:
        for job_id, starting in list(self._starting.items()):
            if starting is task:
                del self._starting[job_id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.warning("starting a workload failed: %r", exc)

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None:
        await self._settle(job_id)
        job = self._jobs.get(job_id)
        if job is None:
            (state,) = await self.states([job_id])
            if state.phase == WorkloadPhase.MISSING:
                raise NotFound(f"workload {job_id} not found")
            job = self._jobs.get(job_id)
            if job is None:
                return  # it has ended
        if job.starting:
            grace = job.stop_grace_s
            job.stop_grace_s = grace_s if grace is None else min(grace, grace_s)
            return
        await self._stop_supervisor(job_id, grace_s)

    async def _stop_supervisor(self, job_id: str, grace_s: float) -> None:
        if not await asyncio.to_thread(self._signal_supervisor, job_id, grace_s):
            await self._refresh([job_id])  # the supervisor is gone: Lost, its orphans killed

    async def set_life_span(self, job_id: str, life_span_s: float | None) -> None:
        await self._settle(job_id)
        job_dir = await self._existing_dir(job_id)
        if job_id not in self._jobs:
            return  # ended
        await asyncio.to_thread(jobstate.set_life_span, job_dir, life_span_s)

    async def states(self, job_ids: Sequence[str]) -> list[WorkloadState]:
        found: dict[str, WorkloadState] = {}
        lookups: list[str] = []
        for job_id in dict.fromkeys(job_ids):
            await self._settle(job_id)
            job = self._jobs.get(job_id)
            if job is not None:
                found[job_id] = job.state
            elif _is_job_id(job_id):
                lookups.append(job_id)
            else:  # it could not have been started
                found[job_id] = WorkloadState(job_id=job_id, phase=WorkloadPhase.MISSING)
        if lookups:

            def read() -> list[tuple[WorkloadState, int | None]]:
                states = [self._read_state(job_id, declare_lost=False) for job_id in lookups]
                return [
                    (state, self._supervisor_pid(state.job_id) if _active(state) else None)
                    for state in states
                ]

            for state, supervisor in await asyncio.to_thread(read):
                job = self._jobs.get(state.job_id)
                if job is not None:  # started while we read
                    found[state.job_id] = job.state
                    continue
                if _active(state):
                    # Not ended, yet nobody follows it: from now on the refresher does.
                    self._follow(state, supervisor)
                    self._mark_dirty([state.job_id])
                found[state.job_id] = state
        return [found[job_id] for job_id in job_ids]

    async def active_workloads(self) -> list[WorkloadState]:
        return [job.state for job in self._jobs.values()]

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
        """A reader of its own until it has caught up; then, following, a follower of the
        job's `_Tail` when that is where it stands (see `_join_tail`)."""
        check_log_start(since, offset, tail)
        job_dir = await self._existing_dir(job_id)
        since_us = None
        if since is not None:
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            since_us = time_us(since)
        if tail is not None:
            offset = await asyncio.to_thread(logfile.tail_offset, str(job_dir), tail)
        reader = logfile.LogReader(str(job_dir), since_us=since_us, offset=offset)
        woken = asyncio.Event()
        self._followers.setdefault(job_id, set()).add(woken)
        follower: _Follower | None = None

        def start_read() -> tuple[bool, asyncio.Task[LogBatch | None]]:
            woken.clear()
            # Known before the read: a job ends (here) only after its last line is written,
            # and a follower ends only once the runtime has published that end.
            ended = job_id not in self._jobs
            return ended, asyncio.create_task(asyncio.to_thread(_read_log_batch, reader))

        ended, reading = start_read()
        try:
            while True:
                # A batch may be there already (read ahead, or waiting at the tail), and a
                # consumer that sends without waiting would then never let the loop run:
                # other requests get a turn before it is taken.
                if reading.done() if follower is None else follower.batches:
                    await asyncio.sleep(0)
                if follower is not None:
                    batch = await follower.take()
                    if batch is not None:
                        yield batch
                        continue
                    if follower.behind is None:
                        return  # the tail ended, and so does the log
                    # It fell behind the tail: on its own again, from its own position.
                    reader, follower = follower.behind, None
                    ended, reading = start_read()
                    continue
                batch = await reading
                if batch is not None:
                    # Batches are bounded and there may be more already: the next is read
                    # while the consumer sends this one.
                    ended, reading = start_read()
                    yield batch
                    continue
                if reader.finished or ended or not follow or not self._open:
                    return
                follower = self._join_tail(job_id, reader)
                if follower is not None:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), FOLLOW_RECHECK_S)
                ended, reading = start_read()
        finally:
            reading.cancel()  # a read under way ends in its thread; nobody waits for it
            if follower is not None:
                self._leave_tail(job_id, follower)
            self._unwatch_log(job_id, woken)

    def _join_tail(self, job_id: str, reader: logfile.LogReader) -> _Follower | None:
        """Follow the job's tail from ``reader``'s position (which has read all there was):
        the tail is made from ``reader`` if there is none; None if the tail is elsewhere
        (the follower reads on its own and tries again after its next read)."""
        if reader.filtering:
            return None
        tail = self._tails.get(job_id)
        if tail is None:
            tail = _Tail(reader)
            self._tails[job_id] = tail
            self._followers.setdefault(job_id, set()).add(tail.woken)
            tail.task = asyncio.create_task(
                self._pump_tail(job_id, tail), name=f"glia-rt-tail-{job_id}"
            )
        elif tail.position != reader.position or tail.closed:
            return None
        follower = _Follower(tail.room)
        tail.followers.add(follower)
        tail.room.set()  # a pump waiting because all the others were full reads on for it
        return follower

    def _leave_tail(self, job_id: str, follower: _Follower) -> None:
        tail = self._tails.get(job_id)
        if tail is None or follower not in tail.followers:
            return
        tail.followers.discard(follower)
        tail.room.set()
        if not tail.followers and tail.task is not None:
            tail.task.cancel()  # the pump's `finally` forgets the tail

    async def _pump_tail(self, job_id: str, tail: _Tail) -> None:
        """Read the job's newest output once for all its tail's followers, each batch given
        to every follower with room for it; one without room falls behind (it reads on its
        own from the position before that batch). Paced by the fastest follower: it reads
        only while one of them has room."""
        reading: asyncio.Task[LogBatch | None] | None = None
        before = copy.copy(tail.reader)
        try:
            while tail.followers:
                tail.woken.clear()
                ended = job_id not in self._jobs
                before = copy.copy(tail.reader)
                reading = asyncio.create_task(asyncio.to_thread(_read_log_batch, tail.reader))
                batch = await reading
                reading = None
                tail.position = tail.reader.position
                if batch is not None:
                    tail.deliver(batch, before)
                    while tail.followers and tail.full:
                        tail.room.clear()
                        await tail.room.wait()
                    continue
                if tail.reader.finished or ended or not self._open:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tail.woken.wait(), FOLLOW_RECHECK_S)
        except Exception:
            # Each follower reads on its own from there, and meets the failure itself.
            logger.exception("cannot read the log of %s for its followers", job_id)
            tail.close(behind=before)
        finally:
            if reading is not None:
                reading.cancel()
            tail.close()
            if self._tails.get(job_id) is tail:
                del self._tails[job_id]
            self._unwatch_log(job_id, tail.woken)

    def _unwatch_log(self, job_id: str, woken: asyncio.Event) -> None:
        followers = self._followers.get(job_id)
        if followers is not None:
            followers.discard(woken)
            if not followers:
                del self._followers[job_id]

    async def log_size(self, job_id: str) -> int:
        job_dir = await self._existing_dir(job_id)
        return await asyncio.to_thread(logfile.log_size, str(job_dir))

    async def read_log(
        self, job_id: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """The bytes of ``logfile.Snapshot``: as the log was when the read began."""
        if offset < 0 or (length is not None and length < 0):
            raise BadInput("offset and length must not be negative")
        job_dir = str(await self._existing_dir(job_id))
        snapshot = await asyncio.to_thread(logfile.Snapshot, job_dir)
        try:
            end = snapshot.size if length is None else min(snapshot.size, offset + length)
            position = offset
            while position < end:
                size = min(READ_CHUNK, end - position)
                chunk = await asyncio.to_thread(snapshot.read, position, size)
                if not chunk:
                    return
                position += len(chunk)
                yield chunk
        finally:
            snapshot.close()

    async def forget(self, job_id: str) -> None:
        if not _is_job_id(job_id):
            return
        await self._settle(job_id)
        if job_id in self._jobs:
            await self._refresh([job_id])
            if job_id in self._jobs:
                raise Conflict(f"workload {job_id} has not ended")
        if not await asyncio.to_thread(self._remove, job_id):
            raise Conflict(f"workload {job_id} has not ended")
        self._wake_followers(job_id)

    # --- in memory, on the loop -----------------------------------------------------------------

    async def _settle(self, job_id: str) -> None:
        """Wait for a ``start`` of ``job_id`` that has not yet decided whether the job is new."""
        task = self._starting.get(job_id)
        if task is not None and job_id not in self._jobs:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    async def _existing_dir(self, job_id: str) -> Path:
        """The directory of a job this runtime knows; NotFound otherwise."""
        if _is_job_id(job_id):
            await self._settle(job_id)
            job_dir = self._jobs_dir / job_id
            if job_id in self._jobs or await asyncio.to_thread(job_dir.is_dir):
                return job_dir
        raise NotFound(f"workload {job_id} not found")

    def _follow(self, state: WorkloadState, supervisor: int | None) -> None:
        self._jobs[state.job_id] = _Job(state, starting=False, supervisor=supervisor)

    def _apply(self, state: WorkloadState) -> None:
        """Take a state read from the files; publish it if it is ahead of the one known."""
        job = self._jobs.get(state.job_id)
        if job is None or job.starting:
            return
        old = job.state
        if state.phase in (WorkloadPhase.MISSING, WorkloadPhase.EXITED):
            self._telemetry.end(state.job_id)
        if state.phase == WorkloadPhase.MISSING:  # its directory was removed under us
            del self._jobs[state.job_id]
            self._holdings.pop(state.job_id, None)
            self._dirty.discard(state.job_id)
            self._feed.publish(state)
            self._wake_followers(state.job_id)
            return
        if _ORDER[state.phase] <= _ORDER[old.phase]:
            return
        if (
            state.phase == WorkloadPhase.EXITED
            and old.phase == WorkloadPhase.PENDING
            and state.started_at is not None
        ):
            # It ran and ended between two looks: say so, in order.
            self._feed.publish(
                state.model_copy(
                    update={
                        "phase": WorkloadPhase.RUNNING,
                        "exit_code": None,
                        "reason": None,
                        "description": None,
                        "finished_at": None,
                    }
                )
            )
        self._feed.publish(state)
        if state.phase == WorkloadPhase.EXITED:
            # Its secret files go with its end, not with its directory days later.
            shutil.rmtree(self._jobs_dir / state.job_id / jobdir.SECRETS, ignore_errors=True)
            if state.job_id in self._job_disks:
                task = asyncio.get_running_loop().create_task(self._unmount_disks(state.job_id))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            del self._jobs[state.job_id]
            self._holdings.pop(state.job_id, None)
            self._dirty.discard(state.job_id)
            self._wake_followers(state.job_id)
        else:
            job.state = state

    async def _refresh(self, job_ids: Sequence[str]) -> None:
        ids = [job_id for job_id in job_ids if job_id in self._jobs]
        if ids:
            for state in await asyncio.to_thread(self._read_states, ids, declare_lost=True):
                self._apply(state)

    def _mark_dirty(self, job_ids: Sequence[str]) -> None:
        self._dirty.update(job_ids)
        self._dirty_event.set()

    async def _refresher(self) -> None:
        """The one reader of the followed jobs' files, batching what the datagrams ask for."""
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            # Jobs still starting wait in _dirty: _start wakes us again once they are there.
            self._dirty &= self._jobs.keys()
            ready = [job_id for job_id in self._dirty if not self._jobs[job_id].starting]
            self._dirty.difference_update(ready)
            try:
                await self._refresh(ready)
            except Exception:
                logger.exception("cannot read the state of %s", ready)

    async def _poll(self) -> None:
        """The safety net for lost datagrams, killed supervisors and a dead spawner."""
        while True:
            await asyncio.sleep(self._poll_interval_s)
            self._mark_dirty([job_id for job_id, job in self._jobs.items() if not job.starting])
            if self._spawners is not None:
                try:
                    await self._spawners.ensure()
                except Exception:
                    logger.exception("cannot check the supervisor spawner")

    async def _retain(self) -> None:
        """Remove the directories of workloads that ended more than ``retention_s`` ago."""
        while True:
            await asyncio.sleep(self._retention_check_s)
            keep = set(self._jobs) | set(self._starting)
            try:
                removed = await asyncio.to_thread(
                    self._remove_expired, keep, time.time() - self._retention_s
                )
            except Exception:
                logger.exception("cannot remove expired workloads")
                continue
            for job_id in removed:
                self._wake_followers(job_id)

    def _on_datagrams(self, *, _max: int = 1000) -> None:
        if self._listener is None:
            return
        try:
            received = self._listener.receive(_max)
        except OSError:
            logger.warning("notification socket failed", exc_info=True)
            return
        changed: list[str] = []
        logged: set[str] = set()
        for pid, uid, job_id, event in received:
            # Only from the supervisor of a job that has not ended (of one still starting,
            # whose pid is not known yet, any supervisor: it only makes us read the files).
            job = self._jobs.get(job_id)
            if job is None or uid != self._euid:
                continue
            if job.supervisor is not None and pid != job.supervisor:
                logger.debug("ignored a datagram about %s from pid %d", job_id, pid)
                continue
            if event == "log":
                logged.add(job_id)
            elif event in ("running", "exited"):
                logged.add(job_id)
                changed.append(job_id)
        for job_id in logged:
            self._wake_followers(job_id)
        if changed:
            self._mark_dirty(changed)

    def _wake_followers(self, job_id: str | None) -> None:
        if job_id is None:
            for followers in self._followers.values():
                for event in followers:
                    event.set()
        else:
            for event in self._followers.get(job_id, ()):
                event.set()

    # --- on disk, in a worker thread ------------------------------------------------------------

    def _find_sandbox(self) -> Sandbox | None:
        """The sandbox of this host (``isolation.py``). Raises ValueError for extra binds
        that would show jobs the runtime's state, RuntimeError for a sandbox required in vain."""
        binds = self._extra_ro_binds
        if binds is None:  # the defaults are left out, not refused, when they overlap
            prefixes = isolation.interpreter_prefixes()
            binds = [path for path in prefixes if _apart(path, self._state_dir)]
        return isolation.find_sandbox(
            wanted=self._want_sandbox,
            bwrap=self._bwrap,
            network=self._job_network,
            extra_ro_binds=isolation.resolve_binds(binds, self._state_dir),
            switch_uid=self._switch_uid,
        )

    def _make_private_dirs(self) -> None:
        """The state dir and ``jobs/``, 0700 (also when an older version made them 0755)."""
        for directory in (self._state_dir, self._jobs_dir):
            directory.mkdir(mode=jobdir.DIR_MODE, parents=True, exist_ok=True)
            if directory.stat().st_uid == self._euid:
                directory.chmod(jobdir.DIR_MODE)

    def _scan(self, expired_before: float) -> list[tuple[WorkloadState, int | None, gpus.Holding]]:
        """The workloads that have not ended, with their supervisors' pids and what they
        hold; removes those ended before ``expired_before``."""
        active: list[tuple[WorkloadState, int | None, gpus.Holding]] = []
        with os.scandir(self._jobs_dir) as entries:
            for entry in entries:
                if not entry.is_dir():
                    continue
                try:
                    ended_at = os.stat(os.path.join(entry.path, jobdir.EXIT)).st_mtime
                except FileNotFoundError:
                    ended_at = None
                if ended_at is not None:
                    if ended_at < expired_before:
                        shutil.rmtree(entry.path, ignore_errors=True)
                    continue
                try:
                    state = self._read_state(entry.name, declare_lost=True)
                except Exception:
                    logger.exception("cannot read the state of %s", entry.name)
                    continue
                if _active(state):
                    holding = self._read_holding(entry.name)
                    active.append((state, self._supervisor_pid(entry.name), holding))
        return active

    def _remove_expired(self, keep: set[str], expired_before: float) -> list[str]:
        removed: list[str] = []
        with os.scandir(self._jobs_dir) as entries:
            for entry in entries:
                if entry.name in keep or not entry.is_dir():
                    continue
                try:
                    ended_at = os.stat(os.path.join(entry.path, jobdir.EXIT)).st_mtime
                except FileNotFoundError:
                    continue  # not ended
                if ended_at < expired_before:
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.name)
        return removed

    def _remove(self, job_id: str) -> bool:
        """Remove an ended job's directory; False if it has not ended."""
        job_dir = self._jobs_dir / job_id
        if not job_dir.is_dir():
            return True
        if not (job_dir / jobdir.EXIT).exists():
            return False
        shutil.rmtree(job_dir, ignore_errors=True)
        return True

    async def _mount_volumes(self, spec: WorkloadSpec) -> list[Bind] | str:
        """The binds of the job's volumes (its disks mounted on the host for it, its storage
        directories made its uid's), or why it cannot have them."""
        if not spec.volumes:
            return []
        if self._sandbox is None:
            return "volumes need the job sandbox (bubblewrap), which this host does not have"
        switch = self._switch_uid and spec.uid is not None
        uid, gid = (spec.uid, spec.gid) if switch else (None, None)
        binds: list[Bind] = []
        for volume in spec.volumes:
            try:
                if volume.kind is VolumeKind.STORAGE:
                    source = await self._storage_volume(volume.ref, create=not volume.read_only)
                    if uid is not None and gid is not None:
                        await asyncio.to_thread(_own_tree, source, uid, gid)
                elif volume.kind is VolumeKind.DISK:
                    if self._disks is None:
                        return "this cluster has no disks"
                    source = str(await self._disks.mount(volume.ref, uid, gid))
                    self._job_disks.setdefault(spec.job_id, []).append(volume.ref)
                else:
                    # Written (0400, the job's uid's) with the job's directory, in `_prepare`.
                    index = next(
                        i
                        for i, secret in enumerate(spec.secret_files)
                        if secret.mount_path == volume.mount_path
                    )
                    source = str(self._jobs_dir / spec.job_id / jobdir.SECRETS / str(index))
                    binds.append(Bind(source, volume.mount_path, writable=False))
                    continue
            except GliaError as exc:
                await self._unmount_disks(spec.job_id)
                return f"cannot mount {volume.kind.value} {volume.ref}: {exc.message}"
            binds.append(Bind(source, volume.mount_path, writable=not volume.read_only))
        return binds

    def _write_secrets(self, job_dir: Path, spec: WorkloadSpec) -> None:
        """The job's secret files (0400, its uid's, bound read-only) and its secret
        variables (0600, the runtime's; the supervisor reads them, then removes them), in
        files of their own: spec.json never holds a secret."""
        switch = self._switch_uid and spec.uid is not None
        if spec.secret_files:
            directory = job_dir / jobdir.SECRETS
            directory.mkdir(mode=0o700)
            for index, secret in enumerate(spec.secret_files):
                path = directory / str(index)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
                try:
                    os.write(fd, secret.content.get_secret_value())
                    if switch:
                        os.fchown(fd, spec.uid or 0, spec.gid if spec.gid is not None else -1)
                finally:
                    os.close(fd)
        if spec.secret_env:
            values: dict[str, object] = {
                name: value.get_secret_value() for name, value in spec.secret_env.items()
            }
            jobdir.write_json(str(job_dir / jobdir.SECRET_ENV), values)

    async def _storage_volume(self, uri: str, *, create: bool) -> str:
        if self._storage is None:
            raise BadInput("this cluster cannot mount its storage into jobs")
        location = parse_storage_uri(uri, "volumes")
        try:
            return await asyncio.to_thread(self._storage.host_directory, location)
        except NotFound:
            if not create:
                raise
        await self._storage.mkdir(location, parents=True)
        return await asyncio.to_thread(self._storage.host_directory, location)

    async def _unmount_disks(self, job_id: str) -> None:
        for disk_id in self._job_disks.pop(job_id, []):
            if self._disks is not None:
                try:
                    await self._disks.unmount(disk_id)
                except Exception as exc:  # it stays mounted: the next mount reuses it
                    logger.warning("unmounting disk %s of %s failed: %s", disk_id, job_id, exc)

    def _prepare(
        self, spec: WorkloadSpec, volumes: list[Bind] | str
    ) -> tuple[WorkloadState, int | None] | None:
        """Create the job's directory and spec; the state of the job (and its supervisor's
        pid) if it exists already. ``volumes``: their binds, or why it cannot have them."""
        job_dir = self._jobs_dir / spec.job_id
        try:
            job_dir.mkdir(mode=jobdir.DIR_MODE)
        except FileExistsError:
            state = self._read_state(spec.job_id, declare_lost=True)
            return state, self._supervisor_pid(spec.job_id) if _active(state) else None
        if isinstance(volumes, str):
            return self._record_start_failure(spec.job_id, volumes), None
        self._write_secrets(job_dir, spec)
        stored = None
        if spec.storage_workdir is not None:
            try:
                stored = self._storage_dir(spec.storage_workdir)
            except (BadInput, NotFound) as exc:
                failed = f"cannot use working directory {spec.storage_workdir}: {exc.message}"
                return self._record_start_failure(spec.job_id, failed), None
        switch = self._switch_uid and spec.uid is not None
        uid, gid = (spec.uid, spec.gid) if switch else (None, None)
        own: list[Path] = []  # the job's own directories: its uid's, 0700
        home = job_dir / jobdir.HOME
        env = dict(spec.env)
        if self._sandbox is not None:
            own.append(home)
            env["HOME"] = SANDBOX_HOME
        working_dir = spec.working_dir
        if stored is not None:
            # Shown to the job where a scratch dir would be, and run as one (the runtime
            # checked it): its files become the job's own.
            if uid is not None and gid is not None:
                _own_tree(stored, uid, gid)
            working_dir = stored
        elif working_dir is None:
            # A job that names no directory gets a scratch one of its own, not whatever
            # directory the control plane was started from; forget() removes it.
            scratch = job_dir / jobdir.SCRATCH
            own.append(scratch)
            working_dir = str(scratch)
        for directory in own:
            directory.mkdir(mode=jobdir.DIR_MODE)
            if uid is not None and gid is not None:
                os.chown(directory, uid, gid)
        cgroup = self._layout.job(f"{self._key}-{spec.job_id}") if self._layout else None
        jobdir.write_json(
            str(job_dir / jobdir.SPEC),
            {
                "job_id": spec.job_id,
                "command": list(spec.command),
                "env": env,
                "working_dir": working_dir,
                "scratch": spec.working_dir is None,  # a scratch or a storage dir
                "uid": uid,
                "gid": gid,
                "resources": {
                    "cpu": spec.resources.cpu,
                    "memory_mb": spec.resources.memory_mb,
                    "gpu": spec.resources.gpu,
                    "pids_limit": spec.resources.pids_limit,
                    "shm_mb": spec.resources.shm_mb,
                    "gpu_ids": list(self._holdings[spec.job_id].gpus)
                    if spec.job_id in self._holdings
                    else [],
                },
                "life_span_s": spec.life_span_s,
                "grace_s": self._default_grace_s,
                "log_limit_bytes": self._log_limit_bytes,
                "notify_socket": str(self._state_dir / notify.SOCKET),
                "state_dir": str(self._state_dir),
                "cgroup": cgroup.to_json() if cgroup else None,
                "sandbox": self._sandbox.to_json() if self._sandbox else None,
                "home": str(home),
                "volumes": [bind.to_json() for bind in volumes],
                "tty": spec.tty,
            },
        )
        return None

    def _storage_dir(self, uri: str) -> str:
        """The host path of a job's working directory in storage: inside the storage's tree
        (links resolved), or BAD_USER_INPUT / NOT_FOUND."""
        if self._storage is None:
            raise BadInput(
                "this cluster cannot give a job a working directory in its storage",
                fields={"storageWorkdir": "not supported here"},
            )
        return self._storage.host_directory(parse_storage_uri(uri, "storageWorkdir"))

    def _read_holding(self, job_id: str) -> gpus.Holding:
        """What a workload found again holds, from its spec (nothing, if that is unreadable)."""
        spec = jobstate.load(self._jobs_dir / job_id / jobdir.SPEC) or {}
        found = spec.get("resources") or {}
        try:
            resources = Resources(
                cpu=float(found.get("cpu", 0)), memory_mb=int(found.get("memory_mb", 0))
            )
            held = tuple(str(index) for index in found.get("gpu_ids") or ())
        except (TypeError, ValueError):
            return gpus.Holding(Resources(cpu=0, memory_mb=0))
        return gpus.Holding(resources, held)

    def _supervisor_pid(self, job_id: str) -> int | None:
        return jobstate.supervisor_pid(self._jobs_dir / job_id)

    def _record_start_failure(self, job_id: str, description: str) -> WorkloadState:
        return jobstate.record_start_failure(self._jobs_dir / job_id, description)

    def _signal_supervisor(self, job_id: str, grace_s: float) -> bool:
        return jobstate.signal_supervisor(self._jobs_dir / job_id, grace_s)

    def _read_states(self, job_ids: Sequence[str], *, declare_lost: bool) -> list[WorkloadState]:
        states = []
        for job_id in job_ids:
            try:
                states.append(self._read_state(job_id, declare_lost=declare_lost))
            except Exception:
                logger.exception("cannot read the state of %s", job_id)
        return states

    def _read_state(self, job_id: str, *, declare_lost: bool) -> WorkloadState:
        return jobstate.read_state(self._jobs_dir / job_id, declare_lost=declare_lost)

    # --- exec and port-forward (runtimes/exec.py) ------------------------------------------------

    async def exec(
        self,
        job_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        rows: int | None = None,
        cols: int | None = None,
    ) -> ExecSession:
        job_dir = await self._existing_dir(job_id)
        job = await asyncio.to_thread(job_exec.read_job_process, job_dir)
        await job_exec.ready(job)
        return await job_exec.LocalExec.start(job, command, tty=tty, rows=rows, cols=cols)

    async def connect(
        self, job_id: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        job_dir = await self._existing_dir(job_id)
        job = await asyncio.to_thread(job_exec.read_job_process, job_dir)
        await job_exec.ready(job)
        return await job_exec.connect(job, port)

    async def write_stdin(self, job_id: str, data: bytes) -> None:
        await job_exec.write_stdin(await self._existing_dir(job_id), data)

    async def resize_terminal(self, job_id: str, rows: int, cols: int) -> None:
        await job_exec.resize_terminal(await self._existing_dir(job_id), rows, cols)

    # --- telemetry (telemetry.py) ---------------------------------------------------------------

    async def telemetry(self, job_id: str | None = None) -> AsyncGenerator[TelemetryTick, None]:
        if job_id is not None:
            await self._existing_dir(job_id)
        subscription = self._telemetry.subscribe(job_id)  # no await until the check below
        if not self._open or (job_id is not None and job_id not in self._jobs):
            subscription.end()  # ended (or closed): nothing more will be sampled
        async with contextlib.aclosing(subscription.ticks()) as ticks:
            async for tick in ticks:
                yield tick

    async def _sample_telemetry(self) -> None:
        """Sample the running jobs somebody follows, every ``telemetry_interval_s``."""
        while True:
            await asyncio.sleep(self._telemetry_interval_s)
            wanted = self._telemetry.wanted_jobs() if self._telemetry.wanted else set()
            ids = [
                job_id
                for job_id, job in self._jobs.items()
                if not job.starting
                and job.state.phase == WorkloadPhase.RUNNING
                and (wanted is None or job_id in wanted)
            ]
            if not ids:
                continue
            try:
                tick = await asyncio.to_thread(self._sample_jobs, ids, utcnow())
            except Exception:
                logger.exception("cannot sample the running jobs")
                continue
            self._telemetry.publish(tick)

    def _sample_jobs(self, job_ids: list[str], at: datetime) -> TelemetryTick:
        watched = {}
        for job_id in job_ids:
            job = self._watched.get(job_id)
            if job is None:
                job = self._watch_job(job_id)
            if job is not None:
                watched[job_id] = job
        tick = self._sampler.sample(list(watched.values()), at)
        # One with nothing left to measure is looked up again (a restart has a new process).
        sampled = {sample.job_id for sample in tick}
        self._watched = {job_id: job for job_id, job in watched.items() if job_id in sampled}
        return tick

    def _watch_job(self, job_id: str) -> telemetry_.Watched | None:
        """What the sampler needs of a job, once its first process runs."""
        job_dir = self._jobs_dir / job_id
        child = jobstate.load(job_dir / jobdir.CHILD) if (job_dir / jobdir.CHILD).exists() else None
        if not child or not isinstance(child.get("pid"), int):
            return None
        spec = jobstate.load(job_dir / jobdir.SPEC) or {}
        cgroup = None
        if isinstance(spec.get("cgroup"), dict):
            with contextlib.suppress(ValueError, KeyError):
                cgroup = cgroups.JobCgroup.from_json(spec["cgroup"])
        holding = self._holdings.get(job_id)
        return telemetry_.Watched(job_id, child["pid"], cgroup, holding.gpus if holding else ())


def _read_log_batch(reader: logfile.LogReader) -> LogBatch | None:
    """The reader's next batch; None when nothing new is there."""
    runs = reader.read(max_lines=BATCH_LINES, max_bytes=BATCH_BYTES)
    if not runs:
        return None
    # Each run's end, back from where the reader stands: its bytes are the run's (a SYSTEM
    # run's are not in the output), and any records skipped for ``since`` came before them.
    ends = []
    end = reader.position
    for _, stream, text in reversed(runs):
        ends.append(end)
        if stream != logfile.SYSTEM:
            end -= len(text)
    # A newline is never part of a multi-byte character: decoding a run whole decodes each
    # of its lines as it would alone.
    return LogBatch(
        times=tuple(at for at, _, _ in runs),
        streams=tuple(_STREAMS.get(stream, LogStream.STDOUT) for _, stream, _ in runs),
        texts=tuple(text.decode(errors="replace") for _, _, text in runs),
        ends=tuple(reversed(ends)),
    )


def _extent(batch: LogBatch) -> tuple[int, int]:
    """Its lines, and bytes of text (newlines not counted), as the batch bounds count them."""
    lines = batch.line_count
    return lines, sum(len(text.encode()) for text in batch.texts) - lines


def _active(state: WorkloadState) -> bool:
    return state.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING)


def _apart(path: str | Path, state_dir: Path) -> bool:
    """Whether ``path`` neither holds ``state_dir`` nor lies in it."""
    a, b = os.path.realpath(path), os.path.realpath(state_dir)
    return not (a == b or b.startswith(a.rstrip("/") + "/") or a.startswith(b + "/"))


def _check_ids(spec: WorkloadSpec) -> None:
    if (spec.uid is None) != (spec.gid is None):
        raise BadInput("uid and gid go together", fields={"uid": "without gid"})
    if spec.uid is not None and spec.gid is not None and (spec.uid <= 0 or spec.gid <= 0):
        raise BadInput("uid and gid must be unprivileged (above 0)", fields={"uid": "privileged"})


def _is_job_id(job_id: str) -> bool:
    """Whether ``job_id`` could name a job; any other is unknown (and must not name a path)."""
    try:
        check_job_id(job_id)
    except BadInput:
        return False
    return True


def _own_tree(path: str, uid: int, gid: int) -> None:
    """Give ``path`` and what is under it to ``uid``/``gid``, so that a job under its own uid
    may change what it works in: links themselves, not what they point to, and not files
    with other hard links (nothing outside the tree changes hands)."""
    os.chown(path, uid, gid, follow_symlinks=False)
    for directory, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            entry = os.path.join(directory, name)
            info = os.lstat(entry)
            if stat.S_ISDIR(info.st_mode) or info.st_nlink == 1:
                if info.st_uid != uid or info.st_gid != gid:
                    os.chown(entry, uid, gid, follow_symlinks=False)
