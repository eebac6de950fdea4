"""The per-job supervisor of ``LocalRuntime``.

It is a fork of the spawner (``spawner.py``), which calls ``main`` in a session of its own
with SIGTERM blocked, stdin/stdout on /dev/null and stderr on ``supervisor.log``. It runs the
job's command in its own session and cgroup, writes its output (``logfile.py``), enforces the
stop grace and the life span, and writes ``exit.json`` when the job ends. It outlives the
control plane: the files in the job directory (``jobdir.py``) are the truth, and the datagrams
it sends to the runtime (``<job_id> running|log|exited``) are only a wake-up call.

Every supervisor carries the memory of what the spawner imported, so this module imports the
standard library and this package's stdlib-only modules, nothing else (no glia: pydantic).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import socket
import sys
import time
import warnings  # noqa: F401  (os.execvpe imports it: loaded once here, not in every job's fork)

from cluster_gateway.runtimes import cgroups, jobdir, logfile

READ_SIZE = 64 * 1024
# After the main process exits, its process group is killed; wait this long for the pipes.
DRAIN_S = 2.0

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


class Notifier:
    """Fire-and-forget datagrams to the runtime; every error is ignored (it may be down)."""

    def __init__(self, name: object, job_id: str) -> None:
        self.address = b"\0" + str(name).encode() if name else None
        self.prefix = job_id.encode() + b" "
        self.sock: socket.socket | None = None
        if self.address:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self.sock.setblocking(False)
            except OSError:
                self.sock = None

    def send(self, event: str) -> None:
        if self.sock is not None and self.address is not None:
            try:
                self.sock.sendto(self.prefix + event.encode(), self.address)
            except OSError:
                pass


class StartError(Exception):
    def __init__(self, exit_code: int, description: str) -> None:
        super().__init__(description)
        self.exit_code = exit_code
        self.description = description


def start_command(
    command: list[str],
    env: dict[str, str],
    cwd: str | None,
    cgroup: cgroups.JobCgroup | None,
    memory_rlimit: int | None,
    stdout: int,
    stderr: int,
) -> int:
    """Fork and exec ``command`` in a new session; the child joins ``cgroup`` (or gets the
    memory rlimit) before exec, so nothing of the job runs unconfined. Returns its pid.

    Raises StartError with 127 (not found, or any other failure before exec) or 126 (not
    executable), as a shell would. This is what ``subprocess.Popen(preexec_fn=...)`` does
    (the cgroup join rules out its vfork path); done here it costs 0.4 ms less per job (see
    bench/runtime_start.py) and keeps subprocess's imports out of every supervisor, and the
    error says which step failed.
    """
    err_r, err_w = os.pipe()  # close-on-exec: EOF without data means exec succeeded
    pid = os.fork()
    if pid == 0:  # the child: os-level calls only, then exec or _exit
        step = "setup"
        try:
            signal.set_wakeup_fd(-1)  # the supervisor's: a signal here is not for it
            os.setsid()
            if cgroup is not None:
                cgroup.join(os.getpid())
            if memory_rlimit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (memory_rlimit, memory_rlimit))
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec, handlers do not.
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            if cwd:
                step = "chdir"
                os.chdir(cwd)
            step = "exec"
            os.execvpe(command[0], command, env)
        except BaseException as exc:
            report = {"step": step, "errno": getattr(exc, "errno", None), "error": str(exc)}
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
    step, errno, error = report["step"], report["errno"], report["error"]
    if step == "chdir":
        raise StartError(127, f"cannot enter working directory {cwd!r}: {error}")
    if step == "exec" and errno == 2:
        raise StartError(127, f"command not found: {command[0]!r}")
    if step == "exec" and errno == 13:
        raise StartError(126, f"permission denied: {command[0]!r}")
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
        self.pid = 0
        self.status: int | None = None  # the wait status, once the main process has ended
        self.stop_reason: str | None = None
        self.kill_at: float | None = None
        self.stop_requested = False

    def path(self, name: str) -> str:
        return os.path.join(self.job_dir, name)

    @staticmethod
    def _number(value: object, default: float) -> float:
        return float(value) if isinstance(value, int | float) else default

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
        resources = self.spec.get("resources")
        resources = resources if isinstance(resources, dict) else {}
        memory_mb = int(self._number(resources.get("memory_mb"), 0))
        cpu = self._number(resources.get("cpu"), 0)
        self.log = logfile.LogWriter(self.job_dir)
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

        command = self.spec.get("command")
        env = self.spec.get("env") or {}
        cwd = self.spec.get("working_dir")
        if not isinstance(command, list) or not command or not isinstance(env, dict):
            return self.finish(127, None, START_FAILED, "bad spec.json: command or env")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.pid = start_command(
                [str(c) for c in command],
                {str(k): str(v) for k, v in env.items()},
                str(cwd) if cwd else None,
                self.cgroup,
                memory_rlimit,
                out_w,
                err_w,
            )
        except StartError as exc:
            os.close(out_r)
            os.close(err_r)
            return self.finish(exc.exit_code, None, START_FAILED, exc.description)
        finally:
            os.close(out_w)
            os.close(err_w)
        pid = self.pid
        jobdir.write_json(
            self.path(jobdir.CHILD),
            {
                "pid": pid,
                "pgid": pid,
                "started_at": jobdir.utc_iso(time.time()),
                "start_time": jobdir.process_start_time(pid, self.boot),
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

    def loop(self, log: logfile.LogWriter, streams: dict[int, int]) -> None:
        started = time.monotonic()
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
            now_wall = time.time()
            wrote = False
            for fd, _ in events:
                if fd == self.wake_fd:
                    self.read_signals()
                    continue
                data = os.read(fd, READ_SIZE)
                if data:
                    lines, partial[fd] = logfile.split_lines(partial[fd] + data, final=False)
                else:
                    lines, partial[fd] = logfile.split_lines(partial[fd], final=True)
                    poller.unregister(fd)
                    os.close(fd)
                if lines:
                    log.write(streams[fd], lines, now_wall)
                    wrote = True
                if not data:
                    del streams[fd]
            if wrote:
                self.notifier.send("log")

            now = time.monotonic()
            if self.status is None and (ended := os.waitpid(self.pid, os.WNOHANG))[0]:
                self.status = ended[1]
                # The job is its main process: whatever it left running goes with it.
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
        if self.pid <= 0:  # no job process (killpg(0) would be our own group)
            return
        try:
            os.killpg(self.pid, sig)
        except OSError:  # ESRCH: the group is gone
            pass

    def finish_child(self) -> int:
        code = os.waitstatus_to_exitcode(self.status if self.status is not None else 0)
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
