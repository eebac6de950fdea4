"""`glia storage` through the real binary against a real `glia up`: trees copied both ways,
--update, --continue, filters and .gliaignore, and the listings."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import GLIA, Cli, Server

pytestmark = pytest.mark.e2e


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _storage(server: Server) -> Path:
    """The admin's project on the cluster's disk."""
    return server.root / "data" / "clusters" / "default" / "storage" / "admin" / "admin"


def test_cp_r_both_ways_with_update_filters_and_listings(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    source = tmp_path / "dataset"
    (source / "train" / "deep").mkdir(parents=True)
    (source / "train" / "empty").mkdir()
    for index in range(30):
        (source / "train" / f"{index:02}.txt").write_text(f"sample {index}\n")
    (source / "train" / "deep" / "weights.bin").write_bytes(os.urandom(300_000))
    (source / "notes with spaces.md").write_text("notes\n")
    (source / "scratch.tmp").write_text("skip me\n")
    (source / "cache").mkdir()
    (source / "cache" / "big").write_text("ignored by .gliaignore\n")
    (source / ".gliaignore").write_text("cache/\n")
    # Links are neither followed nor sent, to a file or to a directory out of the tree.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not part of the dataset\n")
    (source / "link-to-notes").symlink_to(source / "notes with spaces.md")
    (source / "train" / "link-out").symlink_to(outside)

    cli.ok("storage", "cp", "-r", "--exclude", "*.tmp", str(source), "storage:datasets/v1")
    remote = _storage(cli.server) / "datasets" / "v1"
    expected = {
        name: data
        for name, data in _tree(source).items()
        if not name.endswith(".tmp")
        and not name.startswith("cache")
        and name != ".gliaignore"
        and "link-" not in name
    }
    assert _tree(remote) == expected
    assert not (remote / "link-to-notes").exists() and not (remote / "train" / "link-out").exists()
    # Files travel in archives, which make their directories; an empty one is made too.
    assert (remote / "train" / "empty").is_dir()

    listed = cli.json("storage", "ls", "storage:datasets/v1")
    assert [(e["name"], e["type"]) for e in listed] == [
        ("notes with spaces.md", "FILE"),
        ("train", "DIRECTORY"),
    ]
    assert "weights.bin" in cli.ok("storage", "tree", "storage:datasets")
    usage = cli.json("storage", "du", "storage:datasets")
    assert usage["files"] == len(expected)
    found = cli.json("storage", "glob", "storage:datasets/**/*.bin")
    assert [m["path"] for m in found["matches"]] == ["/datasets/v1/train/deep/weights.bin"]
    assert cli.json("storage", "df")["free"] > 0

    # And back, into an existing directory: it lands inside it.
    back = tmp_path / "back"
    back.mkdir()
    cli.ok("storage", "cp", "-r", "storage:datasets/v1", str(back))
    assert _tree(back / "v1") == expected

    # --update copies only what is newer than the target's copy.
    time.sleep(0.05)
    (source / "train" / "00.txt").write_text("changed\n")
    before = (remote / "train" / "01.txt").stat().st_mtime_ns
    cli.ok("storage", "cp", "-r", "--update", str(source / "train"), "storage:datasets/v1/")
    assert (remote / "train" / "00.txt").read_text() == "changed\n"
    assert (remote / "train" / "01.txt").stat().st_mtime_ns == before
    downloaded = back / "v1" / "train" / "01.txt"
    downloaded_before = downloaded.stat().st_mtime_ns
    cli.ok("storage", "cp", "-r", "--update", "storage:datasets/v1/train", str(back / "v1"))
    assert (back / "v1" / "train" / "00.txt").read_text() == "changed\n"
    assert downloaded.stat().st_mtime_ns == downloaded_before

    # Inside storage: mv, cp, rm.
    cli.ok("storage", "mv", "storage:datasets/v1/notes with spaces.md", "storage:notes.md")
    cli.ok("storage", "cp", "storage:notes.md", "storage:notes-copy.md")
    cli.ok("storage", "mkdir", "storage:empty/deeper")
    cli.ok("storage", "rm", "-r", "storage:empty", "storage:notes-copy.md")
    names = {e["name"] for e in cli.json("storage", "ls")}
    assert names == {"datasets", "notes.md"}

    # Bad input and missing paths: a clear line, the sysexits code.
    refused = cli("storage", "ls", "storage:../other")
    assert refused.returncode == 65 and "Traceback" not in refused.stderr
    missing = cli("storage", "ls", "storage:nothing-here")
    assert missing.returncode == 66, missing.stderr


def test_cp_continue_resumes_what_an_earlier_copy_left(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    tree = _storage(cli.server)
    cli.ok("storage", "mkdir", "storage:")
    # An upload cut short left its first MiB on the cluster.
    (tree / ".big.bin.glia-partial").write_bytes(data[: 1024 * 1024])
    cli.ok("storage", "cp", "--continue", str(big), "storage:big.bin")
    assert (tree / "big.bin").read_bytes() == data
    assert not (tree / ".big.bin.glia-partial").exists()

    # What was kept is checked with the rest: a kept part that is wrong fails the checksum,
    # which shows the copy continued instead of starting over.
    (tree / ".again.bin.glia-partial").write_bytes(b"\0" * 1024)
    wrong = cli("storage", "cp", "--continue", str(big), "storage:again.bin")
    assert wrong.returncode == 65 and "checksum" in wrong.stderr, wrong.stderr
    assert not (tree / "again.bin").exists()

    # A download cut short: its partial beside the target is continued.
    target = tmp_path / "down" / "big.bin"
    target.parent.mkdir()
    (target.parent / ".big.bin.glia-partial").write_bytes(data[:777])
    cli.ok("storage", "cp", "--continue", "storage:big.bin", str(target))
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()

    # And a finished file is skipped by --continue: nothing is sent again.
    stamp = (tree / "big.bin").stat().st_mtime_ns
    cli.ok("storage", "cp", "--continue", str(big), "storage:big.bin")
    assert (tree / "big.bin").stat().st_mtime_ns == stamp


README = Path(__file__).parents[2] / "README.md"


def test_the_readmes_files_example_works(server: Server, cli: Cli, tmp_path: Path) -> None:
    text = README.read_text().split("### Files", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    env = {
        **server.env,
        "GLIA_CONFIG": str(cli.config),
        "PATH": f"{Path(GLIA).parent}:{os.environ.get('PATH', '')}",
    }
    work = tmp_path / "work"  # tmp_path holds the server's own data dir
    work.mkdir()
    outputs = []
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        outputs.append(result.stdout)
    assert (work / "copy" / "train" / "part-0.csv").read_text() == "a,b\n1,2\n"
    assert "train" in outputs[2]
    assert "1 files" in outputs[-1]
