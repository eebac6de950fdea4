"""Volumes through the real `glia` binary against a real `glia up`: storage read-only and
read-write, a disk mounted by one job at a time, and what a user may not mount."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import httpx
import pytest

from cluster_gateway.disks import LocalDisks
from tests.e2e.conftest import Cli, Server
from tests.e2e.test_tenancy_cli import _refused, _user

pytestmark = pytest.mark.e2e

needs_disks = pytest.mark.skipif(
    LocalDisks(Path("/nonexistent")).problem() is not None,
    reason="disks need root, mkfs.ext4 and loop devices, as CI has",
)


def _output(cli: Cli, *args: str) -> str:
    """The output of a job run with ``args`` (it must succeed)."""
    return cli.ok("run", "--no-sync", *args)


def test_storage_is_mounted_read_only_or_read_write(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("from storage\n")
    cli.ok("storage", "cp", str(source), "storage:data/in.txt")
    said = _output(
        cli,
        "-v",
        "storage:data:/var/data:ro",
        "--",
        "sh",
        "-c",
        "cat /var/data/in.txt; touch /var/data/new 2>/dev/null && echo wrote || echo refused",
    )
    assert "from storage" in said and "refused" in said and "wrote" not in said

    _output(cli, "-v", "storage:results:/out", "--", "sh", "-c", "echo done > /out/r.txt")
    back = tmp_path / "r.txt"
    cli.ok("storage", "cp", "storage:results/r.txt", str(back))
    assert back.read_text() == "done\n"

    job = cli.ok("run", "--no-sync", "--detach", "-v", "storage:data:/var/data:ro", "--", "true")
    command = cli.ok("job", "generate-run-command", job.strip())
    assert "-v storage://default/admin/admin/data:/var/data:ro" in command


def test_what_may_not_be_mounted_is_refused_naming_it(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    cli.ok("storage", "mkdir", "storage:private")
    bob = _user(server, cli, tmp_path, "bob")
    refused = bob("run", "--no-sync", "-v", "storage:/admin/admin/private:/d", "--", "true")
    _refused(refused, 66, "storage://default/admin/admin/private")
    for bad, word in (
        ("storage:x:/usr/x", "inside /usr"),
        ("bucket:x:/x", "storage:, disk: or secret:"),
        ("storage:x", "expected storage:REF:PATH"),
    ):
        _refused(cli("run", "--no-sync", "-v", bad, "--", "true"), 65, word)
    missing = cli("run", "--no-sync", "-v", "disk:nosuch:/mnt/d", "--", "true")
    _refused(missing, 66, "nosuch")


@needs_disks
def test_a_disk_keeps_its_files_and_is_mounted_by_one_job_at_a_time(cli: Cli) -> None:
    cli.ok("disk", "create", "64M", "--name", "work")
    said = _output(
        cli, "-v", "disk:work:/mnt/work", "--", "sh", "-c",
        "echo kept > /mnt/work/f; df -k /mnt/work | tail -1 | awk '{print $2}'",
    )  # fmt: skip
    assert 50_000 < int(said.split()[-1]) <= 65_536  # the disk's size, in KiB
    assert "kept" in _output(cli, "-v", "disk:work:/mnt/work:ro", "--", "cat", "/mnt/work/f")
    # A job cannot write past the disk's size.
    full = _output(
        cli, "-v", "disk:work:/mnt/work", "--", "sh", "-c",
        "dd if=/dev/zero of=/mnt/work/big bs=1M count=100 2>/dev/null && echo fit || echo full",
    )  # fmt: skip
    assert full.strip().endswith("full")

    holder = cli.ok(
        "run", "--no-sync", "--detach", "-v", "disk:work:/mnt/work", "--", "sleep", "600"
    ).strip()
    cli.wait_status(holder, "running")
    waiter = cli.ok(
        "run", "--no-sync", "--detach", "-v", "disk:work:/mnt/work", "--", "ls", "/mnt/work"
    ).strip()

    def waits() -> bool:
        status = cli.json("status", waiter)
        return status["reason"] == "DISK_UNAVAILABLE"

    deadline = time.monotonic() + 30
    while not waits():
        assert time.monotonic() < deadline, cli.json("status", waiter)
        time.sleep(0.5)
    assert cli.json("disk", "get", "work")["usedBy"] == holder
    busy = cli("disk", "rm", "work")
    _refused(busy, 65, "in use by job")
    cli.ok("kill", holder)
    cli.wait_status(waiter, "succeeded")
    assert "f" in cli.ok("logs", waiter).split()


@needs_disks
def test_readme_data_in_jobs_runs_as_written(cli: Cli) -> None:
    readme = Path(__file__).parents[2] / "README.md"
    text = readme.read_text().split("### Data in jobs", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    outputs = []
    for line in block.splitlines():
        command = line.split("  #")[0].strip()
        if command:
            args = shlex.split(command)
            assert args[0] == "glia"
            outputs.append(cli.ok(*args[1:]))
    assert "/scratch" in outputs[2]  # df of the mounted disk
    assert "scratch" in outputs[3] and "1.0 GiB" in outputs[3]


SECRET = "s3cr3t-VALUE-4f1c9e"


def test_a_secret_reaches_the_job_as_a_file_and_a_variable_and_nowhere_else(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    cli.ok("secret", "add", "api-token", SECRET)
    job = cli.ok(
        "run", "--no-sync", "--detach",
        "-v", "secret:api-token:/etc/api-token",
        "-e", "TOKEN=secret:api-token",
        "--", "sh", "-c",
        'echo "file=$(cat /etc/api-token)"; echo "env=$TOKEN"; '
        "stat -c 'mode=%a' /etc/api-token; echo more > /etc/api-token || echo read-only",
    ).strip()  # fmt: skip
    cli.wait_status(job, "succeeded")
    said = cli.ok("logs", job)
    assert f"file={SECRET}" in said and f"env={SECRET}" in said
    assert "mode=400" in said and "read-only" in said

    # Nowhere else: what the API says of the job, the command that would make it again, the
    # server's log, its metrics, and every file of the platform but the job's own output.
    shown = cli.ok("status", job, "-o", "json") + cli.ok("job", "generate-run-command", job)
    assert SECRET not in shown and "api-token" in shown
    assert SECRET not in server.log_path.read_text()
    assert SECRET not in httpx.get(f"{server.url}/metrics").text
    for path in (server.root / "data").rglob("*"):
        if path.is_file() and not path.name.startswith("output."):
            assert SECRET.encode() not in path.read_bytes(), path

    # A user who may not use the secret is refused, naming it.
    bob = _user(server, cli, tmp_path, "bob")
    refused = bob(
        "run", "--no-sync", "-e", "T=secret:secret://default/admin/admin/api-token", "--", "true"
    )
    _refused(refused, 66, "admin/admin")


def test_a_job_reads_its_secret_after_the_key_is_rotated(server: Server, cli: Cli) -> None:
    from cryptography.fernet import Fernet

    cli.ok("secret", "add", "db-password", SECRET)
    server.stop()
    server.extra_env["GLIA_SECRETS_KEYS"] = Fernet.generate_key().decode()
    server.start()
    rotated = cli.json("admin", "rotate-secrets-key")
    assert rotated["secrets"] >= 1 and rotated["unreadable"] == []
    # Followed from its submission: its output comes once it runs (the secret is opened
    # first, so the job starts a little later).
    said = cli.ok(
        "run", "--no-sync", "-e", "PASSWORD=secret:db-password",
        "--", "sh", "-c", 'echo "got=$PASSWORD"',
    )  # fmt: skip
    assert f"got={SECRET}" in said
