"""Buckets through the real `glia` binary against a real `glia up --no-web`: make a bucket,
copy files in and out, list, delete, and what a stranger is told."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, Server

pytestmark = pytest.mark.e2e


def test_mkbucket_cp_ls_rm(server: Server, cli: Cli, tmp_path: Path) -> None:
    cli.ok("blob", "mkbucket", "data")
    buckets = cli.json("blob", "lsbucket")
    assert [b["uri"] for b in buckets] == ["blob://default/admin/admin/data"]

    small = tmp_path / "notes.txt"
    small.write_text("hello buckets\n")
    tree = tmp_path / "dataset"
    (tree / "train").mkdir(parents=True)
    (tree / "train" / "a.csv").write_bytes(os.urandom(1000))
    (tree / "b.csv").write_bytes(b"b")
    cli.ok("blob", "cp", str(small), "blob:data/")
    cli.ok("blob", "cp", "-r", str(tree), "blob:data/dataset")
    # Piped: no progress bar, nothing but the bytes on stdout.
    assert cli.ok("blob", "cp", "blob:data/notes.txt", "-") == "hello buckets\n"

    top = cli.json("blob", "ls", "blob:data")
    assert [o["key"] for o in top["objects"]] == ["notes.txt"]
    assert top["prefixes"] == ["dataset/"]
    everything = cli.json("blob", "ls", "-r", "blob:data")
    assert sorted(o["key"] for o in everything["objects"]) == [
        "dataset/b.csv",
        "dataset/train/a.csv",
        "notes.txt",
    ]
    assert cli.ok("blob", "ls", "blob:data/dataset/").split() == ["dataset/train/", "dataset/b.csv"]
    assert [o["key"] for o in cli.json("blob", "glob", "blob:data/**/*.csv")] == [
        "dataset/b.csv",
        "dataset/train/a.csv",
    ]

    out = tmp_path / "out"
    cli.ok("blob", "cp", "-r", "blob:data/dataset/", str(out))
    assert (out / "train" / "a.csv").read_bytes() == (tree / "train" / "a.csv").read_bytes()
    cli.ok("blob", "cp", "blob:data/notes.txt", str(out) + "/")
    assert (out / "notes.txt").read_text() == "hello buckets\n"

    signed = cli.ok("blob", "sign-url", "blob:data/notes.txt", "--expires", "5m").strip()
    assert signed.startswith(server.url + "/api/blob/default/admin/admin/data/notes.txt?")

    cli.ok("blob", "rm", "blob:data/notes.txt")
    missing = cli("blob", "rm", "blob:data/notes.txt")
    assert missing.returncode == 66 and "Traceback" not in missing.stderr
    cli.ok("blob", "rm", "-r", "blob:data/dataset/")
    assert cli.json("blob", "ls", "-r", "blob:data") == {"objects": [], "prefixes": []}
    cli.ok("blob", "rmbucket", "data")
    assert cli.json("blob", "lsbucket") == []


def test_access_keys_from_the_cli(server: Server, cli: Cli, tmp_path: Path) -> None:
    cli.ok("blob", "mkbucket", "keys")
    made = cli.json("blob", "mkcredentials", "ci", "keys", "--read-only")
    assert made["credential"]["readOnly"] is True and made["secret"]
    listed = cli.json("blob", "lscredentials")
    assert [c["accessKeyId"] for c in listed] == [made["credential"]["accessKeyId"]]
    assert "secret" not in cli.ok("blob", "lscredentials", "-o", "json")
    cli.ok("blob", "rmcredentials", made["credential"]["id"])
    assert cli.json("blob", "lscredentials") == []
    assert cli.json("blob", "statbucket", "keys")["uri"] == "blob://default/admin/admin/keys"
