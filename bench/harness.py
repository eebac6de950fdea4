"""A throwaway `glia up` for benchmarks: temp data dir and HOME, a free port, torn down after."""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

GLIA = str(Path(sys.executable).parent / "glia")
REPOSITORY = Path(__file__).resolve().parent.parent
# The project's packages, as `pip install` puts them in site-packages.
PACKAGES = (
    "glia",
    "control_plane",
    "server",
    "graph",
    "resolvers",
    "cluster_gateway",
    "sdk",
    "cli",
    "web",
    "policies",
)


def compile_bytecode() -> None:
    """Compile the project's modules as an installed package has them (pip compiles them on
    install). In the editable checkout they are compiled on first import, unless the
    environment sets PYTHONDONTWRITEBYTECODE (as the bench machine does): every `glia` the
    bench starts would then compile ~55 modules again, ~0.1 s that a user's install never
    pays."""
    for package in PACKAGES:
        compileall.compile_dir(REPOSITORY / package, quiet=1)


@dataclass(frozen=True)
class BenchServer:
    url: str
    token: str
    data_dir: Path
    # The environment under which `glia` talks to this server as its admin.
    cli_env: dict[str, str]
    # Where the web UI is, when the bench asked for it.
    web_url: str | None = None
    log: Path | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def glia_up(
    *, cgroups: bool = True, web: bool = False, settings: Mapping[str, str] | None = None
) -> Iterator[BenchServer]:
    """``settings``: the server's environment over the embedded default (GLIA_DATABASE_URL…)."""
    compile_bytecode()
    # Jobs outlive their server by design: the teardown kills what is left, and a supervisor
    # that writes its last file meanwhile must not fail the run.
    with tempfile.TemporaryDirectory(prefix="glia-bench-", ignore_cleanup_errors=True) as root:
        port = _free_port()
        web_port = _free_port() if web else None
        config = Path(root) / "config.toml"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLIA_")}
        env.update(
            HOME=root,
            GLIA_DATA_DIR=f"{root}/data",
            GLIA_CONFIG=str(config),
            GLIA_LOG_LEVEL="WARNING",
            # bun and GraphiQL's files from the npm registry: once per machine, not per run.
            XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
        )
        env.update(settings or {})
        log = open(Path(root) / "server.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [GLIA, "up", "--port", str(port)]
            + (["--web-port", str(web_port)] if web_port else ["--no-web"]),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (
                        httpx.get(f"{url}/healthz", timeout=1).status_code == 200
                        and config.exists()
                    ):
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((Path(root) / "server.log").read_text())
                time.sleep(0.1)
            saved = tomllib.loads(config.read_text())
            token = saved["contexts"][saved["current-context"]]["token"]
            web_url = f"http://127.0.0.1:{web_port}" if web_port else None
            if web_url is not None:
                _wait_for_web(web_url, process, Path(root) / "server.log")
            yield BenchServer(
                url=url,
                token=token,
                data_dir=Path(root) / "data",
                cli_env=env,
                web_url=web_url,
                log=Path(root) / "server.log",
            )
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
            _kill_jobs(Path(root) / "data")


def _wait_for_web(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """The web UI builds its pages on start (tens of seconds)."""
    deadline = time.monotonic() + 300
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/login", timeout=2).status_code < 400:
                return
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(1)


def _kill_jobs(data_dir: Path) -> None:
    """Kill the supervisors and jobs a bench left running (by the pids their files record),
    and remove their cgroups (a killed supervisor leaves its job's behind)."""
    for record in data_dir.glob("clusters/*/jobs/*/*.json"):
        if record.name in ("supervisor.json", "child.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                os.killpg(json.loads(record.read_text())["pid"], signal.SIGKILL)
    for spec in data_dir.glob("clusters/*/jobs/*/spec.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            cgroup = json.loads(spec.read_text())["cgroup"] or {}
            for directory in {cgroup.get("memory"), cgroup.get("cpu"), cgroup.get("pids")}:
                for _ in range(50):  # killed processes leave their cgroup a moment later
                    if not directory or not os.path.isdir(directory):
                        break
                    with contextlib.suppress(OSError):
                        os.rmdir(directory)
                    time.sleep(0.01)


def summary(samples_s: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples_s)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.2f} ms   p99 {p99:7.2f} ms   (n={len(ms)})"
