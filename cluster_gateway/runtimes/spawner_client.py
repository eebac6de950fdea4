"""The runtime's end of ``spawner.py``: launch it, ask it for supervisors, launch it again.

``Spawners.spawn`` is the one way a supervisor starts. It uses the current spawner, or
launches one and waits until it is ready; a spawner that died is launched again, with a
back-off when spawners keep failing so that a broken host does not launch an interpreter for
every job. Requests are one at a time (the answers would mix otherwise), over the event
loop's socket API; launching runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# The directory that holds the ``cluster_gateway`` package (see spawner.py).
_ROOT = str(Path(__file__).resolve().parents[2])
_BOOT = (
    f"import sys; sys.path.append({_ROOT!r}); "
    "from cluster_gateway.runtimes.spawner import main; sys.exit(main(sys.argv))"
)
READY_TIMEOUT_S = 10.0
# Spawners that fail before starting any supervisor (or cannot be launched) count in a row: the
# first is replaced at once, after the second the next launch waits this long, doubled for
# each further one, up to the cap. A spawner that started supervisors and then died is
# replaced at once.
RESTART_BACKOFF_S = 0.5
RESTART_BACKOFF_MAX_S = 30.0
# After killing a spawner that did not answer: how long a supervisor it forked may still take
# to answer for itself.
LATE_ANSWER_S = 0.5


class SpawnFailed(Exception):
    """No supervisor was started; the message says why, for the job's description."""


class _NothingStarted(Exception):
    """The spawner went away before it forked: asking another one starts the job once."""


class _Spawner:
    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.served = 0

    def alive(self) -> bool:
        return self.process.poll() is None


class Spawners:
    def __init__(
        self,
        log_path: Path,
        *,
        python: str = sys.executable,
        reply_timeout_s: float = 2.0,
    ) -> None:
        self._log_path = log_path
        self._python = python
        self._reply_timeout_s = reply_timeout_s
        self._current: _Spawner | None = None
        self._dropped: list[_Spawner] = []  # killed, not yet reaped
        self._lock = asyncio.Lock()
        self._failures = 0  # spawners in a row that failed before starting any supervisor
        self._launched_at = -RESTART_BACKOFF_MAX_S
        self._last_error = ""
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The pid of the current spawner, if it is alive."""
        spawner = self._current
        return spawner.process.pid if spawner is not None and spawner.alive() else None

    async def spawn(self, job_dir: Path) -> tuple[int, float]:
        """Start the supervisor of ``job_dir``: its pid and start time. Raises SpawnFailed."""
        async with self._lock:
            attempts = 0
            while True:
                attempts += 1
                spawner = await self._ready()
                try:
                    pid, start_time = await self._request(spawner, job_dir)
                except _NothingStarted as exc:
                    self._failed(spawner, str(exc))
                    if attempts < 2:
                        continue  # nothing was started: once more, with a new spawner
                    raise SpawnFailed(f"the supervisor spawner failed: {exc}") from None
                spawner.served += 1
                self._failures = 0
                return pid, start_time

    async def ensure(self) -> None:
        """Have a ready spawner, launching one unless the back-off says to wait."""
        async with self._lock:
            with contextlib.suppress(SpawnFailed):
                await self._ready()
            self._reap()

    async def close(self) -> None:
        """Close our end: the spawner exits on the EOF (the supervisors it started do not)."""
        async with self._lock:
            self._closed = True
            spawner, self._current = self._current, None
            if spawner is not None:
                spawner.sock.close()
                self._dropped.append(spawner)
            dropped, self._dropped = self._dropped, []
            for old in dropped:
                try:
                    await asyncio.to_thread(old.process.wait, 2.0)
                except subprocess.TimeoutExpired:
                    old.process.kill()
                    await asyncio.to_thread(old.process.wait)

    # --- internals ----------------------------------------------------------------------------

    async def _ready(self) -> _Spawner:
        if self._closed:
            raise SpawnFailed("the runtime is closed")
        spawner = self._current
        if spawner is not None:
            if spawner.alive():
                return spawner
            self._failed(spawner, f"it ended with {spawner.process.returncode}")
        wait = self._backoff() - (time.monotonic() - self._launched_at)
        if wait > 0:
            raise SpawnFailed(
                f"the supervisor spawner failed ({self._last_error}); "
                f"it is started again in {wait:.1f} s"
            )
        self._launched_at = time.monotonic()
        try:
            spawner = await self._launch()
        except (OSError, TimeoutError, _NothingStarted) as exc:
            self._failures += 1
            self._last_error = f"cannot start it: {exc or type(exc).__name__}"
            logger.warning("the supervisor spawner: %s", self._last_error)
            raise SpawnFailed(f"the supervisor spawner failed: {self._last_error}") from None
        self._current = spawner
        return spawner

    def _backoff(self) -> float:
        if self._failures < 2:
            return 0.0
        return min(RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_S * 2 ** (self._failures - 2))

    async def _launch(self) -> _Spawner:
        """Start ``spawner.py`` and wait until it is ready; only our socket's peer is passed.

        ``close_fds`` (the default) keeps every other fd of ours out of it, inheritable or
        not; it runs in its own session, so a terminal's Ctrl-C is not for it.
        """
        ours, theirs = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )
        try:
            process = await asyncio.to_thread(self._popen, theirs.fileno())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        spawner = _Spawner(process, ours)
        try:
            loop = asyncio.get_running_loop()
            message = await asyncio.wait_for(loop.sock_recv(ours, 64), READY_TIMEOUT_S)
            if message != b"ready":
                raise _NothingStarted(f"it ended before it was ready ({message!r})")
        except BaseException:
            self._drop(spawner)
            raise
        logger.info("supervisor spawner %d ready", process.pid)
        return spawner

    def _popen(self, fd: int) -> subprocess.Popen[bytes]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        with open(os.open(self._log_path, flags, 0o600), "ab") as log:
            return subprocess.Popen(
                [self._python, "-I", "-S", "-c", _BOOT, str(fd)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(fd,),
                env={},
                start_new_session=True,
            )

    async def _request(self, spawner: _Spawner, job_dir: Path) -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(spawner.sock, os.fsencode(job_dir))
        except OSError as exc:  # EPIPE: it is gone, and it got nothing
            raise _NothingStarted(f"it is gone ({exc})") from exc
        try:
            # asyncio.timeout, not wait_for: no task of its own on the path of every job start.
            async with asyncio.timeout(self._reply_timeout_s):
                reply = await loop.sock_recv(spawner.sock, 4096)
        except TimeoutError:
            # Stuck: kill it. A supervisor it forked still answers; EOF means none was.
            with contextlib.suppress(ProcessLookupError):
                spawner.process.kill()
            try:
                reply = await asyncio.wait_for(loop.sock_recv(spawner.sock, 4096), LATE_ANSWER_S)
            except ConnectionResetError:
                # It died with our request unread (the kernel says so with ECONNRESET).
                reply = b""
            except (TimeoutError, OSError):
                raise SpawnFailed(
                    f"the supervisor spawner did not answer in {self._reply_timeout_s} s"
                ) from None
            finally:
                self._drop(spawner)
            if not reply:
                raise _NothingStarted(f"no answer in {self._reply_timeout_s} s") from None
        except OSError as exc:  # EOF's twin: ECONNRESET, it died with our request unread
            raise _NothingStarted(f"it is gone ({exc})") from exc
        if not reply:
            raise _NothingStarted("it ended")
        try:
            answer = json.loads(reply)
            if "error" in answer:
                raise SpawnFailed(str(answer["error"]))
            pid, start_time = answer["pid"], answer["start_time"]
            if not isinstance(pid, int) or not isinstance(start_time, int | float):
                raise ValueError(answer)
        except (ValueError, KeyError, TypeError):
            self._drop(spawner)  # not ours to guess at: no more of this spawner
            raise SpawnFailed(f"a garbled answer from the supervisor spawner: {reply!r}") from None
        return pid, float(start_time)

    def _failed(self, spawner: _Spawner, why: str) -> None:
        if spawner.served == 0:
            self._failures += 1
        self._last_error = why
        logger.warning("supervisor spawner %d failed: %s", spawner.process.pid, why)
        self._drop(spawner)

    def _drop(self, spawner: _Spawner) -> None:
        """Kill it (if need be) and forget it; it is reaped later."""
        if spawner is self._current:
            self._current = None
        spawner.sock.close()
        with contextlib.suppress(ProcessLookupError):
            spawner.process.kill()
        if spawner not in self._dropped:
            self._dropped.append(spawner)
        self._reap()

    def _reap(self) -> None:
        """Reap killed spawners that have ended (a zombie each until then)."""
        self._dropped = [spawner for spawner in self._dropped if spawner.alive()]
