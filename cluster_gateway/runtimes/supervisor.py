"""The per-job supervisor of ``LocalRuntime``: ``python -I -S supervisor.py <job_dir>``.

Usually it is not started like that but forked, already imported, by ``spawner.py``, which
calls ``main`` in a child set up as that command line would be (own session, /dev/null,
stderr to ``supervisor.log``, SIGTERM blocked); the command line is the fallback.

It runs the job's command in its own session and cgroup, appends the output to
``output.log``, enforces the stop grace and the life span, and writes ``exit.json`` when the
job ends. It outlives the control plane: the files in the job directory are the truth, and the
datagrams it sends to the runtime (``<job_id> running|log|exited``) are only a wake-up call.

Start-up time is what the platform's submit → running latency is made of, so this file imports
only modules that are built into the interpreter or plain C extensions: ``_signal``,
``_socket``, ``select`` and ``_json`` instead of ``signal``, ``socket``, ``selectors`` and
``json`` (those pull in ``enum`` and ``re``: 32 ms to start instead of 13 ms here), and it
forks the child itself instead of importing ``subprocess``. The cgroup code is the runtime's
own ``cgroups.py``, imported from this file's directory.

Files in the job directory (all JSON written to a temporary name, then renamed):
- ``spec.json`` (written by the runtime): command, env, working_dir, resources, life_span_s,
  grace_s, notify_socket, cgroup;
- ``stop.json`` (runtime, before it sends SIGTERM): ``{"grace_s": ...}``;
- ``child.json``: pid, pgid, started_at, start_time (psutil's ``create_time()``: tells the
  process from a later one with the same pid);
- ``output.log``: ``<UTC time, microseconds, Z> <o|e> <text>`` lines;
- ``exit.json``: exit_code, signal, reason, description, finished_at.
"""

from __future__ import annotations

import _socket
import os
import select
import sys
import time

try:
    import _json
except ImportError:  # not CPython: the slow way
    _json = None  # type: ignore[assignment]

TYPE_CHECKING = False  # mypy treats this name as true; avoids importing typing at run time
if TYPE_CHECKING:
    import signal as _signal  # the same names, with types

    from cluster_gateway.runtimes import cgroups
else:
    import _signal

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cgroups

    del sys.path[0]

MAX_LINE = 64 * 1024
READ_SIZE = 64 * 1024
# After the main process exits, its process group is killed; wait this long for the pipes.
DRAIN_S = 2.0

# ExitReason values of cluster_gateway.gateway, spelled out to keep this file import-free.
COMPLETED = "Completed"
ERROR = "Error"
OOM_KILLED = "OOMKilled"
KILLED = "Killed"
USER_REQUESTED = "UserRequested"
LIFE_SPAN_ENDED = "LifeSpanEnded"
LOST = "Lost"
START_FAILED = "StartFailed"


# --- JSON without the json package -----------------------------------------------------------


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float


def load_json(path: str) -> dict[str, object]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if _json is None:
        import json

        value = json.loads(text)
    else:
        scanner = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]
        value, _ = scanner(text.strip(), 0)
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a JSON object")
    return value


def dump_json(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if _json is None:
            import json

            return json.dumps(value)
        return str(_json.encode_basestring_ascii(value))
    if isinstance(value, dict):
        items = (f"{dump_json(str(k))}: {dump_json(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dump_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def write_json(path: str, value: dict[str, object]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(dump_json(value))
    os.replace(tmp, path)


# --- small helpers ----------------------------------------------------------------------------


def utc_iso(t: float) -> str:
    """``2024-05-01T12:00:00.123456Z``; datetime.fromisoformat reads it back."""
    micros = int(t * 1_000_000) % 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{micros:06d}Z"


def start_time(pid: int) -> float:
    """When the process started, in seconds since the epoch: psutil's ``create_time()``."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    ticks = int(data[data.rfind(b")") + 2 :].split()[19])
    with open("/proc/stat", "rb") as f:
        boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime"))
    return ticks / os.sysconf("SC_CLK_TCK") + boot


def split_lines(buf: bytes, final: bool) -> tuple[list[bytes], bytes]:
    """Whole lines of ``buf`` (at most MAX_LINE bytes each) and the unfinished rest.

    >>> split_lines(b"a\\nb\\npart", False)
    ([b'a', b'b'], b'part')
    """
    *lines, rest = buf.split(b"\n")
    out: list[bytes] = []
    for line in lines:
        while len(line) > MAX_LINE:
            out.append(line[:MAX_LINE])
            line = line[MAX_LINE:]
        out.append(line)
    while len(rest) >= MAX_LINE:
        out.append(rest[:MAX_LINE])
        rest = rest[MAX_LINE:]
    if final and rest:
        out.append(rest)
        rest = b""
    return out, rest


class Notifier:
    """Fire-and-forget datagrams to the runtime; every error is ignored (it may be down)."""

    def __init__(self, name: object, job_id: str) -> None:
        self.address = b"\0" + str(name).encode() if name else None
        self.prefix = job_id.encode() + b" "
        self.sock = None
        if self.address:
            try:
                self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
                self.sock.setblocking(False)
            except OSError:
                self.sock = None

    def send(self, event: str) -> None:
        if self.sock is not None and self.address is not None:
            try:
                self.sock.sendto(self.prefix + event.encode(), self.address)
            except OSError:
                pass


class SpawnError(Exception):
    def __init__(self, exit_code: int, description: str) -> None:
        super().__init__(description)
        self.exit_code = exit_code
        self.description = description


def spawn(
    command: list[str],
    env: dict[str, str],
    cwd: str | None,
    cgroup: cgroups.JobCgroup | None,
    memory_rlimit: int | None,
    stdout: int,
    stderr: int,
) -> int:
    """Fork and exec ``command`` in a new session; the child joins ``cgroup`` before exec.

    Raises SpawnError with 127 (not found), 126 (not executable) or 127 (any other failure
    before exec), as a shell would.
    """
    err_r, err_w = os.pipe()  # close-on-exec: EOF without data means exec succeeded
    pid = os.fork()
    if pid == 0:  # the child: only os-level calls, then exec or _exit
        try:
            stage = "setup"
            os.setsid()
            if cgroup is not None:
                cgroup.join(os.getpid())
            if memory_rlimit is not None:
                import resource

                resource.setrlimit(resource.RLIMIT_AS, (memory_rlimit, memory_rlimit))
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec, handlers do not.
            for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
                _signal.signal(sig, _signal.SIG_DFL)
            _signal.set_wakeup_fd(-1)
            if cwd:
                stage = "chdir"
                os.chdir(cwd)
            stage = "exec"
            os.execvpe(command[0], command, env)
        except BaseException as exc:
            code = getattr(exc, "errno", None) or 0
            report = f"{stage}:{code}:{exc}".encode(errors="replace")
            try:
                os.write(err_w, report)
            finally:
                os._exit(127)
    os.close(err_w)
    chunks = []
    while chunk := os.read(err_r, 4096):
        chunks.append(chunk)
    os.close(err_r)
    if not chunks:
        return pid
    os.waitpid(pid, 0)
    stage, errno, message = b"".join(chunks).decode(errors="replace").split(":", 2)
    if stage == "chdir":
        raise SpawnError(127, f"cannot enter working directory {cwd!r}: {message}")
    if stage == "exec" and int(errno) == 2:
        raise SpawnError(127, f"command not found: {command[0]!r}")
    if stage == "exec" and int(errno) == 13:
        raise SpawnError(126, f"permission denied: {command[0]!r}")
    raise SpawnError(127, f"cannot start {command[0]!r}: {message}")


# --- the supervisor ---------------------------------------------------------------------------


class Supervisor:
    def __init__(self, job_dir: str, wake_fd: int) -> None:
        self.job_dir = job_dir
        self.wake_fd = wake_fd
        self.spec = load_json(self.path("spec.json"))
        self.job_id = str(self.spec["job_id"])
        self.notifier = Notifier(self.spec.get("notify_socket"), self.job_id)
        self.cgroup: cgroups.JobCgroup | None = None
        self.pid = 0
        self.status: int | None = None
        self.stop_reason: str | None = None
        self.kill_at: float | None = None
        self.stop_requested = False

    def path(self, name: str) -> str:
        return os.path.join(self.job_dir, name)

    def _number(self, value: object, default: float) -> float:
        return float(value) if isinstance(value, int | float) else default

    @property
    def default_grace(self) -> float:
        return self._number(self.spec.get("grace_s"), 10.0)

    def read_signals(self) -> None:
        try:
            data = os.read(self.wake_fd, 512)
        except BlockingIOError:
            return
        if _signal.SIGTERM in data:
            self.stop_requested = True

    def run(self) -> int:
        resources = self.spec.get("resources")
        resources = resources if isinstance(resources, dict) else {}
        memory_mb = int(self._number(resources.get("memory_mb"), 0))
        cpu = self._number(resources.get("cpu"), 0)
        log_fd = os.open(
            self.path("output.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
        )
        self.read_signals()
        if self.stop_requested:
            return self.finish(None, None, USER_REQUESTED, "stopped before it started")

        cgroup_spec = self.spec.get("cgroup")
        if isinstance(cgroup_spec, dict):
            cgroup = cgroups.JobCgroup.from_json(cgroup_spec)
            try:
                cgroup.create(memory_mb, cpu)
                self.cgroup = cgroup
            except OSError as exc:
                print(f"cgroup {cgroup.dirs} unusable, using rlimits: {exc}", file=sys.stderr)
                cgroup.remove()
        memory_rlimit = memory_mb * 1024 * 1024 if self.cgroup is None and memory_mb > 0 else None

        command = self.spec["command"]
        env = self.spec.get("env") or {}
        cwd = self.spec.get("working_dir")
        if not isinstance(command, list) or not command or not isinstance(env, dict):
            return self.finish(127, None, START_FAILED, "bad spec.json: command or env")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.pid = spawn(
                [str(c) for c in command],
                {str(k): str(v) for k, v in env.items()},
                str(cwd) if cwd else None,
                self.cgroup,
                memory_rlimit,
                out_w,
                err_w,
            )
        except SpawnError as exc:
            return self.finish(exc.exit_code, None, START_FAILED, exc.description)
        finally:
            os.close(out_w)
            os.close(err_w)
        started = time.time()
        write_json(
            self.path("child.json"),
            {
                "pid": self.pid,
                "pgid": self.pid,
                "started_at": utc_iso(started),
                "start_time": start_time(self.pid),
            },
        )
        self.notifier.send("running")
        try:
            self.loop(log_fd, {out_r: b" o ", err_r: b" e "}, time.monotonic())
        except BaseException as exc:  # a bug here must not leave an unsupervised job behind
            self.kill_group(_signal.SIGKILL)
            if self.status is None:
                os.waitpid(self.pid, 0)
            return self.finish(None, None, LOST, f"supervisor failed: {exc!r}")
        return self.finish_child()

    def loop(self, log_fd: int, streams: dict[int, bytes], started: float) -> None:
        life_span = self.spec.get("life_span_s")
        life_deadline = started + life_span if isinstance(life_span, int | float) else None
        drain_until: float | None = None
        partial = {fd: b"" for fd in streams}
        poller = select.epoll()
        for fd in streams:
            poller.register(fd, select.EPOLLIN)
        poller.register(self.wake_fd, select.EPOLLIN)
        while True:
            if self.status is None:
                candidates = [self.kill_at]
                if self.stop_reason is None:
                    candidates.append(life_deadline)
            else:
                candidates = [drain_until]
            deadlines = [d for d in candidates if d is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else -1
            events = poller.poll(timeout)
            stamp: bytes | None = None
            batch: list[bytes] = []
            for fd, _ in events:
                if fd == self.wake_fd:
                    self.read_signals()
                    continue
                prefix = streams[fd]
                data = os.read(fd, READ_SIZE)
                if data:
                    lines, partial[fd] = split_lines(partial[fd] + data, final=False)
                else:
                    lines, partial[fd] = split_lines(partial[fd], final=True)
                    poller.unregister(fd)
                    os.close(fd)
                    del streams[fd]
                if lines:
                    stamp = stamp or utc_iso(time.time()).encode()
                    batch.extend(stamp + prefix + line + b"\n" for line in lines)
            if batch:
                data = b"".join(batch)
                while data:
                    data = data[os.write(log_fd, data) :]
                self.notifier.send("log")

            now = time.monotonic()
            if self.status is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.status = status
                    # The job is its main process: whatever it left running goes with it.
                    self.kill_group(_signal.SIGKILL)
                    if self.cgroup is not None:
                        self.cgroup.kill_all(_signal.SIGKILL)
                    drain_until = now + DRAIN_S
            if self.status is None:
                if self.stop_requested:
                    self.stop_requested = False
                    grace = self.default_grace
                    try:
                        stop = load_json(self.path("stop.json"))
                        grace = self._number(stop.get("grace_s"), grace)
                    except (OSError, ValueError):
                        pass
                    self.request_stop(USER_REQUESTED, grace, now)
                if life_deadline is not None and now >= life_deadline and self.stop_reason is None:
                    self.request_stop(LIFE_SPAN_ENDED, self.default_grace, now)
                if self.kill_at is not None and now >= self.kill_at:
                    self.kill_group(_signal.SIGKILL)
                    self.kill_at = None
            elif not streams or (drain_until is not None and now >= drain_until):
                for fd in streams:
                    os.close(fd)
                return

    def request_stop(self, reason: str, grace: float, now: float) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.kill_group(_signal.SIGTERM)
        deadline = now + max(0.0, grace)
        self.kill_at = deadline if self.kill_at is None else min(self.kill_at, deadline)

    def kill_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except OSError:  # ESRCH: the group is gone
            pass

    def finish_child(self) -> int:
        status = self.status if self.status is not None else 0
        code = os.waitstatus_to_exitcode(status)
        sig = -code if code < 0 else None
        exit_code = 128 + sig if sig is not None else code
        oom_kills = self.cgroup.oom_kills() if self.cgroup is not None else 0
        if self.stop_reason == USER_REQUESTED:
            reason, description = USER_REQUESTED, "stopped on request"
        elif self.stop_reason == LIFE_SPAN_ENDED:
            life_span = self.spec.get("life_span_s")
            reason, description = LIFE_SPAN_ENDED, f"life span of {life_span} s ended"
        elif oom_kills and exit_code != 0:
            resources = self.spec.get("resources")
            limit = resources.get("memory_mb") if isinstance(resources, dict) else None
            reason, description = OOM_KILLED, f"memory limit of {limit} MB exceeded"
        elif sig is not None:
            reason, description = KILLED, f"killed by signal {sig} ({_signal.strsignal(sig)})"
        elif exit_code == 0:
            reason, description = COMPLETED, None
        else:
            reason, description = ERROR, f"exit code {exit_code}"
        return self.finish(exit_code, sig, reason, description)

    def finish(
        self, exit_code: int | None, sig: int | None, reason: str, description: str | None
    ) -> int:
        # Release the cgroup before reporting the end, so EXITED means the resources are free.
        if self.cgroup is not None:
            self.cgroup.remove()
        write_json(
            self.path("exit.json"),
            {
                "exit_code": exit_code,
                "signal": sig,
                "reason": reason,
                "description": description,
                "finished_at": utc_iso(time.time()),
            },
        )
        self.notifier.send("exited")
        return 0


def _ignore(signum: int, frame: object) -> None:
    """A handler, so the signal reaches the wakeup fd; the loop reads it there."""


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: supervisor.py JOB_DIR", file=sys.stderr)
        return 2
    # The runtime (or the spawner) starts us with SIGTERM blocked, so a stop that comes before
    # the handler is in place waits instead of killing the supervisor.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    _signal.signal(_signal.SIGTERM, _ignore)
    _signal.signal(_signal.SIGCHLD, _ignore)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [_signal.SIGTERM])
    return Supervisor(argv[1], wake_r).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
