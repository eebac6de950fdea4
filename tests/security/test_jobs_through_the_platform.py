"""A job cannot reach the platform or other users' jobs: attacks made from inside real jobs,
run by the real CLI against a real `glia up` (as root in CI: jobs get uids of their own and a
bubblewrap sandbox)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Cli, Server

pytestmark = pytest.mark.e2e


def _attempt(cli: Cli, script: str) -> tuple[int, str]:
    result = cli("run", "--", "sh", "-c", script)
    return result.returncode, result.stdout + result.stderr


def test_a_job_reads_nothing_of_the_platform(server: Server, cli: Cli) -> None:
    data = server.root / "data"
    secrets = {
        data / "secret.key": (data / "secret.key").read_text().strip(),
        server.root / "home" / "config.toml": "token",
    }
    for path, secret in secrets.items():
        code, output = _attempt(cli, f"cat {path}")
        assert code != 0, output
        assert secret not in output
    code, output = _attempt(cli, f"ls {data}")
    assert code != 0 and "glia.db" not in output
    code, output = _attempt(cli, f"echo x >> {data / 'glia.db'}")
    assert code != 0, output


def test_a_job_reads_no_other_job(server: Server, cli: Cli) -> None:
    victim = cli.ok("run", "--detach", "--", "sh", "-c", "echo the-victims-secret; sleep 60")
    victim_id = victim.strip()
    cli.wait_status(victim_id, "running")
    job_dir = next((server.root / "data").glob(f"clusters/*/jobs/{victim_id}"))
    for name in ("output.log", "spec.json", "exit.json", "child.json"):
        code, output = _attempt(cli, f"cat {job_dir / name}; echo fake > {job_dir / name}")
        assert "the-victims-secret" not in output
        assert code != 0, (name, output)
    cli.ok("kill", victim_id)


def test_a_job_runs_under_an_unprivileged_uid(cli: Cli) -> None:
    uid, groups = cli.ok("run", "--", "sh", "-c", "id -u; id -G").split()[:2]
    assert int(uid) >= 200_000
    assert groups == uid  # its own group and no other
