"""End to end: `glia exec`, `glia attach` and `glia port-forward` against a real `glia up`."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import time

import httpx
import pytest

from tests.e2e.conftest import GLIA, Cli, Server, free_port
from tests.polling import eventually

pytestmark = pytest.mark.e2e


def test_exec_exit_codes_streams_and_the_jobs_view(server: Server, cli: Cli) -> None:
    cli.ok("run", "--detach", "--name", "box", "-e", "GREETING=hi", "--", "sleep", "120")
    cli.wait_status("box", "running")
    script = 'echo "$GREETING"; pwd; id -u; echo e >&2; exit 3'
    result = cli("exec", "box", "--", "sh", "-c", script)
    assert result.returncode == 3, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "hi" and out[1] == "/job/work"
    assert int(out[2]) >= 200000  # the owner's own uid, not root
    assert result.stderr == "e\n"
    assert cli("exec", "box", "--", "cat", input="piped\n").stdout == "piped\n"
    missing = cli("exec", "box", "--", "no-such-command")
    assert missing.returncode == 127
    cli.ok("kill", "box")
    ended = cli("exec", "box", "--", "true")
    assert ended.returncode != 0 and "not running" in ended.stderr


def test_exec_with_a_terminal_echoes_and_says_its_size(server: Server, cli: Cli) -> None:
    cli.ok("run", "--detach", "--name", "term", "--", "sleep", "120")
    cli.wait_status("term", "running")
    env = {**server.env, "GLIA_CONFIG": str(cli.config)}
    pid, fd = pty.fork()
    if pid == 0:  # the CLI on a terminal of its own
        os.execve(GLIA, [GLIA, "exec", "-t", "term", "--", "sh"], env)
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    seen = b""

    def expect(text: bytes, within: float = 30) -> None:
        nonlocal seen
        deadline = time.monotonic() + within
        while text not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([fd], [], [], 0.5)[0]:
                seen += os.read(fd, 4096)

    try:
        expect(b"$ ")
        os.write(fd, b"stty size; echo x$((40+2))\r")
        expect(b"33 101")
        expect(b"x42")
        os.write(fd, b"exit 5\r")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        os.close(fd)
    cli.ok("kill", "term")


def test_port_forward_carries_20_concurrent_connections(server: Server, cli: Cli) -> None:
    port, local = free_port(), free_port()
    cli.ok(
        "run", "--detach", "--name", "web", "--",
        "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1",
    )  # fmt: skip
    cli.wait_status("web", "running")
    env = {**server.env, "GLIA_CONFIG": str(cli.config)}
    tunnel = subprocess.Popen(
        [GLIA, "port-forward", "web", f"{local}:{port}"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        async def listing() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"http://127.0.0.1:{local}/", timeout=5)).is_success
            except httpx.HTTPError:
                return False

        asyncio.run(eventually(listing, within=30))

        async def many() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=20)
            async with httpx.AsyncClient(limits=limits) as http:
                return await asyncio.gather(
                    *(http.get(f"http://127.0.0.1:{local}/", timeout=30) for _ in range(20))
                )

        answers = asyncio.run(many())
        assert all(a.status_code == 200 and "Directory listing" in a.text for a in answers)
    finally:
        tunnel.terminate()
        tunnel.wait(10)
    assert "-> " in (tunnel.stderr.read() if tunnel.stderr else "")
    cli.ok("kill", "web")


def test_attach_follows_the_output(server: Server, cli: Cli) -> None:
    code = "import time\nfor i in range(600):\n    print('tick', i, flush=True); time.sleep(0.2)"
    cli.ok("run", "--detach", "--name", "ticker", "--", "python3", "-c", code)
    cli.wait_status("ticker", "running")
    env = {**server.env, "GLIA_CONFIG": str(cli.config)}
    attached = subprocess.Popen(
        [GLIA, "attach", "ticker"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert attached.stdout is not None
        first = attached.stdout.readline()
        second = attached.stdout.readline()
        assert first.startswith("tick ") and second.startswith("tick ")
        assert int(second.split()[1]) == int(first.split()[1]) + 1
    finally:
        attached.terminate()
        attached.wait(10)
    cli.ok("kill", "ticker")


def test_attach_feeds_a_terminal_job(server: Server, cli: Cli) -> None:
    code = (
        "import sys\n"
        "print('ready', sys.stdin.isatty(), flush=True)\n"
        "for line in sys.stdin:\n"
        "    print('echo:', line.strip().upper(), flush=True)\n"
        "print('bye', flush=True)\n"
    )
    cli.ok("run", "--detach", "-t", "--name", "repl", "--", "python3", "-c", code)
    assert cli.json("status", "repl")["tty"] is True
    cli.wait_status("repl", "running")
    result = cli("attach", "repl", input="hello\nworld\n", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [line.rstrip("\r") for line in result.stdout.splitlines()]
    assert lines[-3:] == ["echo: HELLO", "echo: WORLD", "bye"]
    cli.wait_status("repl", "succeeded")


def test_a_stranger_cannot_exec_attach_or_forward(server: Server, cli: Cli) -> None:
    cli.ok("run", "--detach", "--name", "mine", "--", "sleep", "120")
    cli.wait_status("mine", "running")
    job_id = cli.json("status", "mine")["id"]
    cli.ok("admin", "add-user", "mallory", "--password-stdin", input="mallory-password-1\n")
    stranger = Cli(server=server, config=server.root / "mallory.toml")
    stranger.ok(
        "login", server.url, "-u", "mallory", "--password-stdin", input="mallory-password-1\n"
    )
    for args in (("exec", job_id, "--", "id"), ("attach", job_id)):
        result = stranger(*args)
        assert result.returncode == 66, (args, result.stderr)  # not found
        assert "not found" in result.stderr
    cli.ok("kill", "mine")


def test_run_with_port_forward(server: Server, cli: Cli) -> None:
    port, local = free_port(), free_port()
    env = {**server.env, "GLIA_CONFIG": str(cli.config)}
    run = subprocess.Popen(
        [GLIA, "run", "--name", "served", "--port-forward", f"{local}:{port}", "--",
         "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        async def listing() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"http://127.0.0.1:{local}/", timeout=5)).is_success
            except httpx.HTTPError:
                return False

        asyncio.run(eventually(listing, within=30))
    finally:
        cli.ok("kill", "served")
        run.wait(30)
    assert run.stderr is not None and f"127.0.0.1:{local} -> " in run.stderr.read()
