"""Exec and port-forward for ``LocalRuntime`` jobs: a command inside a running job, and a TCP
connection to a port of a job.

A command exec'd into a job is confined as the job is (``sandbox.py``), step by step:

1. ``/bin/sh`` (as the runtime's user, root where jobs have uids of their own, with an empty
   environment) writes its own pid into each of the job's cgroup directories, so everything
   after runs under the job's limits and is counted with it;
2. ``setsid`` (util-linux) makes it a session of its own, with a PTY as its controlling
   terminal (``-c``) for ``-t``: closing the connection kills that session;
3. ``nsenter`` (util-linux) enters the namespaces of the sandbox's pid 1 (mount, uts, ipc,
   net, pid, cgroup; user too where the sandbox has one), its root, and the job's working
   directory as the sandbox shows it (``--wdns``); entering the pid namespace forks, and
   nsenter reports its child's exit as its own;
4. ``setpriv`` switches to the job's uid and gid exactly as the job's own start does (no
   groups, no capabilities, no_new_privs);
5. a few lines of Python (`_ENV_HELPER`, as the job's uid, in the sandbox) read the job's
   environment from a pipe and execute the command with it.

The job's environment reaches the command only at the last step: the earlier ones run with
the runtime's rights, and a variable such as LD_PRELOAD (the job's owner chooses them) must
not reach a program run as root; nor may it travel in an argv, which ``ps`` shows to every
user of the host.

A job without a sandbox gets steps 1, 2, 4 and 5 in its working directory. Nothing here runs
on the event loop but the reads and writes of pipes; ``/proc`` is read in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import sys
import termios
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cluster_gateway.exec import CHUNK_BYTES, QUEUED_CHUNKS, ExecStream
from cluster_gateway.runtimes import jobdir, jobstate
from cluster_gateway.runtimes.sandbox import Sandbox
from glia.errors import BadInput, Conflict, Unavailable

# Writes its pid to the cgroup.procs of each of its first N arguments, then executes the rest.
_JOIN_CGROUP = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 125; '
    'shift; n=$((n - 1)); done; exec "$@"'
)
# Reads the job's environment (JSON) from the fd argv[1], then executes argv[2:] with it.
_ENV_HELPER = (
    "import json, os, sys\n"
    "fd = int(sys.argv[1])\n"
    "data = b''\n"
    "while chunk := os.read(fd, 65536):\n"
    "    data += chunk\n"
    "os.close(fd)\n"
    "try:\n"
    "    os.execvpe(sys.argv[2], sys.argv[2:], json.loads(data))\n"
    "except OSError as exc:\n"
    "    print(f'glia exec: {sys.argv[2]}: {exc.strerror}', file=sys.stderr)\n"
    "    os._exit(126 if exc.errno == 13 else 127)\n"
)
# After the command's main process ended: how long its outputs may stay open (a child it
# left behind holds them) before its session is killed.
DRAIN_S = 1.0
MAX_ARGS = 1024
MAX_TERMINAL = 10_000
CLONE_NEWNET = 0x40000000
# What a tunnelled connection may hold unread from the job (reads pause past twice this):
# large, so that a fast stream crosses in few frames.
TUNNEL_BUFFER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class JobProcess:
    """What exec and port-forward need of a running job, from its files."""

    job_id: str
    env: dict[str, str]
    working_dir: str  # as the job sees it (in its sandbox), else the host's path
    host_working_dir: str
    uid: int | None
    gid: int | None
    cgroup_dirs: list[str] = field(default_factory=list)
    sandbox: Sandbox | None = None
    pid: int | None = None  # the sandbox's pid 1 (whose namespaces to enter)

    @property
    def own_network(self) -> bool:
        """Whether the job has a network namespace of its own (else the host's)."""
        return self.sandbox is not None and not self.sandbox.network


def read_job_process(job_dir: Path) -> JobProcess:
    """The running job of ``job_dir``; Conflict when it is not running. Blocking."""
    spec = jobstate.load(job_dir / jobdir.SPEC) or {}
    child = jobstate.load(job_dir / jobdir.CHILD)
    job_id = job_dir.name
    if child is None or (job_dir / jobdir.EXIT).exists():
        raise Conflict(f"job {job_id} is not running")
    pgid = child.get("pgid")
    if not isinstance(pgid, int) or not jobstate.same_process(pgid, child.get("start_time")):
        raise Conflict(f"job {job_id} is not running")
    sandbox = Sandbox.from_json(spec["sandbox"]) if spec.get("sandbox") else None
    host_dir = str(spec.get("working_dir") or "")
    scratch = spec.get("scratch") is True
    cgroup = spec.get("cgroup")
    dirs: list[str] = []
    if isinstance(cgroup, dict):
        from cluster_gateway.runtimes.cgroups import JobCgroup

        dirs = [d for d in JobCgroup.from_json(cgroup).dirs if os.path.isdir(d)]
    env = spec.get("env")
    return JobProcess(
        job_id=job_id,
        env={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
        working_dir=Sandbox.working_dir(host_dir, scratch=scratch) if sandbox else host_dir,
        host_working_dir=host_dir,
        uid=spec.get("uid") if isinstance(spec.get("uid"), int) else None,
        gid=spec.get("gid") if isinstance(spec.get("gid"), int) else None,
        cgroup_dirs=dirs,
        sandbox=sandbox,
        pid=pgid if sandbox is not None else None,
    )


async def ready(job: JobProcess, *, within: float = 10.0) -> None:
    """Wait until the job's sandbox is made: its pid 1 makes the mounts, then forks the
    command (until then, its namespaces are half-built). Conflict after ``within``."""
    if job.pid is None:
        return
    path = f"/proc/{job.pid}/task/{job.pid}/children"
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            if (await asyncio.to_thread(jobdir.read_bytes, path)).strip():
                return
        except OSError:
            raise Conflict(f"job {job.job_id} is not running") from None
        if asyncio.get_running_loop().time() > deadline:
            raise Conflict(f"job {job.job_id} is still starting")
        await asyncio.sleep(0.02)


def command_line(job: JobProcess, command: Sequence[str], *, tty: bool, env_fd: int) -> list[str]:
    """The argv of steps 1 to 5 (the module docstring) for ``command``; the helper reads
    the environment from ``env_fd``."""
    setsid = _tool("setsid")
    args = ["/bin/sh", "-c", _JOIN_CGROUP, "sh", str(len(job.cgroup_dirs)), *job.cgroup_dirs]
    inside = job.sandbox is not None and job.pid is not None
    args += [setsid, "-c"] if tty and not inside else [setsid]
    if inside:
        args += [_tool("nsenter"), f"--target={job.pid}"]
        args += ["--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup"]
        if os.geteuid() != 0:  # the sandbox has a user namespace (sandbox.py)
            args += ["--user", "--preserve-credentials"]
        args += ["--root", f"--wdns={job.working_dir}"]
        if tty:
            # The terminal's session inside the job's pid namespace: a shell hands the
            # terminal back to its session's group when it ends, which must be one it sees.
            args += [setsid, "-c"]
    if job.uid is not None:
        setpriv = (job.sandbox.setpriv if job.sandbox else None) or _tool("setpriv")
        gid = job.gid if job.gid is not None else job.uid
        args += [
            setpriv, f"--reuid={job.uid}", f"--regid={gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
        ]  # fmt: skip
    return [*args, sys.executable, "-I", "-S", "-c", _ENV_HELPER, str(env_fd), *command]


def _tool(name: str) -> str:
    found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if found is None:
        raise Unavailable(f"exec needs {name} (util-linux), which this host lacks")
    return found


def check_command(command: Sequence[str], rows: int | None, cols: int | None) -> None:
    if not command or len(command) > MAX_ARGS:
        raise BadInput(
            f"give a command of 1 to {MAX_ARGS} arguments", fields={"command": "empty or long"}
        )
    if any("\0" in arg for arg in command):
        raise BadInput("an argument holds a NUL byte", fields={"command": "NUL byte"})
    for name, value in (("rows", rows), ("cols", cols)):
        if value is not None and not 0 < value <= MAX_TERMINAL:
            raise BadInput(f"{name} must be 1 to {MAX_TERMINAL}", fields={name: "out of range"})


class LocalExec:
    """An `ExecSession` of a command run as `command_line` says."""

    def __init__(self, process: asyncio.subprocess.Process, master: int | None) -> None:
        self._process = process
        self._master = master  # the PTY's master, with -t
        self._queue: asyncio.Queue[tuple[ExecStream, bytes] | None] = asyncio.Queue(QUEUED_CHUNKS)
        self._readers: list[asyncio.Task[None]] = []
        self._open_outputs = 0
        self._closed = False
        self._exit: int | None = None

    @classmethod
    async def start(
        cls,
        job: JobProcess,
        command: Sequence[str],
        *,
        tty: bool,
        rows: int | None = None,
        cols: int | None = None,
    ) -> LocalExec:
        check_command(command, rows, cols)
        env_r, env_w = os.pipe()
        argv = command_line(job, command, tty=tty, env_fd=env_r)
        master = slave = None
        try:
            if tty:
                master, slave = os.openpty()
                if rows and cols:
                    _set_size(master, rows, cols)
                os.set_blocking(master, False)
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=slave if tty else asyncio.subprocess.PIPE,
                stdout=slave if tty else asyncio.subprocess.PIPE,
                stderr=slave if tty else asyncio.subprocess.PIPE,
                cwd="/" if job.pid is not None else job.host_working_dir,
                env={"PATH": "/usr/bin:/bin"},
                pass_fds=(env_r,),
            )
        except BaseException:
            for fd in (env_w, master):
                if fd is not None:
                    os.close(fd)
            raise
        finally:
            os.close(env_r)
            if slave is not None:
                os.close(slave)
        session = cls(process, master)
        data = json.dumps(job.env).encode()
        session._readers.append(asyncio.create_task(_write_all(env_w, data)))
        if master is not None:
            session._open_outputs = 1
            session._readers.append(asyncio.create_task(session._read_pty(master)))
        else:
            session._open_outputs = 2
            for stream, which in (
                (process.stdout, ExecStream.STDOUT),
                (process.stderr, ExecStream.STDERR),
            ):
                session._readers.append(asyncio.create_task(session._read_pipe(stream, which)))
        return session

    async def _read_pipe(self, stream: asyncio.StreamReader | None, which: ExecStream) -> None:
        try:
            while stream is not None and (chunk := await stream.read(CHUNK_BYTES)):
                await self._queue.put((which, chunk))
        finally:
            await self._output_closed()

    async def _read_pty(self, master: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    chunk = os.read(master, CHUNK_BYTES)
                except BlockingIOError:
                    readable = loop.create_future()
                    loop.add_reader(master, readable.set_result, None)
                    try:
                        await readable
                    finally:
                        loop.remove_reader(master)
                    continue
                except OSError as exc:  # EIO: every slave end is closed
                    if exc.errno != errno.EIO:
                        raise
                    break
                if not chunk:
                    break
                await self._queue.put((ExecStream.STDOUT, chunk))
        finally:
            await self._output_closed()

    async def _output_closed(self) -> None:
        self._open_outputs -= 1
        if self._open_outputs == 0:
            await self._queue.put(None)

    async def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        drain = asyncio.ensure_future(self._drained())
        try:
            while True:
                get = asyncio.ensure_future(self._queue.get())
                done, _ = await asyncio.wait({get, drain}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    # The main process ended and what it left holds the outputs: end them.
                    await self._kill_session()
                    drain = asyncio.ensure_future(asyncio.sleep(3600))
                    continue
                item = get.result()
                if item is None:
                    return
                yield item
        finally:
            drain.cancel()

    async def _drained(self) -> None:
        await self.wait()
        await asyncio.sleep(DRAIN_S)

    async def write(self, data: bytes) -> None:
        if self._master is not None:
            await _write_fd(self._master, data)
        elif self._process.stdin is not None and not self._process.stdin.is_closing():
            self._process.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self._process.stdin.drain()

    async def close_stdin(self) -> None:
        if self._master is not None:
            await _write_fd(self._master, b"\x04")  # the terminal's end of file
        elif self._process.stdin is not None:
            self._process.stdin.close()

    async def resize(self, rows: int, cols: int) -> None:
        check_command(["-"], rows, cols)
        if self._master is not None:
            _set_size(self._master, rows, cols)

    async def wait(self) -> int:
        if self._exit is None:
            code = await self._process.wait()
            self._exit = 128 - code if code < 0 else code
        return self._exit

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._kill_session()
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        await self._process.wait()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._master is not None:
            os.close(self._master)
            self._master = None

    async def _kill_session(self) -> None:
        await asyncio.to_thread(kill_session, self._process.pid)


def kill_session(leader: int) -> None:
    """SIGKILL every process of the sessions an exec made (``leader``'s, and the terminal's
    inside the job's pid namespace, whose leader is among ``leader``'s descendants), wherever
    they are now. A process that made a session of its own escapes, as from a terminal."""
    table: dict[int, tuple[int, int]] = {}  # pid: (parent, session)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = jobdir.read_bytes(f"/proc/{entry}/stat")
            fields = stat[stat.rindex(b")") + 2 :].split()
            table[int(entry)] = (int(fields[1]), int(fields[3]))
        except (OSError, ValueError, IndexError):
            continue
    sessions = {leader}
    parents = {leader}
    while True:
        children = {pid for pid, (ppid, _) in table.items() if ppid in parents} - parents
        if not children:
            break
        parents |= children
        sessions |= {table[pid][1] for pid in children}
    for pid, (_, sid) in table.items():
        if sid in sessions and pid != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def _write_fd(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_writer(fd)
            continue
        except OSError:
            return  # the terminal is gone
        view = view[written:]


async def _write_all(fd: int, data: bytes) -> None:
    """Hand the helper the job's environment, then close its pipe."""
    os.set_blocking(fd, False)
    try:
        await _write_fd(fd, data)
    finally:
        os.close(fd)


# --- a terminal job's input (terminal.py) ----------------------------------------------------


async def write_stdin(job_dir: Path, data: bytes) -> None:
    """Hand ``data`` to the terminal of the ``glia run -t`` job of ``job_dir``: Conflict for
    a job without one, or not running. Waits while the job has not read what came before."""
    from cluster_gateway.runtimes.terminal import STDIN_FIFO

    path = job_dir / STDIN_FIFO
    try:
        fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Conflict(
            f"job {job_dir.name} has no terminal: run it with glia run -t to give it input"
        ) from None
    except OSError as exc:  # ENXIO: nobody reads it, the job has ended
        if exc.errno != errno.ENXIO:
            raise
        raise Conflict(f"job {job_dir.name} is not running") from None
    try:
        await _write_fd(fd, data)
    finally:
        os.close(fd)


async def resize_terminal(job_dir: Path, rows: int, cols: int) -> None:
    """Set the size of the terminal of the ``glia run -t`` job of ``job_dir`` (its processes
    get SIGWINCH): Conflict for a job without one, or not running."""
    from cluster_gateway.runtimes.terminal import WINSIZE, WINSIZE_FIFO

    check_command(["-"], rows, cols)
    path = job_dir / WINSIZE_FIFO
    try:
        fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Conflict(f"job {job_dir.name} has no terminal: run it with glia run -t") from None
    except OSError as exc:  # ENXIO: nobody reads it, the job has ended
        if exc.errno != errno.ENXIO:
            raise
        raise Conflict(f"job {job_dir.name} is not running") from None
    try:
        os.write(fd, WINSIZE.pack(rows, cols))  # one record: never split, never partial
    except BlockingIOError:
        pass  # 16,000 sizes wait unread: the supervisor takes the last, this one is moot
    finally:
        os.close(fd)


# --- port-forward ----------------------------------------------------------------------------


async def connect(job: JobProcess, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to ``port`` of the job: on the loopback of its network namespace when
    it has one of its own, else on the host's loopback (which it shares)."""
    if not 0 < port < 65536:
        raise BadInput("a port is 1 to 65535", fields={"port": "out of range"})
    if job.own_network and job.pid is not None:
        sock = await asyncio.to_thread(_socket_in_namespace, job.pid)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise Unavailable(
            f"nothing answers on port {port} of job {job.job_id}: {exc.strerror or exc}"
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return await asyncio.open_connection(sock=sock, limit=TUNNEL_BUFFER_BYTES)


def _socket_in_namespace(pid: int) -> socket.socket:
    """A socket of ``pid``'s network namespace: made by this (worker) thread after it entered
    that namespace, which it then leaves. A socket keeps the namespace it was made in."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            number = ctypes.get_errno()
            raise Unavailable(f"cannot enter the job's network: {os.strerror(number)}")
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:  # never leave a worker thread there
                os.abort()
    finally:
        os.close(own)
        os.close(target)
