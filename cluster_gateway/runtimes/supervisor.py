"""The per-job supervisor of ``LocalRuntime``.

It is a fork of the spawner (``spawner.py``), which calls ``main`` in a session of its own
with SIGTERM blocked, stdin/stdout on /dev/null and stderr on ``supervisor.log``. It runs the
job's command in its own session and cgroup, in its sandbox (``sandbox.py``) and under its uid
where it has them, writes its output (``logfile.py``), enforces the stop grace and the life
span, and writes ``exit.json`` when the job ends. It outlives the control plane: the files in
the job directory (``jobdir.py``) are the truth, and the datagrams it sends to the runtime
(``notify.py``) are only a wake-up call.

In a sandbox the process it forks is bwrap's: bwrap forks the sandbox's pid 1, which makes
the mounts and forks the command. The job runs (``child.json``, RUNNING) once that pid 1
exists. The job's processes are the process group of that pid 1 (``--new-session``), so
SIGTERM goes to that group (pid 1 ignores it: the kernel only delivers the signals it handles),
held back until the command has been forked (before, it would reach no one), and SIGKILL to
pid 1 itself, which ends the whole pid namespace. bwrap reports a command killed by signal N
as exit code 128 + N, as a shell does, and such an exit is reported as that signal; a sandbox
that could not be made, or a command bwrap could not execute, ends as StartFailed.

Processes: a job's cgroup limits them with its pids controller (``pids.max``). Without one,
a job that runs under its own uid gets RLIMIT_NPROC instead, which counts every process of
that uid on the host: the user's other jobs share it. A job that runs as the runtime's own
user gets no process limit without the controller (an RLIMIT_NPROC would count the runtime's
processes too, and root ignores it).

Every supervisor carries the memory of what the spawner imported, so this module imports the
standard library and this package's stdlib-only modules, nothing else (no glia: pydantic).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import select
import signal
import stat
import sys
import time
import warnings  # noqa: F401  (os.execvpe imports it: loaded once here, not in every job's fork)
from collections.abc import Sequence

from cluster_gateway.runtimes import cgroups, jobdir, logfile
from cluster_gateway.runtimes.notify import Notifier
from cluster_gateway.runtimes.sandbox import Bind, Sandbox
from cluster_gateway.runtimes.terminal import Terminal

READ_SIZE = 64 * 1024
# After the main process exits, its process group is killed; wait this long for the pipes.
DRAIN_S = 2.0
DEFAULT_LOG_LIMIT = 1024**3
# While a SIGTERM waits for the sandbox to fork the command: how often to look.
TERM_RETRY_S = 0.002
PR_SET_NO_NEW_PRIVS = 38

# JobReason values (glia.jobs), spelled out because this module cannot import glia;
# tests/integration/test_local_runtime.py checks that they are JobReason's.
COMPLETED = "Completed"
ERROR = "Error"
OOM_KILLED = "OOMKilled"
KILLED = "Killed"
USER_REQUESTED = "UserRequested"
LIFE_SPAN_ENDED = "LifeSpanEnded"
LOST = "Lost"
START_FAILED = "StartFailed"


class StartError(Exception):
    def __init__(self, exit_code: int, description: str) -> None:
        super().__init__(description)
        self.exit_code = exit_code
        self.description = description


class Launch:
    """What the job's process runs, where, as whom and how confined (from ``spec.json``)."""

    __slots__ = (
        "command",
        "env",
        "cwd",
        "scratch",
        "uid",
        "gid",
        "cgroup",
        "memory_rlimit",
        "nproc_rlimit",
        "sandbox",
        "home",
        "state_dir",
        "tmpfs_bytes",
        "shm_bytes",
        "volumes",
        "stdin",
    )

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        cwd: str,
        *,
        scratch: bool = False,
        uid: int | None = None,
        gid: int | None = None,
        cgroup: cgroups.JobCgroup | None = None,
        memory_rlimit: int | None = None,
        nproc_rlimit: int | None = None,
        sandbox: Sandbox | None = None,
        home: str = "",
        state_dir: str = "",
        tmpfs_bytes: int | None = None,
        shm_bytes: int | None = None,
        volumes: Sequence[Bind] = (),
    ) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.scratch = scratch  # the runtime chose cwd: its scratch dir, or a storage dir
        self.uid = uid  # switch to uid/gid (the supervisor runs as root); None: stay
        self.gid = gid
        self.cgroup = cgroup
        self.memory_rlimit = memory_rlimit
        self.nproc_rlimit = nproc_rlimit
        self.sandbox = sandbox
        self.home = home
        self.state_dir = state_dir
        self.tmpfs_bytes = tmpfs_bytes
        self.shm_bytes = shm_bytes
        self.volumes = list(volumes)  # the job's own binds (sandbox only)
        self.stdin: int | None = None  # the job's stdin (a terminal's slave); /dev/null else


def _contains(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def _check_working_dir(launch: Launch) -> None:
    """The working dir must not expose the runtime's state; in a sandbox, a job under its own
    uid must be able to enter it with its own rights (a sandbox binds it with root's), and a
    job under the runtime's uid gets none but its scratch dir. Raises OSError."""
    real = os.path.realpath(launch.cwd)
    if launch.state_dir:
        state = os.path.realpath(launch.state_dir)
        if not launch.scratch and (_contains(real, state) or _contains(state, real)):
            raise PermissionError(errno.EACCES, "it holds the runtime's state")
    if launch.sandbox is None:
        return  # chdir says the rest
    if launch.uid is None and not launch.scratch:
        # Sandboxed, but as the runtime's own user: a directory of the host would be shown
        # with the platform's rights (its config, its keys), so none is.
        raise PermissionError(
            errno.EACCES,
            "jobs here run as the platform's own user, so a job works in its scratch "
            "directory only",
        )
    if not stat.S_ISDIR(os.stat(real).st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    if launch.uid is None or launch.scratch:
        return
    os.setgroups([])
    os.setegid(launch.gid if launch.gid is not None else launch.uid)
    os.seteuid(launch.uid)
    try:
        allowed = os.access(real, os.X_OK, effective_ids=True)
    finally:
        os.seteuid(0)
        os.setegid(0)
    if not allowed:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


def _drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good, with no supplementary groups and no way back to more
    privileges (no_new_privs). Root only; for a job that runs without a sandbox."""
    import ctypes  # only here: this path runs where bwrap is missing

    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(number)}")


# What glibc drops from the environment of a privileged program (its `unsecvars`): the
# loader's and libc's variables that load code or files of the caller's choosing.
UNSAFE_ENV = frozenset(
    {
        "GCONV_PATH",
        "GETCONF_DIR",
        "GLIBC_TUNABLES",
        "HOSTALIASES",
        "LD_AUDIT",
        "LD_DEBUG",
        "LD_DEBUG_OUTPUT",
        "LD_DYNAMIC_WEAK",
        "LD_HWCAP_MASK",
        "LD_LIBRARY_PATH",
        "LD_ORIGIN_PATH",
        "LD_PRELOAD",
        "LD_PROFILE",
        "LD_SHOW_AUXV",
        "LD_USE_LOAD_BIAS",
        "LOCALDOMAIN",
        "LOCPATH",
        "MALLOC_TRACE",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TMPDIR",
        "TZDIR",
    }
)


def split_unsafe_env(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``env`` without `UNSAFE_ENV` (and any other LD_ variable), and what was taken out."""
    held = {k: v for k, v in env.items() if k in UNSAFE_ENV or k.startswith("LD_")}
    return {k: v for k, v in env.items() if k not in held}, held


def start_command(launch: Launch, stdout: int, stderr: int, status_fd: int | None) -> int:
    """Fork and exec the job in a new session; the child joins the cgroup (or gets the
    rlimits) before exec, so nothing of the job runs unconfined. In a sandbox it executes bwrap
    (``status_fd``: bwrap's ``--json-status-fd``), else the command, after switching to the
    job's uid if it has one. Returns the pid.

    Raises StartError with 127 (not found, or any other failure before exec) or 126 (not
    executable), as a shell would. This is what ``subprocess.Popen(preexec_fn=...)`` does
    (the cgroup join rules out its vfork path); done here it costs 0.4 ms less per job (see
    bench/runtime_start.py) and keeps subprocess's imports out of every supervisor, and the
    error says which step failed.
    """
    command = launch.command
    err_r, err_w = os.pipe()  # close-on-exec: EOF without data means exec succeeded
    pid = os.fork()
    if pid == 0:  # the child: os-level calls only, then exec or _exit
        step = "setup"
        try:
            signal.set_wakeup_fd(-1)  # the supervisor's: a signal here is not for it
            os.setsid()
            if launch.cgroup is not None:
                launch.cgroup.join(os.getpid())
            if launch.memory_rlimit is not None:
                limit = launch.memory_rlimit
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            if launch.nproc_rlimit is not None:
                limit = launch.nproc_rlimit
                resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
            os.umask(0o022)
            stdin = launch.stdin
            os.dup2(os.open("/dev/null", os.O_RDONLY) if stdin is None else stdin, 0)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec, handlers do not.
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            step = "chdir"
            _check_working_dir(launch)
            if launch.sandbox is not None:
                sandbox = launch.sandbox
                step = "exec"
                sandbox.find_command(
                    command[0],
                    launch.env.get("PATH"),
                    working_dir=launch.cwd,
                    scratch=launch.scratch,
                    home=launch.home,
                    uid=launch.uid,
                    gid=launch.gid,
                    volumes=launch.volumes,
                )
                env, held = launch.env, dict[str, str]()
                if launch.uid is not None:
                    # bwrap and setpriv run as root: what the loader reads from the
                    # environment (LD_PRELOAD…) must not reach them; the job's command gets
                    # those variables from /usr/bin/env, after the switch to its uid.
                    env, held = split_unsafe_env(launch.env)
                argv = sandbox.command_line(
                    command,
                    working_dir=launch.cwd,
                    scratch=launch.scratch,
                    home=launch.home,
                    uid=launch.uid,
                    gid=launch.gid,
                    status_fd=status_fd,
                    tmpfs_bytes=launch.tmpfs_bytes,
                    shm_bytes=launch.shm_bytes,
                    volumes=launch.volumes,
                    held_env=held,
                )
                if status_fd is not None:
                    os.set_inheritable(status_fd, True)
                step = "sandbox"
                os.execve(argv[0], argv, env)
            # No sandbox: the scratch dir is entered through a descriptor opened before the
            # switch (its parents are the runtime's, 0700); a dir the job asked for, after.
            directory = None
            if launch.uid is not None and launch.scratch:
                directory = os.open(launch.cwd, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            if launch.uid is not None:
                step = "setup"
                gid = launch.gid if launch.gid is not None else launch.uid
                _drop_privileges(launch.uid, gid)
            step = "chdir"
            if directory is not None:
                os.fchdir(directory)
            else:
                os.chdir(launch.cwd)
            step = "exec"
            os.execvpe(command[0], command, launch.env)
        except BaseException as exc:
            number = getattr(exc, "errno", None)
            detail = getattr(exc, "strerror", None) or str(exc)
            report = {"step": step, "errno": number, "error": str(exc), "detail": detail}
            try:
                os.write(err_w, json.dumps(report).encode(errors="replace"))
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
    report = json.loads(b"".join(chunks))
    step, number, error = report["step"], report["errno"], report["error"]
    detail = report.get("detail")
    where = f" ({detail})" if number and detail != os.strerror(number) else ""
    cwd = launch.cwd
    if step == "chdir":
        raise StartError(127, f"cannot enter working directory {cwd!r}: {detail or error}")
    if step == "exec" and number == errno.ENOENT:
        raise StartError(127, f"command not found: {command[0]!r}{where}")
    if step == "exec" and number == errno.EACCES:
        raise StartError(126, f"permission denied: {command[0]!r}{where}")
    if step == "sandbox" and launch.sandbox is not None:
        raise StartError(127, f"cannot start the sandbox ({launch.sandbox.bwrap}): {error}")
    raise StartError(127, f"cannot start {command[0]!r}: {error}")


class Supervisor:
    def __init__(self, job_dir: str, wake_fd: int, boot: float) -> None:
        self.job_dir = job_dir
        self.wake_fd = wake_fd
        self.boot = boot
        spec = jobdir.read_json(self.path(jobdir.SPEC))
        if spec is None:
            raise FileNotFoundError(self.path(jobdir.SPEC))
        self.spec = spec
        self.job_id = str(spec["job_id"])
        self.notifier = Notifier(spec.get("notify_socket"), self.job_id)
        self.log: logfile.LogWriter | None = None
        self.cgroup: cgroups.JobCgroup | None = None
        self.sandboxed = False
        self.pid = 0  # the process forked for the job: the command, or bwrap
        self.sandbox_pid: int | None = None  # the sandbox's pid 1, as this host numbers it
        self.status_fd = -1  # bwrap's JSON status
        self.status_data = b""
        self.command_forked = False  # the sandbox's pid 1 has forked the command
        self.term_pending = False  # a SIGTERM waits for that
        self.last_stderr = b""  # the job's last line of stderr (bwrap's own error, if any)
        self.status: int | None = None  # the wait status, once the main process has ended
        self.stop_reason: str | None = None
        self.kill_at: float | None = None
        self.stop_requested = False
        self.terminal: Terminal | None = None  # glia run -t (terminal.py)

    def path(self, name: str) -> str:
        return os.path.join(self.job_dir, name)

    @staticmethod
    def _number(value: object, default: float) -> float:
        return float(value) if isinstance(value, int | float) else default

    @staticmethod
    def _id(value: object) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def default_grace(self) -> float:
        return self._number(self.spec.get("grace_s"), 10.0)

    def read_signals(self) -> None:
        try:
            data = os.read(self.wake_fd, 512)
        except BlockingIOError:
            return
        if signal.SIGTERM in data:
            self.stop_requested = True

    def run(self) -> int:
        spec = self.spec
        resources = spec.get("resources")
        resources = resources if isinstance(resources, dict) else {}
        memory_mb = int(self._number(resources.get("memory_mb"), 0))
        cpu = self._number(resources.get("cpu"), 0)
        pids = int(self._number(resources.get("pids_limit"), 0))
        shm_mb = int(self._number(resources.get("shm_mb"), 0))
        log_limit = int(self._number(spec.get("log_limit_bytes"), DEFAULT_LOG_LIMIT))
        self.log = logfile.LogWriter(self.job_dir, log_limit)
        self.read_signals()
        if self.stop_requested:
            return self.finish(None, None, USER_REQUESTED, "stopped before it started")

        cgroup_spec = spec.get("cgroup")
        if isinstance(cgroup_spec, dict):
            cgroup = cgroups.JobCgroup.from_json(cgroup_spec)
            try:
                cgroup.create(memory_mb, cpu, pids)
                self.cgroup = cgroup
            except OSError as exc:
                print(f"cgroup {cgroup.dirs} unusable, using rlimits: {exc}", file=sys.stderr)
                cgroup.remove()
        memory_rlimit = memory_mb * 1024 * 1024 if self.cgroup is None and memory_mb > 0 else None

        command = spec.get("command")
        env = spec.get("env") or {}
        cwd = spec.get("working_dir")
        if not isinstance(command, list) or not command or not isinstance(env, dict):
            return self.finish(127, None, START_FAILED, "bad spec.json: command or env")
        # Secret variables are in a file of their own, gone once read (never in spec.json).
        secret_env_path = os.path.join(self.job_dir, jobdir.SECRET_ENV)
        try:
            secret_env = jobdir.read_json(secret_env_path)
        except ValueError:
            return self.finish(127, None, START_FAILED, "bad secret variables")
        if secret_env is not None:
            os.unlink(secret_env_path)
            env = {**env, **secret_env}
        if not isinstance(cwd, str) or not cwd:
            return self.finish(127, None, START_FAILED, "bad spec.json: working_dir")
        uid, gid = self._id(spec.get("uid")), self._id(spec.get("gid"))
        no_pids_controller = self.cgroup is None or not self.cgroup.pids_dir
        try:
            sandbox = Sandbox.from_json(spec["sandbox"]) if spec.get("sandbox") else None
            listed = spec.get("volumes") or []
            if not isinstance(listed, list):
                raise ValueError(f"bad volumes: {listed!r}")
            volumes = [Bind.from_json(v) for v in listed]
        except ValueError as exc:
            return self.finish(127, None, START_FAILED, f"bad spec.json: {exc}")
        if volumes and sandbox is None:
            # Mounts need the sandbox: never run the job without what it asked for.
            return self.finish(127, None, START_FAILED, "volumes need the sandbox, off here")
        launch = Launch(
            [str(c) for c in command],
            {str(k): str(v) for k, v in env.items()},
            cwd,
            scratch=spec.get("scratch") is True,
            uid=uid,
            gid=gid,
            cgroup=self.cgroup,
            memory_rlimit=memory_rlimit,
            nproc_rlimit=pids if pids > 0 and uid is not None and no_pids_controller else None,
            sandbox=sandbox,
            home=str(spec.get("home") or ""),
            state_dir=str(spec.get("state_dir") or ""),
            tmpfs_bytes=memory_mb * 1024 * 1024 if memory_mb > 0 else None,
            # The preset's shared memory, else as much as the job's memory (its cgroup
            # counts what /dev/shm holds either way).
            shm_bytes=(shm_mb or memory_mb) * 1024 * 1024 if (shm_mb or memory_mb) > 0 else None,
            volumes=volumes,
        )
        self.sandboxed = sandbox is not None
        err_r, err_w = os.pipe()
        if spec.get("tty") is True:
            # The job's three streams are the terminal: its output is all stdout, and the
            # stderr pipe, which nobody writes, ends at once.
            self.terminal = terminal = Terminal(self.job_dir)
            out_r, out_w = terminal.master, terminal.slave
            launch.stdin = job_err = terminal.slave
        else:
            out_r, out_w = os.pipe()
            job_err = err_w
        status_w = -1
        if sandbox is not None:
            self.status_fd, status_w = os.pipe()
        try:
            self.pid = start_command(launch, out_w, job_err, status_w if status_w >= 0 else None)
        except StartError as exc:
            for fd in (out_r, err_r, self.status_fd):
                if fd >= 0:
                    os.close(fd)
            self.status_fd = -1
            return self.finish(exc.exit_code, None, START_FAILED, exc.description)
        finally:
            os.close(out_w)
            os.close(err_w)
            if status_w >= 0:
                os.close(status_w)
            if self.terminal is not None:
                self.terminal.slave = -1  # closed as out_w: the job holds its end
        pid = self.pid
        if sandbox is not None:
            self.sandbox_pid = self.read_sandbox_pid()
            if self.sandbox_pid is None:
                return self.sandbox_failed(out_r, err_r)
        group = self.sandbox_pid or pid
        try:
            start_time = jobdir.process_start_time(group, self.boot)
        except OSError:  # it has ended already
            start_time = 0.0
        jobdir.write_json(
            self.path(jobdir.CHILD),
            {
                "pid": pid,
                "pgid": group,
                "started_at": jobdir.utc_iso(time.time()),
                "start_time": start_time,
            },
        )
        self.notifier.send("running")
        try:
            self.loop(self.log, {out_r: logfile.STDOUT, err_r: logfile.STDERR})
        except BaseException as exc:  # a bug here must not leave an unsupervised job behind
            self.kill_group(signal.SIGKILL)
            if self.status is None:
                os.waitpid(self.pid, 0)
            return self.finish(None, None, LOST, f"supervisor failed: {exc!r}")
        return self.finish_child()

    def read_sandbox_pid(self) -> int | None:
        """bwrap's first status line names the sandbox's pid 1; None when bwrap ended before
        it made the sandbox."""
        while b"\n" not in self.status_data:
            chunk = os.read(self.status_fd, 4096)
            if not chunk:
                return None
            self.status_data += chunk
        try:
            first = json.loads(self.status_data.split(b"\n", 1)[0])
            pid = first["child-pid"]
        except (ValueError, KeyError, TypeError):
            return None
        return pid if isinstance(pid, int) and pid > 0 else None

    def sandbox_forked(self) -> bool:
        """Whether the sandbox's pid 1 has forked the command, which is then in its process
        group. Where the kernel does not list children, assume so."""
        if not self.command_forked and self.sandbox_pid is not None:
            path = f"/proc/{self.sandbox_pid}/task/{self.sandbox_pid}/children"
            try:
                self.command_forked = bool(jobdir.read_bytes(path).strip())
            except FileNotFoundError:  # gone, or no such file on this kernel
                self.command_forked = True
            except OSError:
                self.command_forked = True
        return self.command_forked

    def bwrap_alive(self) -> bool:
        """Whether bwrap has not ended: only then is the sandbox's pid 1 surely its child
        (and its number not another process's)."""
        if self.status is not None:
            return False
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.pid, flags) is None

    def sandbox_failed(self, out_r: int, err_r: int) -> int:
        """bwrap could not make the sandbox: its error is the job's output and description."""
        self.kill_group(signal.SIGKILL)  # whatever it may have left
        if self.cgroup is not None:
            self.cgroup.kill_all(signal.SIGKILL)
        os.waitpid(self.pid, 0)
        said: list[bytes] = []
        deadline = time.monotonic() + DRAIN_S
        for fd, stream in ((out_r, logfile.STDOUT), (err_r, logfile.STDERR)):
            data = b""
            while select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                try:
                    chunk = os.read(fd, READ_SIZE)
                except OSError:  # EIO, EAGAIN: a terminal's master
                    break
                if not chunk:
                    break
                data += chunk
            os.close(fd)
            lines, _ = logfile.split_lines(data, final=True)
            if self.log is not None:
                self.log.write(stream, lines, time.time())
            said += lines
        why = said[-1].decode(errors="replace") if said else "no error given"
        return self.finish(127, None, START_FAILED, f"cannot set up the job's sandbox: {why}")

    def life_span(self) -> float | None:
        """The job's life span: the one given since its start (``jobdir.LIFE_SPAN``), else
        its spec's."""
        try:
            given = jobdir.read_json(self.path(jobdir.LIFE_SPAN))
        except (OSError, ValueError):
            given = None
        value = (
            given.get("life_span_s") if isinstance(given, dict) else self.spec.get("life_span_s")
        )
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    def loop(self, log: logfile.LogWriter, streams: dict[int, int]) -> None:
        started = time.monotonic()
        life_span = self.life_span()
        life_deadline = started + life_span if life_span is not None else None
        drain_until: float | None = None
        partial = {fd: b"" for fd in streams}
        poller = select.epoll()
        for fd in streams:
            poller.register(fd, select.EPOLLIN)
        poller.register(self.wake_fd, select.EPOLLIN)
        terminal = self.terminal
        if terminal is not None:
            terminal.register(poller)
        while True:
            if self.status is None:
                candidates = [self.kill_at]
                if self.stop_reason is None:
                    candidates.append(life_deadline)
            else:
                candidates = [drain_until]
            if self.term_pending and self.status is None:
                candidates.append(time.monotonic() + TERM_RETRY_S)
            deadlines = [d for d in candidates if d is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else -1
            events = poller.poll(timeout)
            now_wall = time.time()
            wrote = False
            for fd, mask in events:
                if fd == self.wake_fd:
                    self.read_signals()
                    life_span = self.life_span()  # a new one may have been given
                    life_deadline = started + life_span if life_span is not None else None
                    continue
                if terminal is not None:
                    if fd == terminal.fifo:
                        terminal.on_input(poller)
                        continue
                    if fd == terminal.winsize:
                        if terminal.on_resize():
                            self.signal_running(signal.SIGWINCH)
                        continue
                    if fd == terminal.master and mask & select.EPOLLOUT:
                        terminal.flush(poller)
                        if not mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                            continue
                    if fd not in streams:
                        continue
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:  # a terminal's master (non-blocking) with nothing yet
                    continue
                except OSError as exc:  # EIO: a terminal's master once the job's end closed
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    lines, partial[fd] = logfile.split_lines(partial[fd] + data, final=False)
                else:
                    lines, partial[fd] = logfile.split_lines(partial[fd], final=True)
                    poller.unregister(fd)
                    os.close(fd)
                if lines:
                    log.write(streams[fd], lines, now_wall)
                    if streams[fd] == logfile.STDERR:
                        self.last_stderr = lines[-1]
                    wrote = True
                if not data:
                    del streams[fd]
            if wrote:
                self.notifier.send("log")

            now = time.monotonic()
            if self.status is None and (ended := os.waitpid(self.pid, os.WNOHANG))[0]:
                self.status = ended[1]
                # The job is its main process: whatever it left running goes with it (in a
                # sandbox, bwrap's end ends the sandbox's pid 1, and with it the namespace).
                self.kill_group(signal.SIGKILL)
                if self.cgroup is not None:
                    self.cgroup.kill_all(signal.SIGKILL)
                drain_until = now + DRAIN_S
            if self.status is None:
                if self.stop_requested:
                    self.stop_requested = False
                    self.request_stop(USER_REQUESTED, self.stop_grace(), now)
                if life_deadline is not None and now >= life_deadline and self.stop_reason is None:
                    self.request_stop(LIFE_SPAN_ENDED, self.default_grace, now)
                if self.kill_at is not None and now >= self.kill_at:
                    self.kill_group(signal.SIGKILL)
                    self.kill_at = None
                elif self.term_pending:
                    self.kill_group(signal.SIGTERM)
            elif not streams or (drain_until is not None and now >= drain_until):
                for fd in streams:
                    os.close(fd)
                poller.close()
                return

    def stop_grace(self) -> float:
        try:
            stop = jobdir.read_json(self.path(jobdir.STOP)) or {}
        except (OSError, ValueError):
            stop = {}
        return self._number(stop.get("grace_s"), self.default_grace)

    def request_stop(self, reason: str, grace: float, now: float) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.kill_group(signal.SIGTERM)
        deadline = now + max(0.0, grace)
        self.kill_at = deadline if self.kill_at is None else min(self.kill_at, deadline)

    def kill_group(self, sig: int) -> None:
        """Signal the job's processes: its process group, and in a sandbox the sandbox's;
        bwrap itself only gets SIGKILL (it would end the sandbox on SIGTERM, no grace given)."""
        if self.pid <= 0:  # no job process (killpg(0) would be our own group)
            return
        self.term_pending = False
        # Once bwrap has ended, the sandbox's pid 1 dies with it (--die-with-parent), and
        # its number may soon be another process's.
        if self.sandbox_pid is not None and self.bwrap_alive():
            if sig == signal.SIGKILL:
                targets = [self.sandbox_pid, -self.sandbox_pid]  # pid 1: the namespace ends
            elif self.sandbox_forked():
                targets = [-self.sandbox_pid]
            else:
                targets = []
                self.term_pending = True
            for target in targets:
                try:
                    os.kill(target, sig)
                except OSError:  # ESRCH: gone
                    pass
        if not self.sandboxed or sig == signal.SIGKILL:
            try:
                os.killpg(self.pid, sig)
            except OSError:
                pass

    def signal_running(self, sig: int) -> None:
        """Send ``sig`` to the running job's processes (SIGWINCH: its terminal has a new
        size); unlike `kill_group`, bwrap never gets it and nothing is retried."""
        if self.pid <= 0 or self.status is not None:
            return
        if self.sandbox_pid is not None:
            if not (self.bwrap_alive() and self.sandbox_forked()):
                return
            target = -self.sandbox_pid
        else:
            target = -self.pid
        try:
            os.kill(target, sig)
        except OSError:  # ESRCH: gone
            pass

    def sandbox_started(self) -> bool:
        """Whether bwrap executed the command (its status has an exit code only then)."""
        if self.status_fd < 0:
            return True
        os.set_blocking(self.status_fd, False)  # bwrap has ended: all of it is there
        try:
            while chunk := os.read(self.status_fd, 4096):
                self.status_data += chunk
        except BlockingIOError:
            pass
        os.close(self.status_fd)
        self.status_fd = -1
        return b'"exit-code"' in self.status_data

    def finish_child(self) -> int:
        status = self.status if self.status is not None else 0
        code = os.waitstatus_to_exitcode(status)
        sig = -code if code < 0 else None
        exit_code = 128 + sig if sig is not None else code
        if self.sandboxed:
            started = self.sandbox_started()
            if sig is None and code > 128 and (code - 128) in signal.valid_signals():
                sig = code - 128  # bwrap's way of saying so, a shell's
            elif not started and os.WIFEXITED(status) and self.stop_reason is None:
                why = self.last_stderr.decode(errors="replace") or f"bwrap exited with {code}"
                command = self.spec.get("command")
                name = command[0] if isinstance(command, list) and command else "?"
                return self.finish(
                    127, None, START_FAILED, f"cannot start {name!r} in the sandbox: {why}"
                )
        oom_kills = self.cgroup.oom_kills() if self.cgroup is not None else 0
        if self.stop_reason == USER_REQUESTED:
            reason, description = USER_REQUESTED, "stopped on request"
        elif self.stop_reason == LIFE_SPAN_ENDED:
            life_span = self.life_span()
            reason, description = LIFE_SPAN_ENDED, f"life span of {life_span} s ended"
        elif oom_kills and exit_code != 0:
            resources = self.spec.get("resources")
            limit = resources.get("memory_mb") if isinstance(resources, dict) else None
            reason, description = OOM_KILLED, f"memory limit of {limit} MB exceeded"
        elif sig is not None:
            reason, description = KILLED, f"killed by signal {sig} ({signal.strsignal(sig)})"
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
        if self.terminal is not None:
            self.terminal.close()
        if self.log is not None:
            self.log.close()
        record: dict[str, object] = {
            "exit_code": exit_code,
            "signal": sig,
            "reason": reason,
            "description": description,
            "finished_at": jobdir.utc_iso(time.time()),
        }
        jobdir.write_json(self.path(jobdir.EXIT), record)
        self.notifier.send("exited")
        return 0


def _wake(signum: int, frame: object) -> None:
    """A handler, so the signal reaches the wakeup fd; the loop reads it there."""


def main(job_dir: str, boot: float) -> int:
    """Supervise the job of ``job_dir``; SIGTERM must be blocked on entry (see spawner.py).
    ``boot`` is ``jobdir.boot_time()``, as read for this supervisor's own start time."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, _wake)
    signal.signal(signal.SIGCHLD, _wake)
    # A stop that came before the handler was in place was held back; it arrives now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    return Supervisor(job_dir, wake_r, boot).run()
