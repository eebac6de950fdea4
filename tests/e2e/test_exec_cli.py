"""End to end: `glia exec`, `glia attach` and `glia port-forward` against a real `glia up`."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import socket
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
        # The local terminal changes size: the CLI gets SIGWINCH and tells the job's PTY.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 47, 132, 0, 0))
        time.sleep(0.5)
        os.write(fd, b"stty size\r")
        expect(b"47 132")
        os.write(fd, b"exit 5\r")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        os.close(fd)
    cli.ok("kill", "term")


@pytest.mark.parametrize(
    ("command", "code", "said"),
    [
        (["sleep", "100"], 130, b""),  # killed by SIGINT: 128 + 2
        (
            ["python3", "-c", "import time\ntry:\n    print('looping', flush=True)\n"
             "    while True: time.sleep(0.1)\nexcept KeyboardInterrupt:\n"
             "    print('interrupted', flush=True); raise SystemExit(42)"],
            42,
            b"interrupted",
        ),
    ],
)  # fmt: skip
def test_ctrl_c_in_a_terminal_interrupts_the_command_not_the_cli(
    server: Server, cli: Cli, command: list[str], code: int, said: bytes
) -> None:
    cli.ok("run", "--detach", "--name", "intr", "--", "sleep", "120")
    cli.wait_status("intr", "running")
    env = {**server.env, "GLIA_CONFIG": str(cli.config)}
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(GLIA, [GLIA, "exec", "-t", "intr", "--", *command], env)
    seen = b""
    try:
        if said:
            seen = _expect(fd, b"looping")
        else:
            time.sleep(3)  # the command started (nothing to wait on: sleep says nothing)
        os.write(fd, b"\x03")  # Ctrl-C, passed through the CLI's raw terminal
        seen += _expect(fd, said, within=20)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == code, seen
    finally:
        os.close(fd)
    cli.ok("kill", "intr")


def _expect(fd: int, text: bytes, within: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + within
    while text not in seen:
        assert time.monotonic() < deadline, seen
        if select.select([fd], [], [], 0.5)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # EIO: the CLI ended and closed the terminal
                break
    return seen


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


# A job that ticks on stdout (for attach) and serves HTTP on a port (for port-forward).
TICK_AND_SERVE = (
    "import http.server, sys, threading, time\n"
    "http.server.SimpleHTTPRequestHandler.protocol_version = 'HTTP/1.1'\n"
    "server = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])),"
    " http.server.SimpleHTTPRequestHandler)\n"
    "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
    "for i in range(3000):\n"
    "    print('tick', i, flush=True); time.sleep(0.2)\n"
)


def _sessions(cli: Cli, job: str, port: int, local: int) -> dict[str, subprocess.Popen[str]]:
    """An exec, an attach and a port-forward of ``cli``'s user into ``job``, each open."""
    env = {**cli.server.env, "GLIA_CONFIG": str(cli.config)}

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [GLIA, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    sessions = {
        "exec": start("exec", job, "--", "sh", "-c", "echo started; exec sleep 100"),
        "attach": start("attach", job),
        "port-forward": start("port-forward", job, f"{local}:{port}"),
    }
    for name in ("exec", "attach"):
        stdout = sessions[name].stdout
        assert stdout is not None and stdout.readline(), name  # the session is open
    stderr = sessions["port-forward"].stderr
    assert stderr is not None and "Forwarding" in stderr.readline()
    return sessions


def _held_connection(local: int) -> socket.socket:
    """A connection through the tunnel, answered once (so its WebSocket is open), then held."""
    deadline = time.monotonic() + 30
    while True:
        conn = socket.create_connection(("127.0.0.1", local), timeout=10)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        if conn.recv(100).startswith(b"HTTP/1."):
            return conn
        conn.close()
        assert time.monotonic() < deadline, "the tunnel never answered"
        time.sleep(0.2)


def _all_end(sessions: dict[str, subprocess.Popen[str]], said: str, within: float = 10) -> None:
    """Each session ends by itself within ``within`` seconds, exit 77, saying ``said``."""
    deadline = time.monotonic() + within
    for name, process in sessions.items():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in sessions.values():
                other.kill()
            raise AssertionError(f"{name} still open {within} s after the change") from None
        _, err = process.communicate()
        assert process.returncode == 77, (name, process.returncode, err)
        assert said in err, (name, err)


def test_a_revoked_token_ends_exec_attach_and_port_forward(server: Server, cli: Cli) -> None:
    port, local = free_port(), free_port()
    cli.ok("run", "--detach", "--name", "held", "--", "python3", "-c", TICK_AND_SERVE, str(port))
    cli.wait_status("held", "running")
    # A second login of the same user: its token alone is revoked.
    second = Cli(server=server, config=server.root / "second.toml")
    second.ok("login", server.url, "-u", "admin", "--password-stdin",
              input=server.admin_password() + "\n")  # fmt: skip
    sessions = _sessions(second, "held", port, local)
    held = _held_connection(local)
    try:
        second.ok("logout")
        _all_end(sessions, "revoked")
        held.settimeout(10)
        assert _drained(held)  # the tunnelled connection was closed too
    finally:
        held.close()
        for process in sessions.values():
            process.kill()
    cli.ok("status", "held")  # the first login's token still works
    cli.ok("kill", "held")


def test_losing_write_or_the_user_ends_the_sessions(server: Server, cli: Cli) -> None:
    port, local = free_port(), free_port()
    cli.ok("run", "--detach", "--name", "shared", "--",
           "python3", "-c", TICK_AND_SERVE, str(port))  # fmt: skip
    job_id = cli.wait_status("shared", "running")["id"]
    cli.ok("admin", "add-user", "bob", "--password-stdin", input="bob-password-123\n")
    bob = Cli(server=server, config=server.root / "bob.toml")
    bob.ok("login", server.url, "-u", "bob", "--password-stdin", input="bob-password-123\n")
    cli.ok("share", job_id, "bob", "write")
    sessions = _sessions(bob, job_id, port, local)
    held = _held_connection(local)
    try:
        cli.ok("acl", "revoke", job_id, "bob")
        _all_end(sessions, "no longer write")
    finally:
        held.close()
        for process in sessions.values():
            process.kill()
    cli.ok("share", job_id, "bob", "write")
    sessions = _sessions(bob, job_id, port, local)
    held = _held_connection(local)
    try:
        cli.ok("admin", "rm-user", "-y", "bob")
        _all_end(sessions, "revoked")
    finally:
        held.close()
        for process in sessions.values():
            process.kill()
    cli.ok("kill", "shared")


def _drained(conn: socket.socket) -> bool:
    """Whether the peer closed ``conn`` (what it still sends is read and dropped)."""
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def test_attach_gives_a_terminal_job_its_size(server: Server, cli: Cli) -> None:
    code = (
        "import os, signal, time\n"
        "def say(*_):\n"
        "    print('size', *os.get_terminal_size(0), flush=True)\n"
        "signal.signal(signal.SIGWINCH, say)\n"
        "say()\n"
        "time.sleep(120)\n"
    )
    cli.ok("run", "--detach", "-t", "--name", "sized", "--", "python3", "-c", code)
    cli.wait_status("sized", "running")
    env = {**server.env, "GLIA_CONFIG": str(cli.config)}
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(GLIA, [GLIA, "attach", "sized"], env)
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    try:
        _expect(fd, b"size 101 33")  # the size at attach (columns, lines)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 47, 132, 0, 0))
        _expect(fd, b"size 132 47")  # and after a change (SIGWINCH here, then there)
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)
    cli.ok("kill", "sized")
