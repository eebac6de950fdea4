"""A ``LocalRuntime`` job's state as its files tell it (``jobdir.py``), and what the runtime
writes there itself: a failed start, a stop request, the loss of a supervisor.

Blocking file and ``/proc`` work: the runtime calls these in worker threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from cluster_gateway.gateway import WorkloadPhase, WorkloadState
from cluster_gateway.runtimes import cgroups, jobdir
from glia.clock import utcnow
from glia.jobs import JobReason

logger = logging.getLogger(__name__)

# The same process has the same start time; a reused pid has another one (10 ms ticks).
SAME_PROCESS_S = 0.005


def read_state(job_dir: Path, *, declare_lost: bool) -> WorkloadState:
    """The state of the job of ``job_dir`` from its files. A job whose supervisor is gone
    without a word is declared lost if ``declare_lost``, else reported as not ended (a point
    lookup must not judge a job that a concurrent ``start`` is creating)."""
    job_id = job_dir.name
    if not job_dir.is_dir():
        return WorkloadState(job_id=job_id, phase=WorkloadPhase.MISSING)
    child = load(job_dir / jobdir.CHILD)
    started_at = parse_time(child.get("started_at")) if child else None
    exited = load(job_dir / jobdir.EXIT)
    if exited is None:
        supervisor = load(job_dir / jobdir.SUPERVISOR) or {}
        pid = supervisor.get("pid")
        alive = isinstance(pid, int) and same_process(pid, supervisor.get("start_time"))
        # It may have written exit.json and ended since the first look.
        exited = None if alive else load(job_dir / jobdir.EXIT)
        if exited is None:
            if alive or not declare_lost:
                phase = WorkloadPhase.RUNNING if child else WorkloadPhase.PENDING
                return WorkloadState(job_id=job_id, phase=phase, started_at=started_at)
            exited = declare_lost_job(job_dir, child)
    try:
        reason = JobReason(str(exited.get("reason")))
    except ValueError:
        reason = JobReason.LOST
    exit_code = exited.get("exit_code")
    description = exited.get("description")
    return WorkloadState(
        job_id=job_id,
        phase=WorkloadPhase.EXITED,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        reason=reason,
        description=description if isinstance(description, str) else None,
        started_at=started_at,
        finished_at=parse_time(exited.get("finished_at")),
    )


def supervisor_pid(job_dir: Path) -> int | None:
    pid = (load(job_dir / jobdir.SUPERVISOR) or {}).get("pid")
    return pid if isinstance(pid, int) else None


def record_start_failure(job_dir: Path, description: str) -> WorkloadState:
    jobdir.create_json(
        str(job_dir / jobdir.EXIT),
        {
            "exit_code": None,
            "signal": None,
            "reason": JobReason.START_FAILED.value,
            "description": description,
            "finished_at": utcnow().isoformat(),
        },
    )
    return read_state(job_dir, declare_lost=False)


def signal_supervisor(job_dir: Path, grace_s: float) -> bool:
    """Ask the supervisor to stop the job; False if the supervisor is gone."""
    jobdir.write_json(str(job_dir / jobdir.STOP), {"grace_s": grace_s})
    supervisor = load(job_dir / jobdir.SUPERVISOR) or {}
    pid = supervisor.get("pid")
    if isinstance(pid, int) and same_process(pid, supervisor.get("start_time")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            return True
    return False


def set_life_span(job_dir: Path, life_span_s: float | None) -> bool:
    """Give the job a new life span (seconds from its start); False if its supervisor is
    gone. SIGCHLD wakes the supervisor: its default action is to do nothing, so a supervisor
    that has not set its handlers yet is not killed by it (it reads the file when it starts
    its loop)."""
    jobdir.write_json(str(job_dir / jobdir.LIFE_SPAN), {"life_span_s": life_span_s})
    supervisor = load(job_dir / jobdir.SUPERVISOR) or {}
    pid = supervisor.get("pid")
    if isinstance(pid, int) and same_process(pid, supervisor.get("start_time")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCHLD)
            return True
    return False


def declare_lost_job(job_dir: Path, child: dict[str, Any] | None) -> dict[str, Any]:
    """The supervisor died without a word: kill what it left and record the loss."""
    pgid = child.get("pgid") if child else None
    if child is not None and isinstance(pgid, int):
        # The leader's pid is not reused while its group has members, so a leader that is
        # gone means the group is ours or empty; one that started at another time means
        # the group is somebody else's.
        try:
            start_time = psutil.Process(pgid).create_time()
            ours = abs(start_time - float(child.get("start_time") or 0)) < SAME_PROCESS_S
        except psutil.NoSuchProcess:
            ours = True
        if ours:
            # The group, and its leader itself: a sandbox's pid 1, whose end ends the
            # sandbox's pid namespace, also before it made its group.
            for target in (-pgid, pgid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(target, signal.SIGKILL)
    spec = load(job_dir / jobdir.SPEC) or {}
    if isinstance(spec.get("cgroup"), dict):
        with contextlib.suppress(ValueError, KeyError):
            cgroups.JobCgroup.from_json(spec["cgroup"]).remove(timeout_s=0.5)
    exited: dict[str, Any] = {
        "exit_code": None,
        "signal": None,
        "reason": JobReason.LOST.value,
        "description": "the supervisor ended without recording the exit",
        "finished_at": utcnow().isoformat(),
    }
    path = str(job_dir / jobdir.EXIT)
    if not jobdir.create_json(path, exited):  # recorded meanwhile: that record stands
        exited = load(job_dir / jobdir.EXIT) or exited
    return exited


def load(path: Path) -> dict[str, Any] | None:
    try:
        return jobdir.read_json(str(path))
    except (OSError, ValueError):
        logger.warning("unreadable %s", path, exc_info=True)
        return None


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def same_process(pid: int, start_time: object) -> bool:
    """Whether ``pid`` is alive and is the process that started at ``start_time``."""
    if not isinstance(start_time, int | float):
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(abs(process.create_time() - start_time) < SAME_PROCESS_S)
    except psutil.Error:
        return False
