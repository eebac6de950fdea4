"""A job's directory under ``LocalRuntime``'s state: its files, and how they are written.

Shared by the runtime (``local.py``) and the supervisor, so it imports the standard library
only: every supervisor is a fork of the spawner and carries what the spawner imported.

The state dir, ``jobs/`` and every job's directory are 0700 and every file in them 0600,
owned by the runtime's user (root where jobs run under uids of their own): no job can read or
write them, and no sandbox shows them (``sandbox.py``). ``<state_dir>/jobs/<job_id>/`` holds
(JSON files are written to a temporary name and renamed, so a reader sees a whole file or
none):

- ``spec.json`` (runtime, before the supervisor starts): command, env, working_dir, scratch,
  uid, gid, resources, pids_limit, life_span_s, grace_s, log_limit_bytes, notify_socket,
  state_dir, cgroup, sandbox (``sandbox.Sandbox.to_json``, or null), home;
- ``supervisor.json`` (the supervisor, before the spawner's answer reaches the runtime): pid
  and start_time (psutil's ``create_time()``: tells the process from a later one with the same
  pid);
- ``stop.json`` (runtime, before it sends SIGTERM): ``{"grace_s": ...}``;
- ``child.json`` (supervisor, once the command runs): pid (the process it forked: bwrap in a
  sandbox), pgid (the group that holds the job's processes: in a sandbox, that of the
  sandbox's pid 1), started_at, start_time (of the pgid's leader);
- ``output.<k>.log`` and ``output.<k>.idx`` (supervisor): the output, see ``logfile.py``;
- ``exit.json`` (supervisor when the job ends; the runtime for a lost supervisor or a failed
  start): exit_code, signal, reason, description, finished_at;
- ``supervisor.log``: the supervisor's own stderr;
- ``work/``: the scratch working directory of a job that names none, and ``home/``, its HOME
  in a sandbox: both the job's own (its uid, 0700), the only things in here it can reach.
"""

from __future__ import annotations

import json
import os
import time

SPEC = "spec.json"
SUPERVISOR = "supervisor.json"
STOP = "stop.json"
# A life span given after the start ({"life_span_s": seconds from the start, or null}): the
# supervisor reads it when woken (the runtime sends it SIGCHLD, harmless before its handler).
LIFE_SPAN = "life_span.json"
CHILD = "child.json"
EXIT = "exit.json"
SUPERVISOR_LOG = "supervisor.log"
# A job's secret files (bound into its sandbox), and its secret variables until its
# supervisor has read them.
SECRETS = "secrets"
SECRET_ENV = "secret_env.json"
SCRATCH = "work"
HOME = "home"
# Files and directories of the runtime and its supervisors.
FILE_MODE = 0o600
DIR_MODE = 0o700


# The files are small and written once or twice: os-level reads and writes, no buffered text
# streams (a supervisor is a fresh fork, and every object it touches is a page it copies).
MAX_FILE = 1024 * 1024


def read_bytes(path: str) -> bytes:
    """The whole of a small file (``/proc``'s too). Raises OSError."""
    return _read(path)


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, MAX_FILE):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_json(path: str) -> dict[str, object] | None:
    """The object in ``path``; None if there is no such file. Raises ValueError (not an
    object, or not JSON) and OSError."""
    try:
        value = json.loads(_read(path))
    except FileNotFoundError:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a JSON object")
    return value


def _write_tmp(path: str, value: dict[str, object]) -> str:
    tmp = f"{path}.{os.getpid()}.tmp"
    data = memoryview(json.dumps(value).encode())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
    return tmp


def write_json(path: str, value: dict[str, object]) -> None:
    """Write ``value`` to ``path`` whole, replacing what is there."""
    os.replace(_write_tmp(path, value), path)


def create_json(path: str, value: dict[str, object]) -> bool:
    """Write ``value`` to ``path`` whole unless the file exists; whether it was written.

    Two writers racing to record the same end (a lost supervisor noticed twice) agree on
    one file this way.
    """
    tmp = _write_tmp(path, value)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


def utc_iso(t: float) -> str:
    """``2026-05-01T12:00:00.123456+00:00`` for a ``time.time()`` (``datetime.fromisoformat``
    reads it back)."""
    seconds = int(t)
    micros = int((t - seconds) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}+00:00"


def boot_time() -> float:
    """When the host booted, in seconds since the epoch (``btime`` of ``/proc/stat``)."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith(b"btime"):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_start_time(pid: int, boot: float) -> float:
    """When ``pid`` started, in seconds since the epoch, as psutil's ``create_time()``
    computes it on Linux (the supervisor cannot import psutil: see the module docstring);
    ``boot`` is `boot_time()`, read once by a supervisor for itself and its job.

    ``/proc/<pid>/stat`` field 22 is the start in clock ticks after boot; the command name
    before it is in parentheses and may hold spaces, so fields count from the last ``)``.
    """
    data = _read(f"/proc/{pid}/stat")
    ticks = int(data[data.rfind(b")") + 2 :].split()[19])
    return ticks / os.sysconf("SC_CLK_TCK") + boot
