"""The supervisor spawner of ``LocalRuntime``: a pre-started interpreter that forks supervisors.

Starting ``python -I -S`` for every job's supervisor costs 12-15 ms of interpreter start-up,
most of the runtime's share of the submit -> running latency. So ``LocalRuntime.open`` starts
this process once (``python -I -S``, stdlib only, with ``supervisor`` already imported), and
``start`` asks it for a supervisor instead: a fork of an interpreter that is already up takes
about a millisecond.

Protocol, over one ``AF_UNIX``/``SOCK_SEQPACKET`` socket (fd ``argv[1]``), one message each:
- spawner -> runtime, once, when it is ready: ``ready``;
- runtime -> spawner: the job directory (UTF-8);
- reply: ``ok <pid> <start time>`` (the supervisor's pid and its ``/proc`` start time, which
  is psutil's ``create_time()``), or ``error <text>`` when nothing was started.

For each request the spawner forks the supervisor. The child answers for itself, first thing
(SIGTERM blocked, then ``ok`` with its pid and start time), so a spawner killed after it forked
has still answered and one killed before it forked answers nothing: EOF tells the runtime that
no supervisor was started and it may start one another way without starting the job twice.
The child then closes the socket, calls ``setsid`` (a session of its own: neither a signal to
the spawner's group nor the control plane's end reaches it), puts back what the spawner changed
in the signal dispositions, points stdin/stdout at /dev/null and stderr at
``supervisor.log``, and runs ``supervisor.main``: what ``posix_spawn`` would have started. The
supervisors are children of the spawner, never of the control plane; the spawner ignores
SIGCHLD so the kernel reaps them, and when the spawner dies they are reparented to init (or
the nearest subreaper) and run on.

The spawner is single-threaded (it forks), installs no signal handler, opens nothing but what
Python opens itself, and holds no job's files or pipes: the supervisor opens those after the
fork. It exits when the runtime's end of the socket closes (the control plane closed the
runtime, or died); the supervisors are unaffected.
"""

from __future__ import annotations

import os
import resource  # noqa: F401  (for every job's child: supervisor.spawn sets rlimits with it)
import sys
import warnings  # noqa: F401  (for every job's child: os.execvpe imports it)

TYPE_CHECKING = False  # mypy treats this name as true; avoids importing typing at run time
if TYPE_CHECKING:
    import signal as _signal  # the same names, with types

    from cluster_gateway.runtimes import supervisor
else:
    import _signal

    # Run as ``python -I -S -c`` with this file's directory first on sys.path (see local.py).
    import supervisor

READY = b"ready"
MAX_REQUEST = 64 * 1024


def _send(fd: int, message: str) -> None:
    try:
        os.write(fd, message.encode(errors="replace"))
    except OSError:  # the runtime is gone: nobody to tell
        pass


def _supervisor_child(sock: int, job_dir: str) -> None:
    """In the forked supervisor: answer, become what ``posix_spawn`` would have started, run."""
    code = 1
    try:
        # Blocked before the runtime knows our pid: a SIGTERM it sends at once waits for the
        # supervisor's handler, as with posix_spawn's ``setsigmask``.
        _signal.pthread_sigmask(_signal.SIG_SETMASK, [_signal.SIGTERM])
        pid = os.getpid()
        os.write(sock, f"ok {pid} {supervisor.start_time(pid)!r}".encode())
        os.close(sock)
        os.setsid()
        # What the spawner changed, back as a fresh interpreter has it; the other
        # dispositions are inherited from the runtime, as through posix_spawn.
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
        null = os.open("/dev/null", os.O_RDWR)
        log = os.open(
            os.path.join(job_dir, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        code = supervisor.main(["supervisor.py", job_dir])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        try:
            print(f"supervisor failed: {exc!r}", file=sys.stderr)
        except BaseException:
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except BaseException:
                pass
        os._exit(code)


def serve(sock: int) -> int:
    # The supervisors are our children until we die; the kernel reaps them when they end.
    _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os.write(sock, READY)
    while True:
        request = os.read(sock, MAX_REQUEST)
        if not request:  # the runtime closed its end (or died)
            return 0
        job_dir = request.decode(errors="surrogateescape")
        if not os.path.isdir(job_dir):
            _send(sock, f"error no such directory: {job_dir!r}")
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            _send(sock, f"error cannot fork: {exc}")
            continue
        if pid == 0:
            _supervisor_child(sock, job_dir)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: spawner.py SOCKET_FD", file=sys.stderr)
        return 2
    try:
        return serve(int(argv[1]))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # the runtime went away while we answered
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
