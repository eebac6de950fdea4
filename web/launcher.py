"""Build and serve the web UI: `glia web` alone against an API, and `glia up` beside it.

Reflex compiles the pages into a Next.js app with bun, which comes from the npm registry
(`npm install bun`, into the user's cache, once): nothing is downloaded from anywhere else.
`reflex run --env prod --single-port` then serves the compiled pages and Reflex's backend on
one port. The backend reaches the API at ``api_url`` through the SDK; the browser reaches the
backend at ``public_url`` (baked into the compiled pages, so a new URL means a new build).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from glia.paths import cache_dir

WEB_DIR = Path(__file__).resolve().parent
# Where Reflex runs, reads rxconfig.py and builds (.web/).
PROJECT_DIR = WEB_DIR / "project"
BUN_VERSION = "1.4.5"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class WebError(Exception):
    """The web UI cannot be built or started; the message says why and what to do."""


def ensure_bun() -> Path:
    """bun from the npm registry, installed once into the cache."""
    prefix = cache_dir() / f"bun-{BUN_VERSION}"
    bun = prefix / "node_modules" / ".bin" / "bun"
    if bun.exists():
        return bun
    npm = shutil.which("npm")
    if npm is None:
        raise WebError(
            "the web UI is built with bun, installed from the npm registry: install Node.js "
            "and npm (apt-get install nodejs npm), or start Glia with --no-web"
        )
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-fund", "--no-audit", f"bun@{BUN_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not bun.exists():
        raise WebError(f"could not install bun from the npm registry: {done.stderr.strip()[-500:]}")
    return bun


def environment(
    *, api_url: str, public_url: str, public_api_url: str | None = None
) -> dict[str, str]:
    bun = ensure_bun()
    env = dict(os.environ)
    env.update(
        REFLEX_BUN_PATH=str(bun),
        PATH=f"{bun.parent}{os.pathsep}{env.get('PATH', '')}",
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_API_URL=public_url,
        GLIA_API_URL=api_url,
        GLIA_PUBLIC_API_URL=public_api_url or api_url,
        # Reflex finds the app module by walking sys.path (an editable install's import hook
        # is not on it): the folder that holds the `web` package is.
        PYTHONPATH=os.pathsep.join(p for p in (str(WEB_DIR.parent), env.get("PYTHONPATH")) if p),
    )
    return env


def start(
    *,
    api_url: str,
    host: str = "127.0.0.1",
    port: int = 3000,
    public_url: str | None = None,
    public_api_url: str | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Build the pages and serve them with Reflex's backend on ``host:port`` (a child
    process: the caller stops it with `stop`)."""
    env = environment(
        api_url=api_url,
        public_url=public_url or f"http://{host}:{port}",
        public_api_url=public_api_url,
    )
    command = [
        sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port",
        "--backend-host", host, "--frontend-port", str(port), "--backend-port", str(port),
        "--loglevel", "warning",
    ]  # fmt: skip
    output = open(log, "ab") if log is not None else None  # noqa: SIM115
    try:
        return subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            stdout=output or None,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            preexec_fn=_end_with_parent,
        )
    finally:
        if output is not None:
            output.close()


def _end_with_parent() -> None:
    """In the web server's process, before it runs: end it (SIGTERM, on which Reflex stops
    its workers) when the process that started it dies, however it dies. `glia up` stops it
    itself on Ctrl-C; a SIGTERM or SIGKILL to `glia up` would otherwise leave it running."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """Stop the web server and everything it started (its process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()
    except ProcessLookupError:
        pass
