"""`glia run` ships the directory it is typed in, through the real binary against a real
`glia up`: the job works in the synced copy, ignore files hold, a second run sends nothing,
deleted files go, the size cap says what to exclude, --no-sync and -w, and a stranger
cannot use another user's workdir."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cli, Server

pytestmark = pytest.mark.e2e

# What the job prints: where it is, what it sees there, and what its helper module says.
TRAIN = """\
import os
import helpers.greet
print("cwd", os.getcwd())
for directory, dirs, files in sorted(os.walk(".")):
    dirs.sort()
    for name in sorted(files):
        print("has", os.path.join(directory, name)[2:])
print(helpers.greet.HELLO)
open("written-by-the-job.txt", "w").write("out")
"""


def _workdirs(server: Server) -> Path:
    """The admin's synced workdirs on the cluster's disk."""
    root = server.root / "data" / "clusters" / "default" / "storage" / "admin" / "admin"
    return root / ".glia" / "workdirs"


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "my project"
    (project / "helpers").mkdir(parents=True)
    (project / "train.py").write_text(TRAIN)
    (project / "helpers" / "__init__.py").write_text("")
    (project / "helpers" / "greet.py").write_text('HELLO = "hello from the helper"\n')
    (project / "run.sh").write_text("#!/bin/sh\necho run.sh ran in $(pwd)\n")
    (project / "run.sh").chmod(0o755)
    # Left out: by .gitignore (and a nested one), by .gliaignore, and .git itself.
    (project / ".gitignore").write_text("*.log\nbuild/\n")
    (project / ".gliaignore").write_text("data/\n")
    (project / "helpers" / ".gitignore").write_text("secret.txt\n")
    (project / "helpers" / "secret.txt").write_text("not shipped\n")
    (project / "train.log").write_text("not shipped\n")
    (project / "build").mkdir()
    (project / "build" / "out.o").write_bytes(b"\0" * 100)
    (project / "data").mkdir()
    (project / "data" / "big.bin").write_bytes(os.urandom(300_000))
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return project


def _submitted(cli: Cli, cwd: Path, *args: str) -> dict[str, Any]:
    """The job `glia run --detach` submits from ``cwd``."""
    result = cli("run", "--detach", "-o", "json", *args, "--", "true", cwd=cwd)
    assert result.returncode == 0, (result.stdout, result.stderr)
    job: dict[str, Any] = json.loads(result.stdout)
    return job


def _stored(workdir: Path) -> dict[str, tuple[int, float]]:
    """Each stored file: its inode (a file sent again is a new one) and its mtime."""
    return {
        str(path.relative_to(workdir)): (path.stat().st_ino, path.stat().st_mtime)
        for path in workdir.rglob("*")
        if path.is_file()
    }


def test_run_ships_the_directory_incrementally(server: Server, cli: Cli, tmp_path: Path) -> None:
    project = _project(tmp_path)
    # (No __pycache__: the job's own files in its workdir are removed by the next sync.)
    first = cli("run", "-e", "PYTHONDONTWRITEBYTECODE=1", "--", "python3", "train.py", cwd=project)
    assert first.returncode == 0, (first.stdout, first.stderr)
    assert "synced" in first.stderr and "7 of 7 files sent" in first.stderr, first.stderr
    lines = first.stdout.splitlines()
    assert "cwd /job/work" in lines  # the synced copy, where a scratch dir would be
    shipped = sorted(line.removeprefix("has ") for line in lines if line.startswith("has "))
    assert shipped == [
        ".gitignore",
        ".gliaignore",
        "helpers/.gitignore",
        "helpers/__init__.py",
        "helpers/greet.py",
        "run.sh",
        "train.py",
    ]
    assert "hello from the helper" in lines

    (workdir,) = _workdirs(server).iterdir()
    assert workdir.name.startswith("my-project-")
    # The job's own output stays in the storage folder (until the next sync removes it).
    assert (workdir / "written-by-the-job.txt").read_text() == "out"
    before = _stored(workdir)
    assert before["train.py"][1] == pytest.approx((project / "train.py").stat().st_mtime, abs=1e-3)

    # Nothing changed: nothing is sent (the same files, not new copies); the job's own
    # output, which the directory does not hold, is removed; the executable bit held.
    second = cli("run", "--", "./run.sh", cwd=project)
    assert second.returncode == 0, second.stderr
    assert "run.sh ran in /job/work" in second.stdout
    assert "0 of 7 files sent" in second.stderr and "1 removed" in second.stderr, second.stderr
    after = _stored(workdir)
    assert {k: v for k, v in after.items() if k != "written-by-the-job.txt"} == {
        k: v for k, v in before.items() if k != "written-by-the-job.txt"
    }
    third = cli("run", "--", "true", cwd=project)
    assert third.returncode == 0 and "synced" not in third.stderr, third.stderr

    # A file deleted and one changed: the one goes, the other alone is sent again.
    (project / "helpers" / "greet.py").unlink()
    (project / "run.sh").write_text("#!/bin/sh\necho changed\n")
    fourth = cli("run", "--", "sh", "-c", "ls helpers; ./run.sh", cwd=project)
    assert fourth.returncode == 0, fourth.stderr
    assert "greet.py" not in fourth.stdout and "changed" in fourth.stdout
    assert "1 of 6 files sent" in fourth.stderr and "1 removed" in fourth.stderr, fourth.stderr
    assert not (workdir / "helpers" / "greet.py").exists()
    assert _stored(workdir)["train.py"] == before["train.py"]

    # The job remembers its workdir: generate-run-command names it (no second sync).
    job = _submitted(cli, project, "--name", "again")
    assert job["storageWorkdir"] is not None and job["workingDir"] is None
    again = shlex.split(cli.ok("job", "generate-run-command", "again"))
    assert again[again.index("--workdir") + 1] == job["storageWorkdir"]
    assert job["storageWorkdir"].startswith("storage://default/admin/admin/.glia/workdirs/")


def test_no_sync_cap_and_explicit_workdirs(server: Server, cli: Cli, tmp_path: Path) -> None:
    project = _project(tmp_path)

    scratch = cli("run", "--no-sync", "-o", "json", "--", "sh", "-c", "pwd; ls -A", cwd=project)
    assert scratch.returncode == 0, scratch.stderr
    assert "/job/work" in scratch.stderr and "train.py" not in scratch.stderr
    assert not _workdirs(server).exists()
    regenerated = cli.ok("job", "generate-run-command", json.loads(scratch.stdout)["id"])
    assert "--no-sync" in regenerated

    # Over the cap: the biggest files are named, with where to exclude them; nothing runs.
    (project / "model.ckpt").write_bytes(os.urandom(64_000))
    jobs = len(cli.json("ps", "-a"))
    over = cli("run", "--max-sync-size", "50K", "--", "true", cwd=project)
    assert over.returncode == 65, (over.stdout, over.stderr)
    assert over.stderr.startswith("error: ") and "Traceback" not in over.stderr
    assert "model.ckpt" in over.stderr and ".gliaignore" in over.stderr, over.stderr
    assert "data/big.bin" not in over.stderr  # ignored files do not count
    assert len(cli.json("ps", "-a")) == jobs
    bad = cli("run", "--max-sync-size", "lots", "--", "true", cwd=project)
    assert bad.returncode == 65 and "invalid size" in bad.stderr

    # -w storage:DIR: the job starts in that storage directory, nothing synced.
    cli.ok("storage", "mkdir", "storage:shared/code")
    explicit = cli("run", "-w", "storage:shared/code", "--", "sh", "-c", "pwd; echo x > made")
    assert explicit.returncode == 0, explicit.stderr
    assert "/job/work" in explicit.stdout and "synced" not in explicit.stderr
    assert cli.ok("storage", "ls", "storage:shared/code").split() == ["made"]
    # -w with a host path keeps working as before.
    on_host = Path(tempfile.mkdtemp(prefix="glia-workdir-"))
    try:
        on_host.chmod(0o755)  # the job runs under its user's uid
        host = cli("run", "-w", str(on_host), "--", "pwd")
        assert host.returncode == 0 and host.stdout.strip() == str(on_host), host.stderr
    finally:
        on_host.rmdir()
    both = cli("run", "--no-sync", "-w", "/", "--", "true")
    assert both.returncode == 65 and "--no-sync" in both.stderr


def test_a_stranger_cannot_use_anothers_workdir(server: Server, cli: Cli, tmp_path: Path) -> None:
    project = _project(tmp_path)
    job = _submitted(cli, project)
    workdir = job["storageWorkdir"]
    cli.ok("admin", "add-user", "bob", "--password-stdin", input="bob-password-1\n")
    bob = Cli(server=server, config=tmp_path / "bob.toml")
    bob.ok("login", server.url, "-u", "bob", "--password-stdin", input="bob-password-1\n")

    for uri in (workdir, "storage:/admin/admin"):
        refused = bob("run", "-w", uri, "--", "cat", "train.py")
        assert refused.returncode == 66, (refused.stdout, refused.stderr)
        assert refused.stderr.startswith("error: ") and "not found" in refused.stderr
        assert "Traceback" not in refused.stderr
    # Bob's own sync goes to his own project, not the admin's.
    mine = _submitted(bob, project)
    assert mine["storageWorkdir"].startswith("storage://default/bob/bob/.glia/workdirs/")

    # A link inside the storage tree that leads out of it is never bound: the job fails to
    # start, saying why.
    stored = _workdirs(server).parent.parent
    (stored / "escape").symlink_to("/etc")
    escaped = cli("run", "-w", "storage:escape", "--", "cat", "passwd")
    assert escaped.returncode != 0
    assert "root:" not in escaped.stdout
    assert "outside" in escaped.stderr, escaped.stderr
