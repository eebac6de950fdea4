"""`glia serve`: the same server in its production shape, on PostgreSQL and Redis."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.e2e.conftest import GLIA, Cli, Server
from tests.factories import kill_leftover_jobs

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def production(tmp_path: Path, postgres_url: str) -> Iterator[Server]:
    server = Server(
        root=tmp_path,
        command=("serve",),
        extra_env={
            "GLIA_DATABASE_URL": postgres_url,
            "GLIA_REDIS_URL": REDIS_URL,
            "GLIA_REDIS_PREFIX": f"glia-e2e-{secrets.token_hex(6)}:",
            "GLIA_SECRET_KEY": secrets.token_urlsafe(40),
            "GLIA_ADMIN_PASSWORD": "admin-password-1",
            "GLIA_LOG_FORMAT": "json",
        },
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        kill_leftover_jobs(tmp_path / "data")


def test_serve_runs_jobs_on_postgres_and_redis(production: Server, tmp_path: Path) -> None:
    cli = Cli(server=production, config=tmp_path / "cli.toml")
    # no first-run conveniences: nothing wrote a CLI config
    assert not (tmp_path / "home" / "config.toml").exists()
    cli.ok("login", production.url, "-u", "admin", "--password-stdin", input="admin-password-1\n")
    result = cli("run", "--", "sh", "-c", "echo from-serve; exit 5")
    assert result.returncode == 5
    assert result.stdout.strip() == "from-serve"
    assert '"request_id"' in production.log_path.read_text()  # JSON logs with request ids


def test_serve_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    server = Server(root=tmp_path, command=("serve",))
    result = subprocess.run(
        [GLIA, "serve", "--port", str(server.port)],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "GLIA_SECRET_KEY" in result.stderr
