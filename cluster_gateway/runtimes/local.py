"""Workloads as processes on this host, each under its own supervisor.

Every job has a directory ``<state_dir>/jobs/<job_id>/`` (``jobdir.py``); its files are the
truth, so a control plane that restarts, or is killed, finds its jobs again: the supervisors
run in their own sessions and never depend on it. Supervisors are forked by a pre-started
spawner (``spawner.py``, driven by ``spawner_client.py``) and push ``<job_id>
running|log|exited`` datagrams to one unix socket per state directory, which wakes ``watch``
and ``logs`` at once; a slow poll catches what a lost datagram or a killed supervisor would
hide.

What the runtime keeps in memory is the workloads that have not ended (``_jobs``): it answers
``active_workloads`` and the states of those jobs, and is where every state change is
published from. Ended workloads live on disk only, for point lookups, until ``forget`` or the
retention period removes them. ``open`` scans the directories once to find the running jobs.

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
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from cluster_gateway.gateway import (
    ClusterCapacity,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.runtimes import cgroups, jobdir, logfile
from cluster_gateway.runtimes.base import Runtime, check_job_id
from cluster_gateway.runtimes.spawner_client import Spawners, SpawnFailed
from cluster_gateway.watch import DEFAULT_HISTORY, WorkloadFeed
from glia.clock import utcnow
from glia.errors import BadInput, Conflict, NotFound
from glia.jobs import JobReason
from glia.monitoring import LogLine, LogStream

logger = logging.getLogger(__name__)

DAY_S = 24 * 3600.0
# A follower re-reads at least this often even when no datagram comes.
FOLLOW_RECHECK_S = 1.0
# ``logs`` batches and ``read_log`` chunks.
BATCH_LINES = 1000
BATCH_BYTES = 256 * 1024
READ_CHUNK = 64 * 1024
# The same process has the same start time; a reused pid has another one (10 ms ticks).
_SAME_PROCESS_S = 0.005
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ORDER = {WorkloadPhase.PENDING: 0, WorkloadPhase.RUNNING: 1, WorkloadPhase.EXITED: 2}
_STREAMS = {logfile.STDOUT: LogStream.STDOUT, logfile.STDERR: LogStream.STDERR}


@dataclass
class _Job:
    """A workload that has not ended."""

    state: WorkloadState
    # The spawner has not answered yet: there is no supervisor to check on.
    starting: bool = True
    # A stop that came while it was starting, delivered once the supervisor is there.
    stop_grace_s: float | None = None


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
    ) -> None:
        """``retention_s``: how long an ended workload's directory is kept (checked every
        ``retention_check_s``). ``python``: the interpreter the spawner (and so every
        supervisor) runs in; ``spawner_reply_s``: how long a start waits for the spawner."""
        self._state_dir = state_dir
        self._jobs_dir = state_dir / "jobs"
        # Abstract socket names dodge the 108-byte limit of socket paths; the hash of the
        # state directory keeps runtimes on different state apart, in cgroups too.
        self._key = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:16]
        self._socket_name = f"glia-rt-{self._key}"
        self._cgroup_root = cgroup_root if use_cgroups else None
        self._default_grace_s = default_grace_s
        self._poll_interval_s = poll_interval_s
        self._retention_s = retention_s
        self._retention_check_s = retention_check_s
        self._watch_history = watch_history
        self._python = python
        self._spawner_reply_s = spawner_reply_s
        self._layout: cgroups.Layout | None = None
        self._sock: socket.socket | None = None
        self._spawners: Spawners | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: dict[str, _Job] = {}
        self._starting: dict[str, asyncio.Task[WorkloadState]] = {}
        self._dirty: set[str] = set()  # jobs to read again
        self._dirty_event = asyncio.Event()
        self._followers: dict[str, set[asyncio.Event]] = {}
        self._feed = WorkloadFeed(history=watch_history)
        self._open = False

    # --- seams for operators and tests ----------------------------------------------------------

    @property
    def cgroups_usable(self) -> bool:
        """Whether limits are enforced with cgroups (else with rlimits); known after ``open``."""
        return self._layout is not None

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
        await asyncio.to_thread(self._jobs_dir.mkdir, parents=True, exist_ok=True)
        if self._cgroup_root is not None:
            self._layout = await asyncio.to_thread(cgroups.detect, str(self._cgroup_root))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
            sock.bind(b"\0" + self._socket_name.encode())
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"cannot serve {self._state_dir}: {exc}") from exc
        self._sock = sock
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._on_datagrams)
        # Bound before the scan: a job that changes meanwhile is read again on its datagram.
        try:
            active = await asyncio.to_thread(self._scan, time.time() - self._retention_s)
        except BaseException:
            loop.remove_reader(sock.fileno())
            sock.close()
            self._sock = None
            raise
        # What was known before a close may have changed since: the scan has it now.
        self._jobs = {job_id: job for job_id, job in self._jobs.items() if job.starting}
        for state in active:
            self._jobs[state.job_id] = _Job(state, starting=False)
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
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._spawners is not None:
            await self._spawners.close()
        self._feed.close()
        self._wake_followers(None)

    async def capacity(self) -> ClusterCapacity:
        def measure() -> ClusterCapacity:
            return ClusterCapacity(
                cpu=float(psutil.cpu_count() or 1),
                memory_mb=psutil.virtual_memory().total // (1024 * 1024),
            )

        return await asyncio.to_thread(measure)

    # --- workloads ------------------------------------------------------------------------------

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        if not self._open or self._spawners is None:
            raise RuntimeError("runtime is not open")
        check_job_id(spec.job_id)
        if not spec.command:
            raise BadInput("empty command", fields={"command": "empty"})
        job = self._jobs.get(spec.job_id)
        if job is not None:
            return job.state
        task = self._starting.get(spec.job_id)
        if task is None:
            # A task of its own: a caller that is cancelled does not leave a half-started job.
            task = asyncio.create_task(self._start(spec, self._spawners))
            self._starting[spec.job_id] = task
            task.add_done_callback(self._started)
        return await asyncio.shield(task)

    async def _start(self, spec: WorkloadSpec, spawners: Spawners) -> WorkloadState:
        job_id = spec.job_id
        known = await asyncio.to_thread(self._prepare, spec)
        if known is not None:
            if known.phase != WorkloadPhase.EXITED:
                self._follow(known)
            return known
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

            def read() -> list[WorkloadState]:
                return [self._read_state(job_id, declare_lost=False) for job_id in lookups]

            for state in await asyncio.to_thread(read):
                job = self._jobs.get(state.job_id)
                if job is not None:  # started while we read
                    found[state.job_id] = job.state
                    continue
                if state.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                    # Not ended, yet nobody follows it: from now on the refresher does.
                    self._follow(state)
                    self._mark_dirty([state.job_id])
                found[state.job_id] = state
        return [found[job_id] for job_id in job_ids]

    async def active_workloads(self) -> list[WorkloadState]:
        return [job.state for job in self._jobs.values()]

    def watch(self, *, after: str | None = None) -> AbstractAsyncContextManager[WorkloadWatch]:
        return self._feed.watch(after=after)

    async def logs(
        self, job_id: str, *, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[list[LogLine]]:
        job_dir = await self._existing_dir(job_id)
        since_us = None
        if since is not None:
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            since_us = (since - _EPOCH) // _MICROSECOND
        reader = logfile.LogReader(str(job_dir), since_us=since_us)
        woken = asyncio.Event()
        self._followers.setdefault(job_id, set()).add(woken)
        try:
            while True:
                woken.clear()
                # Known before the read: a job ends (here) only after its last line is written,
                # and a follower ends only once the runtime has published that end.
                ended = job_id not in self._jobs
                batch = await asyncio.to_thread(_read_log_batch, reader)
                if batch:
                    yield batch
                    continue  # batches are bounded: there may be more already
                if ended or not follow or not self._open:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), FOLLOW_RECHECK_S)
        finally:
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
        if offset < 0 or (length is not None and length < 0):
            raise BadInput("offset and length must not be negative")
        job_dir = str(await self._existing_dir(job_id))
        size = await asyncio.to_thread(logfile.log_size, job_dir)
        end = size if length is None else min(size, offset + length)
        position = offset
        while position < end:
            chunk = await asyncio.to_thread(
                logfile.read_bytes, job_dir, position, min(READ_CHUNK, end - position)
            )
            if not chunk:
                return
            position += len(chunk)
            yield chunk

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

    def _follow(self, state: WorkloadState) -> None:
        self._jobs[state.job_id] = _Job(state, starting=False)

    def _apply(self, state: WorkloadState) -> None:
        """Take a state read from the files; publish it if it is ahead of the one known."""
        job = self._jobs.get(state.job_id)
        if job is None or job.starting:
            return
        old = job.state
        if state.phase == WorkloadPhase.MISSING:  # its directory was removed under us
            del self._jobs[state.job_id]
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
            del self._jobs[state.job_id]
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
        if self._sock is None:
            return
        changed: list[str] = []
        logged: set[str] = set()
        for _ in range(_max):
            try:
                data = self._sock.recv(512)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                logger.warning("notification socket failed", exc_info=True)
                break
            job_id, _, event = data.decode(errors="replace").rpartition(" ")
            if event == "log":
                logged.add(job_id)
            elif event in ("running", "exited"):
                logged.add(job_id)
                if job_id in self._jobs:
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

    def _scan(self, expired_before: float) -> list[WorkloadState]:
        """The workloads that have not ended; removes those ended before ``expired_before``."""
        active: list[WorkloadState] = []
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
                if state.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING):
                    active.append(state)
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

    def _prepare(self, spec: WorkloadSpec) -> WorkloadState | None:
        """Create the job's directory and spec; the state of the job if it exists already."""
        job_dir = self._jobs_dir / spec.job_id
        try:
            job_dir.mkdir()
        except FileExistsError:
            return self._read_state(spec.job_id, declare_lost=True)
        working_dir = spec.working_dir
        if working_dir is None:
            # A job that names no directory gets a scratch one of its own, not whatever
            # directory the control plane was started from; forget() removes it.
            scratch = job_dir / jobdir.SCRATCH
            scratch.mkdir()
            working_dir = str(scratch)
        cgroup = self._layout.job(f"{self._key}-{spec.job_id}") if self._layout else None
        jobdir.write_json(
            str(job_dir / jobdir.SPEC),
            {
                "job_id": spec.job_id,
                "command": list(spec.command),
                "env": dict(spec.env),
                "working_dir": working_dir,
                "resources": {
                    "cpu": spec.resources.cpu,
                    "memory_mb": spec.resources.memory_mb,
                    "gpu": spec.resources.gpu,
                },
                "life_span_s": spec.life_span_s,
                "grace_s": self._default_grace_s,
                "notify_socket": self._socket_name,
                "cgroup": cgroup.to_json() if cgroup else None,
            },
        )
        return None

    def _record_start_failure(self, job_id: str, description: str) -> WorkloadState:
        jobdir.create_json(
            str(self._jobs_dir / job_id / jobdir.EXIT),
            {
                "exit_code": None,
                "signal": None,
                "reason": JobReason.START_FAILED.value,
                "description": description,
                "finished_at": utcnow().isoformat(),
            },
        )
        return self._read_state(job_id, declare_lost=False)

    def _signal_supervisor(self, job_id: str, grace_s: float) -> bool:
        """Ask the supervisor to stop the job; False if the supervisor is gone."""
        job_dir = self._jobs_dir / job_id
        jobdir.write_json(str(job_dir / jobdir.STOP), {"grace_s": grace_s})
        supervisor = _load(job_dir / jobdir.SUPERVISOR) or {}
        pid = supervisor.get("pid")
        if isinstance(pid, int) and _same_process(pid, supervisor.get("start_time")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                return True
        return False

    def _read_states(self, job_ids: Sequence[str], *, declare_lost: bool) -> list[WorkloadState]:
        states = []
        for job_id in job_ids:
            try:
                states.append(self._read_state(job_id, declare_lost=declare_lost))
            except Exception:
                logger.exception("cannot read the state of %s", job_id)
        return states

    def _read_state(self, job_id: str, *, declare_lost: bool) -> WorkloadState:
        """The state of ``job_id`` from its files. A job whose supervisor is gone without a
        word is declared lost if ``declare_lost``, else reported as not ended (a point lookup
        must not judge a job that a concurrent ``start`` is creating)."""
        job_dir = self._jobs_dir / job_id
        if not job_dir.is_dir():
            return WorkloadState(job_id=job_id, phase=WorkloadPhase.MISSING)
        child = _load(job_dir / jobdir.CHILD)
        started_at = _parse_time(child.get("started_at")) if child else None
        exited = _load(job_dir / jobdir.EXIT)
        if exited is None:
            supervisor = _load(job_dir / jobdir.SUPERVISOR) or {}
            pid = supervisor.get("pid")
            alive = isinstance(pid, int) and _same_process(pid, supervisor.get("start_time"))
            # It may have written exit.json and ended since the first look.
            exited = None if alive else _load(job_dir / jobdir.EXIT)
            if exited is None:
                if alive or not declare_lost:
                    phase = WorkloadPhase.RUNNING if child else WorkloadPhase.PENDING
                    return WorkloadState(job_id=job_id, phase=phase, started_at=started_at)
                exited = self._declare_lost(job_dir, child)
        try:
            reason = JobReason(str(exited.get("reason")))
        except ValueError:
            reason = JobReason.LOST
        exit_code = exited.get("exit_code")
        description = exited.get("description")
        return WorkloadState(
            job_id=job_id,
            phase=WorkloadPhase.EXITED,
            exit_code=exit_code if isinstance(exit_code, int) else None,
            reason=reason,
            description=description if isinstance(description, str) else None,
            started_at=started_at,
            finished_at=_parse_time(exited.get("finished_at")),
        )

    def _declare_lost(self, job_dir: Path, child: dict[str, Any] | None) -> dict[str, Any]:
        """The supervisor died without a word: kill what it left and record the loss."""
        pgid = child.get("pgid") if child else None
        if child is not None and isinstance(pgid, int):
            # The leader's pid is not reused while its group has members, so a leader that is
            # gone means the group is ours or empty; one that started at another time means
            # the group is somebody else's.
            try:
                start_time = psutil.Process(pgid).create_time()
                ours = abs(start_time - float(child.get("start_time") or 0)) < _SAME_PROCESS_S
            except psutil.NoSuchProcess:
                ours = True
            if ours:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        spec = _load(job_dir / jobdir.SPEC) or {}
        if isinstance(spec.get("cgroup"), dict):
            with contextlib.suppress(ValueError, KeyError):
                cgroups.JobCgroup.from_json(spec["cgroup"]).remove(timeout_s=0.5)
        exited: dict[str, Any] = {
            "exit_code": None,
            "signal": None,
            "reason": JobReason.LOST.value,
            "description": "the supervisor ended without recording the exit",
            "finished_at": utcnow().isoformat(),
        }
        path = str(job_dir / jobdir.EXIT)
        if not jobdir.create_json(path, exited):  # recorded meanwhile: that record stands
            exited = _load(job_dir / jobdir.EXIT) or exited
        return exited


def _read_log_batch(reader: logfile.LogReader) -> list[LogLine]:
    raw = reader.read(max_lines=BATCH_LINES, max_bytes=BATCH_BYTES)
    return [
        LogLine(
            time=_EPOCH + time_us * _MICROSECOND,
            stream=_STREAMS.get(stream, LogStream.STDOUT),
            text=text.decode(errors="replace"),
        )
        for time_us, stream, text in raw
    ]


def _is_job_id(job_id: str) -> bool:
    """Whether ``job_id`` could name a job; any other is unknown (and must not name a path)."""
    try:
        check_job_id(job_id)
    except BadInput:
        return False
    return True


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return jobdir.read_json(str(path))
    except (OSError, ValueError):
        logger.warning("unreadable %s", path, exc_info=True)
        return None


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _same_process(pid: int, start_time: object) -> bool:
    """Whether ``pid`` is alive and is the process that started at ``start_time``."""
    if not isinstance(start_time, int | float):
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(abs(process.create_time() - start_time) < _SAME_PROCESS_S)
    except psutil.Error:
        return False
