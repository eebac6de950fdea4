"""Secrets through the real `glia` binary against a real `glia up --no-web`: add from an
argument, a file and standard input, list, delete, the errors and their exit codes, a
reader and a stranger refused, the key rotation, and values found nowhere afterwards (the
CLI's output, the server's log, /metrics)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Cli, Server

pytestmark = pytest.mark.e2e

VALUE = "glia-e2e-value-" + uuid.uuid4().hex


def _user(server: Server, cli: Cli, tmp_path: Path, name: str) -> Cli:
    password = f"{name}-password-1"
    cli.ok("admin", "add-user", name, "--password-stdin", input=password + "\n")
    user = Cli(server=server, config=tmp_path / f"{name}.toml")
    user.ok("login", server.url, "-u", name, "--password-stdin", input=password + "\n")
    return user


def _refused(result: object, code: int, *words: str) -> str:
    stderr = str(getattr(result, "stderr", ""))
    assert getattr(result, "returncode", None) == code, (code, result)
    assert stderr.startswith("error: ") and "Traceback" not in stderr, stderr
    for word in words:
        assert word in stderr, (word, stderr)
    return stderr


def test_add_ls_rm_and_values_stay_hidden(server: Server, cli: Cli, tmp_path: Path) -> None:
    outputs: list[str] = []

    def ok(*args: str, input: str | None = None) -> str:
        result = cli(*args, input=input)
        assert result.returncode == 0, (args, result)
        outputs.extend((result.stdout, result.stderr))
        return result.stdout + result.stderr

    assert "Added secret://default/admin/admin/TOKEN" in ok("secret", "add", "TOKEN", VALUE)
    binary = tmp_path / "key.bin"
    binary.write_bytes(bytes(range(256)) + VALUE.encode())
    ok("secret", "add", "KEY_FILE", f"@{binary}")
    ok("secret", "add", "from.stdin", "-", input=VALUE + "\n")
    replaced = ok("secret", "add", "TOKEN", "-", input="replaced")
    assert "Replaced secret://default/admin/admin/TOKEN" in replaced

    listed = cli.json("secret", "ls")
    assert [s["key"] for s in listed] == ["KEY_FILE", "TOKEN", "from.stdin"]
    assert listed[0]["uri"] == "secret://default/admin/admin/KEY_FILE"
    assert listed[0]["updatedBy"] == "admin"
    ok("secret", "ls")
    ok("secret", "ls", "-o", "yaml")
    ok("secret", "rm", "TOKEN")
    assert [s["key"] for s in cli.json("secret", "ls")] == ["KEY_FILE", "from.stdin"]
    _refused(cli("secret", "rm", "TOKEN"), 66, "not found")
    _refused(cli("secret", "add", "bad key", VALUE), 65, "invalid secret key")
    _refused(cli("secret", "add", "K", f"@{tmp_path / 'missing'}"), 66, "no file")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    _refused(cli("secret", "add", "K", f"@{big}"), 65, "1 MiB")
    _refused(cli("secret", "ls", "--org", "nobody", "--project", "none"), 66, "not found")

    rotated = cli.json("admin", "rotate-secrets-key")
    assert rotated == {"secrets": 0, "bucketCredentials": 0, "gatewaySecrets": 0, "unreadable": []}

    for output in outputs:
        assert VALUE not in output
    assert VALUE not in server.log_path.read_text()
    assert VALUE not in httpx.get(f"{server.url}/metrics").text


def test_readers_list_strangers_see_nothing(server: Server, cli: Cli, tmp_path: Path) -> None:
    cli.ok("admin", "create-org", "acme")
    cli.ok("admin", "create-project", "acme", "vision")
    rita = _user(server, cli, tmp_path, "rita")
    bob = _user(server, cli, tmp_path, "bob")
    cli.ok("admin", "add-project-user", "acme", "vision", "rita", "reader")
    where = ("--org", "acme", "--project", "vision")
    cli.ok("secret", "add", "DB_PASSWORD", VALUE, *where)

    assert [s["key"] for s in rita.json("secret", "ls", *where)] == ["DB_PASSWORD"]
    _refused(rita("secret", "add", "DB_PASSWORD", "-", *where, input="mine"), 77, "may not")
    _refused(rita("secret", "rm", "DB_PASSWORD", *where), 77)
    stranger = _refused(bob("secret", "ls", *where), 66, "not found")
    nowhere = _refused(bob("secret", "ls", "--org", "acme", "--project", "nothing"), 66)
    assert stranger.replace("vision", "nothing") == nowhere
    _refused(bob("secret", "add", "X", "y", *where), 66)
    _refused(rita("admin", "rotate-secrets-key"), 77)
    assert VALUE not in server.log_path.read_text()
