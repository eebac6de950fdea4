"""How ``LocalRuntime`` isolates jobs on this host: which sandbox it can build, tried once.

The runtime's side of ``sandbox.py``: it finds bwrap (and setpriv, which switches to the job's
uid when the runtime runs as root), resolves the extra read-only binds, and runs a job's
sandbox once with ``true`` in it, so that a host where bwrap cannot work (no unprivileged user
namespaces, an old bwrap, a container that forbids mounts) is known at ``open`` and not at
every job's start.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cluster_gateway.runtimes.sandbox import Sandbox

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0
# Who the probe runs as when the runtime is root: the usual "nobody".
PROBE_UID = 65534


def interpreter_prefixes() -> list[str]:
    """Where this process's Python lives, outside /usr: what ``python`` jobs need to run
    the runtime's interpreter (``sys.executable``) in a sandbox."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return sorted(prefixes)


def resolve_binds(paths: Sequence[str | Path], state_dir: Path) -> list[str]:
    """The real paths of ``paths``, less those /usr shows already. Raises ValueError for one
    that holds the runtime's state or lies in it: a job would see every other job's files."""
    state = os.path.realpath(state_dir)
    resolved: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real == "/usr" or real.startswith("/usr/"):
            continue
        if _contains(real, state) or _contains(state, real):
            raise ValueError(f"{path} cannot be shown to jobs: it holds the runtime's state")
        if real not in resolved:
            resolved.append(real)
    return resolved


def _contains(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def find_sandbox(
    *,
    wanted: bool | None,
    bwrap: str | None,
    network: bool,
    extra_ro_binds: list[str],
    switch_uid: bool,
) -> Sandbox | None:
    """The sandbox jobs will run in, or None. ``wanted``: True requires one (RuntimeError if
    it cannot work here), None uses one if it works, False none. Blocks (run in a thread)."""
    if wanted is False:
        return None
    path = shutil.which(bwrap or "bwrap")
    setpriv = shutil.which("setpriv")
    problem = None
    if path is None:
        problem = f"bubblewrap ({bwrap or 'bwrap'}) is not installed"
    elif switch_uid and setpriv is None:
        problem = "setpriv (util-linux) is not installed; it switches jobs to their uids"
    sandbox = None
    if path is not None and problem is None:
        sandbox = Sandbox.for_host(
            path, setpriv=setpriv, network=network, extra_ro_binds=extra_ro_binds
        )
        problem = _probe(sandbox, switch_uid=switch_uid)
    if problem is None:
        return sandbox
    if wanted:
        raise RuntimeError(f"jobs cannot be sandboxed on this host: {problem}")
    logger.warning("jobs run without a sandbox: %s", problem)
    return None


def _probe(sandbox: Sandbox, *, switch_uid: bool) -> str | None:
    """Run ``true`` in a job's sandbox; what went wrong, or None."""
    with tempfile.TemporaryDirectory(prefix="glia-sandbox-probe-") as scratch:
        uid = PROBE_UID if switch_uid else None
        argv = sandbox.command_line(
            ["true"],
            working_dir=scratch,
            scratch=True,
            home=scratch,
            uid=uid,
            gid=uid,
            status_fd=None,
            tmpfs_bytes=None,
        )
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env={"PATH": "/usr/bin:/bin"},
                timeout=PROBE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{sandbox.bwrap} failed: {exc}"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).decode(errors="replace").strip()
        return f"{sandbox.bwrap} failed ({done.returncode}): {said or 'no error given'}"
    return None
