"""A job's directory under ``LocalRuntime``'s state: its files, and how they are written.

Shared by the runtime (``local.py``) and the supervisor, so it imports the standard library
only: every supervisor is a fork of the spawner and carries what the spawner imported.

``<state_dir>/jobs/<job_id>/`` holds (JSON files are written to a temporary name and renamed,
so a reader sees a whole file or none):

- ``spec.json`` (runtime, before the supervisor starts): command, env, working_dir, resources,
  life_span_s, grace_s, notify_socket, cgroup;
- ``supervisor.json`` (the supervisor, before the spawner's answer reaches the runtime): pid
  and start_time (psutil's ``create_time()``: tells the process from a later one with the same
  pid);
- ``stop.json`` (runtime, before it sends SIGTERM): ``{"grace_s": ...}``;
- ``child.json`` (supervisor, once the command runs): pid, pgid, started_at, start_time;
- ``output.log`` and ``output.idx`` (supervisor): the output, see ``logfile.py``;
- ``exit.json`` (supervisor when the job ends; the runtime for a lost supervisor or a failed
  start): exit_code, signal, reason, description, finished_at;
- ``supervisor.log``: the supervisor's own stderr;
- ``work/``: the scratch working directory of a job that names none.
"""

from __future__ import annotations

import json
import os
import time

SPEC = "spec.json"
SUPERVISOR = "supervisor.json"
STOP = "stop.json"
CHILD = "child.json"
EXIT = "exit.json"
SUPERVISOR_LOG = "supervisor.log"
SCRATCH = "work"


# The files are small and written once or twice: os-level reads and writes, no buffered text
# streams (a supervisor is a fresh fork, and every object it touches is a page it copies).
MAX_FILE = 1024 * 1024


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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
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
