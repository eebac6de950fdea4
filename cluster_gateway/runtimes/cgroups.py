"""Per-job cgroups on cgroup v2 or v1, whichever has the memory and cpu controllers, and the
pids controller where it is.

Standard library only (``os``, ``time``): the spawner imports it for the supervisors it forks,
and every supervisor carries what the spawner imported (see ``spawner.py``).

Layouts handled:
- pure v2: ``<root>/cgroup.controllers`` lists ``memory`` and ``cpu``;
- hybrid: v2 at ``<root>/unified`` (used only if it has those controllers), otherwise v1 at
  ``<root>/memory``, ``<root>/cpu`` and ``<root>/pids`` (this is what the development hosts
  have).

Job cgroups live at ``<controller root>/glia/<name>``. Without a pids controller (or cgroups)
the supervisor limits a job's processes with RLIMIT_NPROC instead (see ``supervisor.py``).
"""

from __future__ import annotations

import os
import time

PARENT = "glia"
CPU_PERIOD_US = 100_000


class Layout:
    """Where the memory, cpu and pids controllers are mounted and which cgroup version they
    speak (the same for all three)."""

    def __init__(
        self, version: int, memory_root: str, cpu_root: str | None, pids_root: str | None = None
    ) -> None:
        self.version = version
        self.memory_root = memory_root
        self.cpu_root = cpu_root
        self.pids_root = pids_root

    def __repr__(self) -> str:
        return (
            f"Layout(version={self.version}, memory={self.memory_root}, cpu={self.cpu_root}, "
            f"pids={self.pids_root})"
        )

    def job(self, name: str) -> JobCgroup:
        cpu_dir = os.path.join(self.cpu_root, PARENT, name) if self.cpu_root else None
        pids_dir = os.path.join(self.pids_root, PARENT, name) if self.pids_root else None
        memory_dir = os.path.join(self.memory_root, PARENT, name)
        return JobCgroup(self.version, memory_dir, cpu_dir, pids_dir)


def _v2_controllers(path: str) -> set[str]:
    try:
        with open(os.path.join(path, "cgroup.controllers")) as f:
            return set(f.read().split())
    except OSError:
        return set()


def detect(root: str) -> Layout | None:
    """The usable layout under ``root`` (normally ``/sys/fs/cgroup``), or None.

    Usable means: the memory controller is there and we may create cgroups in it. A missing
    cpu or pids controller only drops that limit.
    """
    for v2 in (root, os.path.join(root, "unified")):
        controllers = _v2_controllers(v2)
        if "memory" in controllers and os.access(v2, os.W_OK):
            return Layout(
                2,
                v2,
                v2 if "cpu" in controllers else None,
                v2 if "pids" in controllers else None,
            )
    memory = os.path.join(root, "memory")
    if os.path.exists(os.path.join(memory, "memory.limit_in_bytes")) and os.access(memory, os.W_OK):
        cpu_root = None
        for name in ("cpu", "cpu,cpuacct"):
            cpu = os.path.join(root, name)
            if os.path.exists(os.path.join(cpu, "cpu.cfs_quota_us")) and os.access(cpu, os.W_OK):
                cpu_root = cpu
                break
        # The root of a v1 pids hierarchy has no pids.max, its children do.
        pids = os.path.join(root, "pids")
        usable = os.path.exists(os.path.join(pids, "cgroup.procs")) and os.access(pids, os.W_OK)
        return Layout(1, memory, cpu_root, pids if usable else None)
    return None


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read_flat_keyed(path: str, key: str) -> int:
    """``key N`` from a file such as ``memory.events`` or ``memory.oom_control``; 0 if absent."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except (OSError, ValueError):
        pass
    return 0


class JobCgroup:
    """One job's cgroup: one directory on v2, one per controller on v1."""

    def __init__(
        self, version: int, memory_dir: str, cpu_dir: str | None, pids_dir: str | None = None
    ) -> None:
        self.version = version
        self.memory_dir = memory_dir
        self.cpu_dir = cpu_dir
        self.pids_dir = pids_dir

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "memory": self.memory_dir,
            "cpu": self.cpu_dir,
            "pids": self.pids_dir,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> JobCgroup:
        version, memory, cpu = data["version"], data["memory"], data.get("cpu")
        pids = data.get("pids")
        if not isinstance(version, int) or not isinstance(memory, str):
            raise ValueError(f"bad cgroup record: {data!r}")
        return cls(
            version,
            memory,
            cpu if isinstance(cpu, str) else None,
            pids if isinstance(pids, str) else None,
        )

    @property
    def dirs(self) -> list[str]:
        dirs = [self.memory_dir]
        for other in (self.cpu_dir, self.pids_dir):
            if other and other not in dirs:
                dirs.append(other)
        return dirs

    def create(self, memory_mb: int, cpu: float, pids: int = 0) -> None:
        """Make the directories and write the limits; a limit <= 0 means none. Raises OSError."""
        for d in self.dirs:
            parent = os.path.dirname(d)
            if self.version == 2:
                self._enable_controllers(os.path.dirname(parent))
                os.makedirs(parent, exist_ok=True)
                self._enable_controllers(parent)
            else:
                os.makedirs(parent, exist_ok=True)
            os.makedirs(d, exist_ok=True)
        if memory_mb > 0:
            limit = str(memory_mb * 1024 * 1024)
            if self.version == 2:
                _write(os.path.join(self.memory_dir, "memory.max"), limit)
                try:  # a hard limit must not spill into swap
                    _write(os.path.join(self.memory_dir, "memory.swap.max"), "0")
                except OSError:
                    pass
            else:
                _write(os.path.join(self.memory_dir, "memory.limit_in_bytes"), limit)
        if cpu > 0 and self.cpu_dir:
            quota = max(1000, int(cpu * CPU_PERIOD_US))
            if self.version == 2:
                _write(os.path.join(self.cpu_dir, "cpu.max"), f"{quota} {CPU_PERIOD_US}")
            else:
                _write(os.path.join(self.cpu_dir, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
                _write(os.path.join(self.cpu_dir, "cpu.cfs_quota_us"), str(quota))
        if pids > 0 and self.pids_dir:
            _write(os.path.join(self.pids_dir, "pids.max"), str(pids))

    @staticmethod
    def _enable_controllers(path: str) -> None:
        # Already enabled is the usual case; a failure shows later as a failed limit write.
        for controller in ("+memory", "+cpu", "+pids"):
            try:
                _write(os.path.join(path, "cgroup.subtree_control"), controller)
            except OSError:
                pass

    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def join(self, pid: int) -> None:
        """Move ``pid`` into every directory of the job. Raises OSError."""
        for path in self.procs_files():
            _write(path, str(pid))

    def oom_kills(self) -> int:
        if self.version == 2:
            return _read_flat_keyed(os.path.join(self.memory_dir, "memory.events"), "oom_kill")
        return _read_flat_keyed(os.path.join(self.memory_dir, "memory.oom_control"), "oom_kill")

    def pids(self) -> set[int]:
        pids: set[int] = set()
        for path in self.procs_files():
            try:
                with open(path) as f:
                    pids.update(int(line) for line in f if line.strip())
            except (OSError, ValueError):
                pass
        return pids

    def kill_all(self, sig: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except OSError:
                pass

    def remove(self, timeout_s: float = 2.0) -> bool:
        """Kill what is left inside and remove the directories; True if they are gone.

        A killed process leaves its cgroup a moment after the signal, so rmdir is retried.
        """
        deadline = time.monotonic() + timeout_s
        remaining = [d for d in self.dirs if os.path.isdir(d)]
        while remaining:
            self.kill_all(9)
            for d in list(remaining):
                try:
                    os.rmdir(d)
                    remaining.remove(d)
                except FileNotFoundError:
                    remaining.remove(d)
                except OSError:
                    pass
            if not remaining or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        return not remaining
