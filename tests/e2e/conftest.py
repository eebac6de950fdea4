"""A real `glia up` in a subprocess, and the real `glia` CLI driven against it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import kill_leftover_jobs
from tests.polling import eventually

GLIA = str(Path(sys.executable).parent / "glia")
_STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """One `glia up` process; restartable on the same port and data dir."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    command: tuple[str, ...] = ("up", "--no-web")
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLIA_")}
        env.update(
            HOME=str(self.root / "home"),
            GLIA_DATA_DIR=str(self.root / "data"),
            GLIA_CONFIG=str(self.root / "home" / "config.toml"),
            GLIA_RECONCILE_INTERVAL_S="1",
            GLIA_KILL_GRACE_S="3",
            # What the npm registry gave once (GraphiQL's files, bun) is not fetched per test.
            XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
        )
        env.update(self.extra_env)
        return env

    @property
    def log_path(self) -> Path:
        return self.root / f"server-{self.starts}.log"

    def start(self) -> None:
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [GLIA, *self.command, "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = self.process

        async def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"glia up exited early:\n{self.log_path.read_text()}")
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"{self.url}/healthz", timeout=1)).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            asyncio.run(eventually(healthy, within=_STARTUP_TIMEOUT_S))
        except TimeoutError:
            raise RuntimeError(
                f"glia up did not answer in time:\n{self.log_path.read_text()}"
            ) from None

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def admin_password(self) -> str:
        text = (self.root / "server-1.log").read_text()
        match = re.search(r"admin password \(shown once\): (\S+)", text)
        if match is None:
            raise AssertionError(f"glia up printed no admin password:\n{text}")
        return match.group(1)


@dataclass
class GatewayProcess:
    """One `glia gateway serve` of cluster ``name``, restartable on the same port and data
    dir; ``secret`` is the one its control plane shares with it."""

    name: str
    secret: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [GLIA, "gateway", "serve", "--name", self.name, "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir)]
        env = {**os.environ, "GLIA_GATEWAY_SECRET": self.secret}
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Cli:
    server: Server
    config: Path
    # Where the CLI runs: `glia run` ships this directory (an empty one of the test's own,
    # not the repository the tests happen to run from).
    cwd: Path | None = None

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.server.env, **(env or {})}
        env["GLIA_CONFIG"] = str(self.config)
        directory = cwd or self.cwd or self.server.root / "cwd"
        directory.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [GLIA, *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=directory,
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self(*args, input=input)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))

    def wait_status(self, job: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            found: dict[str, Any] = await asyncio.to_thread(self.json, "status", job)
            return found if found["status"].lower() in statuses else None

        result: dict[str, Any] = asyncio.run(eventually(reached, within=timeout))
        return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(root=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        kill_leftover_jobs(tmp_path / "data")


@pytest.fixture
def cli(server: Server) -> Cli:
    """The CLI as `glia up` left it: logged in as admin."""
    return Cli(server=server, config=server.root / "home" / "config.toml")
