"""The wake-up datagrams from supervisors to ``LocalRuntime``: ``<job_id> running|log|exited``.

They are only a wake-up call (the files are the truth), yet a job must not be able to send
them: one that floods the socket would hide the real ones, and no datagram of a job may say
anything about any job. So the socket is a file, ``<state_dir>/notify.sock``, in the runtime's
0700 state dir that no sandbox shows (an abstract socket would be reachable from every network
namespace that shares the host's), and the runtime reads each sender's credentials
(``SO_PASSCRED``): it accepts a datagram only from its own uid (supervisors run as the
runtime's user, jobs under their own uids) and from the pid of the supervisor of the job it
names (see ``LocalRuntime._on_datagrams``).

Both ends address the socket through a descriptor of its directory
(``/proc/self/fd/<fd>/notify.sock``): a socket path has at most 107 bytes, a state dir may be
longer. The runtime holds an exclusive lock on that descriptor while it listens: one runtime
per state dir.

Standard library only: the supervisor sends (see ``spawner.py`` on why).
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct

SOCKET = "notify.sock"
_CREDENTIALS = struct.Struct("iII")  # struct ucred: pid, uid, gid
MAX_DATAGRAM = 512


def _open_dir(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_DIRECTORY | os.O_CLOEXEC)


class Listener:
    """The runtime's end: bound in ``state_dir``, non-blocking, credentials on."""

    def __init__(self, state_dir: str) -> None:
        self.dir_fd = _open_dir(state_dir, os.O_RDONLY)
        self.sock: socket.socket | None = None
        try:
            try:
                fcntl.flock(self.dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError(f"another runtime serves {state_dir}") from None
            address = f"/proc/self/fd/{self.dir_fd}/{SOCKET}"
            try:  # left by a runtime that was killed; the lock says none serves it now
                os.unlink(address)
            except FileNotFoundError:
                pass
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock = sock
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind(address)
            os.chmod(address, 0o600)
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        if self.sock is None:
            raise ValueError("closed")
        return self.sock.fileno()

    def receive(self, limit: int) -> list[tuple[int, int, str, str]]:
        """Up to ``limit`` waiting datagrams: ``(pid, uid, job_id, event)`` each. Raises
        OSError when the socket fails."""
        received: list[tuple[int, int, str, str]] = []
        if self.sock is None:
            return received
        space = socket.CMSG_SPACE(_CREDENTIALS.size)
        for _ in range(limit):
            try:
                data, ancillary, _, _ = self.sock.recvmsg(MAX_DATAGRAM, space)
            except (BlockingIOError, InterruptedError):
                break
            pid, uid = -1, -1
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid, uid, _ = _CREDENTIALS.unpack(value[: _CREDENTIALS.size])
            job_id, _, event = data.decode(errors="replace").rpartition(" ")
            received.append((pid, uid, job_id, event))
        return received

    def close(self) -> None:
        if self.sock is not None:
            try:
                os.unlink(f"/proc/self/fd/{self.dir_fd}/{SOCKET}")
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        if self.dir_fd >= 0:
            os.close(self.dir_fd)  # releases the lock
            self.dir_fd = -1


class Notifier:
    """A supervisor's end: fire-and-forget; every error is ignored (the runtime may be down)."""

    def __init__(self, socket_path: object, job_id: str) -> None:
        self.prefix = job_id.encode() + b" "
        self.sock: socket.socket | None = None
        self.dir_fd = -1
        self.address = ""
        if not isinstance(socket_path, str) or not socket_path:
            return
        directory, name = os.path.split(socket_path)
        try:
            self.dir_fd = _open_dir(directory, os.O_PATH)
            self.address = f"/proc/self/fd/{self.dir_fd}/{name}"
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.setblocking(False)
        except OSError:
            self.sock = None

    def send(self, event: str) -> None:
        if self.sock is not None:
            try:
                self.sock.sendto(self.prefix + event.encode(), self.address)
            except OSError:
                pass
