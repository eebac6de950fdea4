"""The supervisor spawner of ``LocalRuntime``: a ready interpreter that forks supervisors.

Starting an interpreter for every job's supervisor costs 12-15 ms here, most of the
runtime's share of the submit -> running latency; forking one that is already up, with
``supervisor`` imported, takes about a millisecond. So every supervisor is forked by this
process, which the runtime starts once (``spawner_client.py``) and again when it dies.

It runs as ``python -I -S -c "import sys; sys.path.append(ROOT); from
cluster_gateway.runtimes.spawner import main; ..." FD``, ROOT being the directory that holds
the ``cluster_gateway`` package: ``-I`` keeps the environment and the working directory out
of it, ``-S`` skips site (nothing here needs site-packages, and whatever site imports would be
in every supervisor's memory), and the package is imported by its own name from wherever it
lies, installed or not. What it imports is the standard library and ``supervisor``,
``cgroups``, ``jobdir``, ``logfile``, ``notify``, ``sandbox``: every forked supervisor carries
that memory, so no glia, pydantic or psutil (``cluster_gateway/__init__.py`` and
``runtimes/__init__.py`` stay import-free for the same reason).

Protocol, over one ``AF_UNIX``/``SOCK_SEQPACKET`` socket (fd ``argv[1]``), one message each:
- spawner -> runtime, once, when it is ready: ``ready``;
- runtime -> spawner: the job directory (file system encoding);
- reply, JSON: ``{"pid": ..., "start_time": ...}`` (the supervisor's pid and psutil's
  ``create_time()`` of it) or ``{"error": "..."}`` when no supervisor will run.

For each request the spawner forks. The child answers for itself: it blocks SIGTERM, leaves
the spawner's session, writes ``supervisor.json`` and only then sends ``pid``, so a runtime
that has the answer finds the file, and a stop sent at once waits for the supervisor's
handler. A spawner killed after it forked has still answered, one killed before it forked
answers nothing: EOF tells the runtime that no supervisor was started and that it may ask
another spawner without starting the job twice. The child then closes the socket, puts back
what the spawner changed in the signal dispositions, points stdin/stdout at /dev/null and
stderr at ``supervisor.log``, and runs ``supervisor.main``. Supervisors are children of the
spawner, never of the control plane; the spawner ignores SIGCHLD so the kernel reaps them,
and when it dies they are reparented to init and run on.

The spawner is single-threaded (it forks), opens nothing but its socket, and holds no job's
files or pipes. It exits when the runtime's end of the socket closes (the runtime closed, or
the control plane died); the supervisors are unaffected.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys

from cluster_gateway.runtimes import jobdir, supervisor

READY = b"ready"
MAX_REQUEST = 64 * 1024


def _send(sock: socket.socket, reply: dict[str, object]) -> None:
    try:
        sock.send(json.dumps(reply).encode())
    except OSError:  # the runtime is gone: nobody to tell
        pass


def _supervisor_child(sock: socket.socket, job_dir: str) -> None:
    """In the forked child: answer, become a supervisor, run, and never return."""
    code = 1
    answered = False
    try:
        # Blocked before the runtime knows our pid: a SIGTERM it sends at once waits for the
        # supervisor's handler (supervisor.main unblocks it).
        signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGTERM})
        os.setsid()
        pid = os.getpid()
        boot = jobdir.boot_time()
        start_time = jobdir.process_start_time(pid, boot)
        path = os.path.join(job_dir, jobdir.SUPERVISOR)
        jobdir.write_json(path, {"pid": pid, "start_time": start_time})
        _send(sock, {"pid": pid, "start_time": start_time})
        answered = True
        sock.close()
        # What the spawner changed, back as a fresh interpreter has it.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open("/dev/null", os.O_RDWR)
        log = os.open(
            os.path.join(job_dir, jobdir.SUPERVISOR_LOG),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            jobdir.FILE_MODE,
        )
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        code = supervisor.main(job_dir, boot)
    except BaseException as exc:
        if not answered:
            _send(sock, {"error": f"the supervisor could not start: {exc}"})
        try:
            print(f"supervisor failed: {exc!r}", file=sys.stderr)
        except BaseException:
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)


def serve(sock: socket.socket) -> int:
    # The supervisors are our children until we die; the kernel reaps them when they end.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    # What is imported stays shared with the forks: no collection of theirs touches it.
    gc.freeze()
    sock.send(READY)
    while True:
        request = sock.recv(MAX_REQUEST)
        if not request:  # the runtime closed its end (or died)
            return 0
        job_dir = os.fsdecode(request)
        if not os.path.isdir(job_dir):
            _send(sock, {"error": f"no such directory: {job_dir!r}"})
            continue
        sys.stderr.flush()  # nothing buffered may be written twice, by us and by the child
        try:
            pid = os.fork()
        except OSError as exc:
            _send(sock, {"error": f"cannot fork: {exc}"})
            continue
        if pid == 0:
            _supervisor_child(sock, job_dir)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: spawner.py SOCKET_FD", file=sys.stderr)
        return 2
    try:
        return serve(socket.socket(fileno=int(argv[1])))
    except (KeyboardInterrupt, BrokenPipeError, ConnectionResetError):
        return 0
