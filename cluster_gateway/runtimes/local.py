"""Workloads as processes on this host, each under its own supervisor.

Every job has a directory ``<state_dir>/jobs/<job_id>/``; the files there (described in
``supervisor.py``) are the truth, so a control plane that restarts, or is killed, finds its
jobs again: the supervisors run in their own sessions and never depend on it. Supervisors
push ``<job_id> running|log|exited`` datagrams to one unix socket per state directory, which
wakes ``watch`` and ``logs`` at once; a slow poll catches what a lost datagram or a killed
supervisor would hide.

Supervisors are forked by a pre-started spawner process (``spawner.py``) that ``open`` starts,
which saves each job the start-up of an interpreter; when the spawner is not there (it died,
or could not start), ``start`` spawns the supervisor with ``posix_spawn`` as before, and the
spawner is started again in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from cluster_gateway.gateway import (
    ClusterCapacity,
    ExitReason,
    LogLine,
    LogStream,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
)
from cluster_gateway.runtimes import cgroups
from cluster_gateway.runtimes.base import Runtime, StateFeed, check_job_id
from glia.clock import utcnow
from glia.errors import BadInput, Conflict, NotFound

logger = logging.getLogger(__name__)

# ``python -I -S supervisor.py JOB_DIR`` would do, but a script is compiled on every run (5 ms
# here) while an imported module's bytecode is cached; so the supervisor is imported.
_SUPERVISOR_BOOT = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    "import supervisor; sys.exit(supervisor.main(sys.argv))"
)
_SPAWNER_BOOT = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    "import spawner; sys.exit(spawner.main(sys.argv))"
)
# How long ``open`` waits for the spawner to be ready (interpreter start-up: ~20 ms).
SPAWNER_READY_S = 5.0
# How long ``start`` waits for the spawner's answer; it blocks the event loop meanwhile, as
# posix_spawn does, so nothing can read the job's files before supervisor.json is written.
SPAWNER_REPLY_S = 2.0
# A spawner that failed is started again at most this often.
SPAWNER_RESTART_S = 1.0
READ_CHUNK = 1024 * 1024
# A follower re-reads at least this often even when no datagram comes.
FOLLOW_RECHECK_S = 1.0
# The same process has the same start time; a reused pid has another one (10 ms ticks).
_SAME_PROCESS_S = 0.005


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        logger.warning("unreadable %s", path, exc_info=True)
        return None
    return value if isinstance(value, dict) else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


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
        return abs(process.create_time() - start_time) < _SAME_PROCESS_S
    except psutil.Error:
        return False


class _SpawnerFailed(Exception):
    """The spawner started no supervisor: start it another way."""


class _Spawner:
    """The runtime's end of ``spawner.py``: one process and one ``SOCK_SEQPACKET`` socket."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.ready = False
        self.broken = False  # killed, or known to be of no further use

    @classmethod
    def launch(cls, log_path: Path) -> _Spawner:
        """Start ``spawner.py`` without waiting for it; only our end of the socket is passed.

        ``close_fds`` (the default) keeps our listening sockets and every other fd out of it,
        inheritable or not; it runs in its own session, so a terminal's Ctrl-C is not for it.
        """
        ours, theirs = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )
        try:
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _SPAWNER_BOOT, str(theirs.fileno())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    pass_fds=(theirs.fileno(),),
                    env={},
                    start_new_session=True,
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        return cls(process, ours)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    async def wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        message = await asyncio.wait_for(loop.sock_recv(self.sock, 64), timeout_s)
        self._check_ready(message)

    def poll_ready(self) -> bool:
        """Whether it is ready, without waiting; raises _SpawnerFailed if it never will be."""
        if not self.ready:
            try:
                message = self.sock.recv(64, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                if not self.alive():
                    raise _SpawnerFailed("the spawner ended before it was ready") from None
                return False
            self._check_ready(message)
        return True

    def _check_ready(self, message: bytes) -> None:
        if message != b"ready":
            raise _SpawnerFailed(f"the spawner ended before it was ready ({message!r})")
        self.ready = True

    def spawn(self, job_dir: Path) -> tuple[int, float]:
        """The pid and start time of a supervisor for ``job_dir``, forked by the spawner.

        Raises _SpawnerFailed when it is sure no supervisor was started; the spawner is of
        no further use then, except after an ``error`` answer.
        """
        self.sock.settimeout(SPAWNER_REPLY_S)
        try:
            self.sock.send(os.fsencode(job_dir))
        except OSError as exc:  # EPIPE: it is gone, and it got nothing
            raise _SpawnerFailed(f"the spawner is gone: {exc}") from exc
        try:
            reply = self.sock.recv(512)
        except TimeoutError:
            # Stuck: kill it. Its helper, if it forked one, still answers; EOF means none did.
            self.kill()
            self.sock.settimeout(0.5)
            try:
                reply = self.sock.recv(512)
            except OSError:
                reply = b""
            if not reply:
                raise _SpawnerFailed(f"no answer from the spawner in {SPAWNER_REPLY_S} s") from None
        except OSError as exc:
            raise _SpawnerFailed(f"the spawner is gone: {exc}") from exc
        finally:
            self.sock.setblocking(False)
        kind, _, rest = reply.decode(errors="replace").partition(" ")
        if kind == "ok":
            try:
                pid, start_time = rest.split()
                return int(pid), float(start_time)
            except ValueError:  # not ours to guess at: no more of this spawner
                self.kill()
                raise _SpawnerFailed(f"a garbled answer from the spawner: {reply!r}") from None
        if not reply:
            raise _SpawnerFailed("the spawner ended")
        raise _SpawnerFailed(f"the spawner could not start the supervisor: {rest or reply!r}")

    def kill(self) -> None:
        self.broken = True
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def close(self, timeout_s: float = 1.0) -> None:
        """Close our end; it exits on the EOF (the supervisors it started do not)."""
        self.sock.close()
        for _ in range(int(timeout_s / 0.002)):
            if not self.alive():
                return
            await asyncio.sleep(0.002)
        if self.alive():
            self.kill()
            self.process.wait()


class LocalRuntime(Runtime):
    def __init__(
        self,
        state_dir: Path,
        *,
        cgroup_root: Path | None = Path("/sys/fs/cgroup"),
        use_cgroups: bool = True,
        default_grace_s: float = 10.0,
        poll_interval_s: float = 1.0,
        use_spawner: bool = True,
    ) -> None:
        self._state_dir = state_dir
        self._jobs_dir = state_dir / "jobs"
        # Abstract socket names dodge the 108-byte limit of socket paths; the hash of the
        # state directory keeps runtimes on different state apart, in cgroups too.
        self._key = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:16]
        self._socket_name = f"glia-rt-{self._key}"
        self._cgroup_root = cgroup_root if use_cgroups else None
        self._default_grace_s = default_grace_s
        self._poll_interval_s = poll_interval_s
        self._layout: cgroups.Layout | None = None
        self._sock: socket.socket | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._known: dict[str, WorkloadState] = {}
        self._followers: dict[str, set[asyncio.Event]] = {}
        self._supervisors: set[int] = set()  # our children, reaped when they end
        self._use_spawner = use_spawner
        self._spawner: _Spawner | None = None
        self._spawner_launched_at = -SPAWNER_RESTART_S
        self._dropped_spawners: list[_Spawner] = []  # killed, to be reaped
        self._feed = StateFeed()

    @property
    def cgroups_usable(self) -> bool:
        """Whether limits are enforced with cgroups (else with rlimits); known after ``open``."""
        return self._layout is not None

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._sock is not None:
            return
        self._jobs_dir.mkdir(parents=True, exist_ok=True)
        if self._cgroup_root is not None:
            self._layout = cgroups.detect(str(self._cgroup_root))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
            sock.bind(b"\0" + self._socket_name.encode())
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"cannot serve {self._state_dir}: {exc}") from exc
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_datagrams)
        for job_dir in sorted(self._jobs_dir.iterdir()):
            if job_dir.is_dir():
                self._known[job_dir.name] = self._read_state(job_dir.name)
        if self._use_spawner and self._launch_spawner():
            assert self._spawner is not None
            try:
                await self._spawner.wait_ready(SPAWNER_READY_S)
            except (OSError, TimeoutError, _SpawnerFailed) as exc:
                self._drop_spawner(f"it did not get ready: {exc!r}")
        self._poll_task = asyncio.create_task(self._poll(), name=f"glia-rt-poll-{self._key}")

    async def close(self) -> None:
        """Stop listening; the workloads keep running."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._spawner is not None:
            spawner, self._spawner = self._spawner, None
            await spawner.close()
        self._feed.close()
        self._wake_followers(None)

    async def capacity(self) -> ClusterCapacity:
        return ClusterCapacity(
            cpu=float(psutil.cpu_count() or 1),
            memory_mb=psutil.virtual_memory().total // (1024 * 1024),
        )

    # --- workloads ----------------------------------------------------------------------------

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        if self._sock is None:
            raise RuntimeError("runtime is not open")
        check_job_id(spec.job_id)
        job_dir = self._jobs_dir / spec.job_id
        if job_dir.exists():
            return self._refresh(spec.job_id)
        if not spec.command:
            raise BadInput("empty command", fields={"command": "empty"})
        job_dir.mkdir()
        working_dir = spec.working_dir
        if working_dir is None:
            # A job that names no directory gets a scratch one of its own, not whatever
            # directory the control plane was started from; forget() removes it.
            scratch = job_dir / "work"
            scratch.mkdir()
            working_dir = str(scratch)
        cgroup = self._layout.job(f"{self._key}-{spec.job_id}") if self._layout else None
        _write_json(
            job_dir / "spec.json",
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
        try:
            pid, start_time = self._start_supervisor(job_dir)
        except (OSError, psutil.Error) as exc:
            logger.exception("cannot start the supervisor of %s", spec.job_id)
            _write_json(
                job_dir / "exit.json",
                {
                    "exit_code": None,
                    "signal": None,
                    "reason": ExitReason.START_FAILED.value,
                    "description": f"cannot start the supervisor: {exc}",
                    "finished_at": utcnow().isoformat(),
                },
            )
            return self._refresh(spec.job_id)
        _write_json(job_dir / "supervisor.json", {"pid": pid, "start_time": start_time})
        state = WorkloadState(spec.job_id, WorkloadPhase.PENDING)
        self._known[spec.job_id] = state
        self._feed.publish(state)
        return state

    def _start_supervisor(self, job_dir: Path) -> tuple[int, float]:
        """Start the supervisor of ``job_dir``: its pid and start time.

        Synchronous on purpose: the event loop must not read the job's files before
        supervisor.json is written (a running job without it would be taken for lost).
        """
        spawner = self._usable_spawner()
        if spawner is not None:
            try:
                return spawner.spawn(job_dir)
            except _SpawnerFailed as exc:
                if spawner.broken or not spawner.alive():
                    self._drop_spawner(str(exc))
                else:
                    logger.warning("%s; using posix_spawn", exc)
            finally:
                if spawner.broken and spawner is self._spawner:
                    self._drop_spawner("it did not answer in time")
        pid = self._spawn_supervisor(job_dir)
        return pid, psutil.Process(pid).create_time()

    def _usable_spawner(self) -> _Spawner | None:
        """The spawner if it is ready; else None, and one is started for later if none is."""
        if not self._use_spawner:
            return None
        spawner = self._spawner
        if spawner is None:
            self._launch_spawner()
            return None
        try:
            return spawner if spawner.poll_ready() else None
        except (OSError, _SpawnerFailed) as exc:
            self._drop_spawner(str(exc))
            return None

    def _launch_spawner(self) -> bool:
        """Start a spawner (not waiting for it), unless one was started a moment ago."""
        now = time.monotonic()
        if now - self._spawner_launched_at < SPAWNER_RESTART_S:
            return False
        self._spawner_launched_at = now
        try:
            self._spawner = _Spawner.launch(self._state_dir / "spawner.log")
        except OSError as exc:
            logger.warning("cannot start the supervisor spawner, using posix_spawn: %s", exc)
            return False
        return True

    def _drop_spawner(self, why: str) -> None:
        spawner, self._spawner = self._spawner, None
        if spawner is None:
            return
        logger.warning(
            "supervisor spawner %d failed (%s); using posix_spawn until it is restarted",
            spawner.pid,
            why,
        )
        spawner.kill()
        spawner.sock.close()
        if spawner.process.poll() is None:
            self._dropped_spawners.append(spawner)  # reaped by _reap

    def _spawn_supervisor(self, job_dir: Path) -> int:
        # posix_spawn rather than subprocess: it can start the supervisor with SIGTERM
        # blocked, so a stop that races its start-up waits for its handler. Nothing connects
        # it to us: own session, /dev/null, its stderr in the job directory.
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", "-c", _SUPERVISOR_BOOT, str(job_dir)],
            {},
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                (
                    os.POSIX_SPAWN_OPEN,
                    2,
                    str(job_dir / "supervisor.log"),
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                    0o644,
                ),
            ],
            setsid=True,
            setsigmask={signal.SIGTERM},
        )
        self._supervisors.add(pid)
        return pid

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None:
        state = self._refresh(job_id)
        if state.phase == WorkloadPhase.MISSING:
            raise NotFound(f"workload {job_id} not found")
        if state.phase == WorkloadPhase.EXITED:
            return
        job_dir = self._jobs_dir / job_id
        _write_json(job_dir / "stop.json", {"grace_s": grace_s})
        supervisor = _read_json(job_dir / "supervisor.json") or {}
        pid = supervisor.get("pid")
        if isinstance(pid, int) and _same_process(pid, supervisor.get("start_time")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                return
        self._refresh(job_id)  # the supervisor is gone: LOST, and its orphans killed

    async def state(self, job_id: str) -> WorkloadState:
        return self._refresh(job_id)

    async def list_workloads(self) -> list[WorkloadState]:
        if not self._jobs_dir.is_dir():
            return []
        return [
            self._refresh(job_dir.name)
            for job_dir in sorted(self._jobs_dir.iterdir())
            if job_dir.is_dir()
        ]

    def watch(self) -> AsyncIterator[WorkloadState]:
        return self._feed.subscribe()

    async def logs(
        self, job_id: str, *, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[list[LogLine]]:
        job_dir = self._jobs_dir / job_id
        if not job_dir.is_dir():
            raise NotFound(f"workload {job_id} not found")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        woken = asyncio.Event()
        self._followers.setdefault(job_id, set()).add(woken)
        reader = _LogReader(job_dir / "output.log", since)
        try:
            while True:
                woken.clear()
                # Checked before reading: the supervisor writes exit.json after the last line.
                ended = (job_dir / "exit.json").exists() or not job_dir.is_dir()
                while (batch := reader.read()) is not None:
                    if batch:
                        yield batch
                if ended or not follow:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), FOLLOW_RECHECK_S)
        finally:
            reader.close()
            followers = self._followers.get(job_id)
            if followers is not None:
                followers.discard(woken)
                if not followers:
                    del self._followers[job_id]

    async def forget(self, job_id: str) -> None:
        state = self._refresh(job_id)
        if state.phase == WorkloadPhase.MISSING:
            return
        if state.phase != WorkloadPhase.EXITED:
            raise Conflict(f"workload {job_id} has not ended")
        shutil.rmtree(self._jobs_dir / job_id, ignore_errors=True)
        self._known.pop(job_id, None)
        self._wake_followers(job_id)

    # --- state from the files -----------------------------------------------------------------

    def _refresh(self, job_id: str) -> WorkloadState:
        """Read the state of ``job_id`` and publish it if its phase changed."""
        state = self._read_state(job_id)
        old = self._known.get(job_id)
        if state.phase == WorkloadPhase.MISSING:
            self._known.pop(job_id, None)
            return state
        self._known[job_id] = state
        if old is not None and old.phase == state.phase:
            return state
        started = state.started_at is not None
        if (
            state.phase == WorkloadPhase.EXITED
            and started
            and (old is None or old.phase == WorkloadPhase.PENDING)
        ):
            # It ran and ended between two looks: say so, in order.
            self._feed.publish(
                replace(
                    state,
                    phase=WorkloadPhase.RUNNING,
                    exit_code=None,
                    reason=None,
                    description=None,
                    finished_at=None,
                )
            )
        self._feed.publish(state)
        return state

    def _read_state(self, job_id: str) -> WorkloadState:
        job_dir = self._jobs_dir / job_id
        if not job_dir.is_dir():
            return WorkloadState(job_id, WorkloadPhase.MISSING)
        child = _read_json(job_dir / "child.json")
        started_at = _parse_time(child.get("started_at")) if child else None
        exited = _read_json(job_dir / "exit.json")
        if exited is None:
            supervisor = _read_json(job_dir / "supervisor.json") or {}
            pid = supervisor.get("pid")
            if isinstance(pid, int) and _same_process(pid, supervisor.get("start_time")):
                phase = WorkloadPhase.RUNNING if child else WorkloadPhase.PENDING
                return WorkloadState(job_id, phase, started_at=started_at)
            # It may have written exit.json and ended since the first look.
            exited = _read_json(job_dir / "exit.json") or self._declare_lost(job_dir, child)
        try:
            reason: ExitReason | None = ExitReason(str(exited.get("reason")))
        except ValueError:
            reason = ExitReason.LOST
        exit_code = exited.get("exit_code")
        description = exited.get("description")
        return WorkloadState(
            job_id,
            WorkloadPhase.EXITED,
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
        spec = _read_json(job_dir / "spec.json") or {}
        if isinstance(spec.get("cgroup"), dict):
            with contextlib.suppress(ValueError, KeyError):
                cgroups.JobCgroup.from_json(spec["cgroup"]).remove(timeout_s=0.5)
        exited = {
            "exit_code": None,
            "signal": None,
            "reason": ExitReason.LOST.value,
            "description": "the supervisor ended without recording the exit",
            "finished_at": utcnow().isoformat(),
        }
        _write_json(job_dir / "exit.json", exited)
        self._wake_followers(job_dir.name)
        return exited

    # --- notifications ------------------------------------------------------------------------

    def _on_datagrams(self, *, _max: int = 1000) -> None:
        if self._sock is None:
            return
        changed: set[str] = set()
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
                changed.add(job_id)
                logged.add(job_id)
        for job_id in logged:
            self._wake_followers(job_id)
        for job_id in changed:
            try:
                check_job_id(job_id)
                self._refresh(job_id)
            except Exception:
                logger.exception("cannot refresh %s", job_id)
        if changed:
            self._reap()

    def _wake_followers(self, job_id: str | None) -> None:
        if job_id is None:
            for followers in self._followers.values():
                for event in followers:
                    event.set()
        else:
            for event in self._followers.get(job_id, ()):
                event.set()

    def _reap(self) -> None:
        self._dropped_spawners = [s for s in self._dropped_spawners if s.process.poll() is None]
        for pid in list(self._supervisors):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._supervisors.discard(pid)

    def _check_spawner(self) -> None:
        """Notice a spawner that died while idle, and start another before a job needs it."""
        if not self._use_spawner:
            return
        if self._spawner is not None and not self._spawner.alive():
            self._drop_spawner(f"it ended with {self._spawner.process.returncode}")
        if self._spawner is None:
            self._launch_spawner()

    async def _poll(self) -> None:
        """The safety net for lost datagrams and supervisors killed without a word."""
        while True:
            await asyncio.sleep(self._poll_interval_s)
            self._reap()
            self._check_spawner()
            for job_id, state in list(self._known.items()):
                if state.phase == WorkloadPhase.EXITED:
                    continue
                try:
                    self._refresh(job_id)
                except Exception:
                    logger.exception("cannot refresh %s", job_id)


class _LogReader:
    """Reads ``output.log`` onwards from where it stopped, whole lines only.

    ``read()`` returns None at the end of what is there now, else a batch (empty when every
    line in it was before ``since``).
    """

    def __init__(self, path: Path, since: datetime | None) -> None:
        self._path = path
        self._since = since
        self._file: Any = None
        self._rest = b""
        self._stamp = b""
        self._time = datetime.min.replace(tzinfo=UTC)

    def read(self) -> list[LogLine] | None:
        if self._file is None:
            try:
                self._file = self._path.open("rb")
            except FileNotFoundError:
                return None
        data = self._file.read(READ_CHUNK)
        if not data:
            return None
        *raw_lines, self._rest = (self._rest + data).split(b"\n")
        lines = []
        for raw in raw_lines:
            line = self._parse(raw)
            if line is not None and (self._since is None or line.time >= self._since):
                lines.append(line)
        return lines

    def _parse(self, raw: bytes) -> LogLine | None:
        parts = raw.split(b" ", 2)
        if len(parts) != 3:
            return None
        stamp, tag, text = parts
        if stamp != self._stamp:  # a read batch shares one time stamp
            try:
                self._time = datetime.fromisoformat(stamp.decode())
            except ValueError:
                return None
            self._stamp = stamp
        stream = LogStream.STDERR if tag == b"e" else LogStream.STDOUT
        return LogLine(self._time, stream, text.decode(errors="replace"))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
