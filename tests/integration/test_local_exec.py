"""Exec and port-forward on the real `LocalRuntime`: the command runs inside the job's sandbox
(its mounts, env, working dir, uid, cgroup), a PTY resizes, and a job's port is reached.

Run as root here (jobs under their own uid, in bubblewrap), as in production."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from cluster_gateway.exec import ExecSession, ExecStream
from cluster_gateway.runtimes.local import LocalRuntime
from glia.errors import BadInput, Conflict, NotFound
from tests.integration.test_local_runtime import JOB_UID, python, spec, start_running, stop_all

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="jobs under their own uid need root")


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    runtime = LocalRuntime(
        tmp_path / "state", default_grace_s=1.0, poll_interval_s=0.2, job_network=False
    )
    await runtime.open()
    try:
        yield runtime
        await stop_all(runtime)
    finally:
        await runtime.close()


async def run(
    runtime: LocalRuntime, job_id: str, command: Sequence[str], *, stdin: bytes = b""
) -> tuple[int, bytes, bytes]:
    session = await runtime.exec(job_id, command)
    out, err = b"", b""
    try:
        if stdin:
            await session.write(stdin)
        await session.close_stdin()
        async with asyncio.timeout(20):
            async for stream, chunk in session.output():
                if stream is ExecStream.STDOUT:
                    out += chunk
                else:
                    err += chunk
            return await session.wait(), out, err
    finally:
        await session.close()


async def test_exec_runs_in_the_jobs_sandbox(runtime: LocalRuntime, tmp_path: Path) -> None:
    assert runtime.sandboxed
    job = spec(
        "job-exec", python("import time; open('made-by-job', 'w').write('x'); time.sleep(60)"),
        env={"PATH": "/usr/bin:/bin", "GREETING": "hello"}, uid=JOB_UID, gid=JOB_UID,
    )  # fmt: skip
    await start_running(runtime, job)
    await asyncio.sleep(0.5)  # the job writes its file
    code, out, err = await run(
        runtime,
        "job-exec",
        ["sh", "-c", 'echo "$GREETING"; pwd; id -u; ls; echo oops >&2'],
    )
    assert code == 0, err
    assert out.decode().splitlines() == ["hello", "/job/work", str(JOB_UID), "made-by-job"]
    assert err == b"oops\n"
    # The job's cgroup (in its cgroup namespace, "/" for every controller, as for the job).
    code, out, _ = await run(runtime, "job-exec", ["cat", "/proc/self/cgroup", "/proc/1/cgroup"])
    lines = out.decode().splitlines()
    assert code == 0 and lines[: len(lines) // 2] == lines[len(lines) // 2 :], lines
    assert any(line.startswith(("0::/", "")) and "memory:/" in line for line in lines) or any(
        line == "0::/" for line in lines
    ), lines
    # The job's pid namespace: the job's own processes, no host's.
    code, out, _ = await run(runtime, "job-exec", ["sh", "-c", "ls /proc | grep -c '^[0-9]'"])
    assert code == 0 and int(out) < 10
    # Nothing of the host outside what the sandbox shows.
    code, _, _ = await run(runtime, "job-exec", ["ls", str(tmp_path)])
    assert code != 0


async def test_exit_codes_stdin_and_missing_commands(runtime: LocalRuntime) -> None:
    await start_running(runtime, spec("job-codes", ["sleep", "60"], uid=JOB_UID, gid=JOB_UID))
    code, out, err = await run(runtime, "job-codes", ["sh", "-c", "exit 7"])
    assert code == 7, (out, err)
    assert (await run(runtime, "job-codes", ["sh", "-c", "kill -9 $$"]))[0] == 137
    code, out, _ = await run(runtime, "job-codes", ["cat"], stdin=b"fed\n")
    assert (code, out) == (0, b"fed\n")
    code, _, err = await run(runtime, "job-codes", ["no-such-command"])
    assert code == 127 and b"no-such-command" in err


async def test_a_pty_echoes_and_resizes(runtime: LocalRuntime) -> None:
    await start_running(runtime, spec("job-pty", ["sleep", "60"], uid=JOB_UID, gid=JOB_UID))
    session: ExecSession = await runtime.exec("job-pty", ["sh"], tty=True, rows=24, cols=80)
    seen = b""

    async def expect(text: bytes) -> None:
        nonlocal seen
        async with asyncio.timeout(10):
            async for _, chunk in session.output():
                seen += chunk
                if text in seen:
                    return
        raise AssertionError(seen)

    try:
        await session.write(b"stty size\n")
        await expect(b"24 80")
        await session.resize(50, 132)
        await session.write(b"echo typed-$((6*7))\n")
        await expect(b"typed-42")
        await session.write(b"stty size\n")
        await expect(b"50 132")
        await session.write(b"exit 3\n")
        async with asyncio.timeout(10):
            async for _, chunk in session.output():
                seen += chunk
            assert await session.wait() == 3, seen
    finally:
        await session.close()


async def test_closing_a_session_kills_what_it_started(runtime: LocalRuntime) -> None:
    await start_running(runtime, spec("job-close", ["sleep", "60"], uid=JOB_UID, gid=JOB_UID))
    session = await runtime.exec("job-close", ["sh", "-c", "sleep 300 & sleep 301"])
    await asyncio.sleep(1)
    sleepers = [p for p in _processes() if p[1].startswith(b"sleep\x0030")]
    assert len(sleepers) == 2
    await session.close()
    await asyncio.sleep(0.5)
    assert not [p for p in _processes() if p[1].startswith(b"sleep\x0030")]


async def test_exec_into_an_unknown_or_ended_job(runtime: LocalRuntime) -> None:
    with pytest.raises(NotFound):
        await runtime.exec("job-none", ["true"])
    await start_running(runtime, spec("job-ended", ["true"], uid=JOB_UID, gid=JOB_UID))
    await asyncio.sleep(1)
    with pytest.raises(Conflict):
        await runtime.exec("job-ended", ["true"])


async def test_connect_reaches_a_port_in_the_jobs_network(runtime: LocalRuntime) -> None:
    # job_network=False: the job has a network namespace of its own, not reachable from here.
    server = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 8123)); s.listen()\n"
        "while True:\n"
        "    c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()\n"
    )
    await start_running(runtime, spec("job-port", python(server), uid=JOB_UID, gid=JOB_UID))
    for _ in range(50):
        try:
            reader, writer = await runtime.connect("job-port", 8123)
            break
        except Exception:
            await asyncio.sleep(0.2)
    writer.write(b"ping")
    assert await reader.read(100) == b"PING"
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", 8123)


def _processes() -> list[tuple[int, bytes]]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found.append((int(entry), Path(f"/proc/{entry}/cmdline").read_bytes()))
            except OSError:
                pass
    return found


async def test_a_terminal_job_takes_input(runtime: LocalRuntime) -> None:
    code = (
        "import sys\n"
        "print('tty', sys.stdin.isatty(), sys.stdout.isatty(), flush=True)\n"
        "for line in sys.stdin:\n"
        "    print('got', line.strip(), flush=True)\n"
        "print('end of input', flush=True)\n"
    )
    job = spec("job-tty", python(code), uid=JOB_UID, gid=JOB_UID, tty=True)
    await start_running(runtime, job)
    await runtime.write_stdin("job-tty", b"hello\n")
    await runtime.write_stdin("job-tty", b"x" * 100_000 + b"\n")  # more than a pipe holds
    await runtime.write_stdin("job-tty", b"\x04")

    async def lines() -> list[str]:
        async with asyncio.timeout(10):
            return [
                line.text.rstrip("\r")
                async for batch in runtime.logs("job-tty", follow=True)
                for line in batch.lines()
            ]

    seen = await lines()
    assert seen[0] == "tty True True"
    assert seen[1] == "got hello"  # no echo of what was typed
    # A terminal's line holds at most 4,095 bytes (canonical mode): the rest is dropped, and
    # the supervisor, which never blocks on the job, went on.
    assert seen[2].startswith("got " + "x" * 4000), seen[2][:20]
    assert seen[-1] == "end of input"
    with pytest.raises(Conflict):
        await runtime.write_stdin("job-tty", b"late\n")
    await start_running(runtime, spec("job-plain", ["sleep", "60"], uid=JOB_UID, gid=JOB_UID))
    with pytest.raises(Conflict):
        await runtime.write_stdin("job-plain", b"no terminal\n")


async def test_exec_has_no_privileges_and_the_jobs_env_reaches_only_the_command(
    runtime: LocalRuntime,
) -> None:
    # Were the job's LD_PRELOAD given to the steps run as root (sh, setsid, nsenter,
    # setpriv), the loader would complain once for each of them.
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": "/nonexistent/preload.so"}
    await start_running(
        runtime, spec("job-priv", ["sleep", "60"], env=env, uid=JOB_UID, gid=JOB_UID)
    )
    code, out, err = await run(
        runtime, "job-priv", ["sh", "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"]
    )
    assert code == 0, err
    status = dict(line.split(":\t") for line in out.decode().splitlines())
    assert status == {"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1"}
    # The command's own shell and its grep, run with the job's env, each complain; nothing else.
    assert err.count(b"preload.so") == 2, err


async def test_a_terminal_jobs_size_changes_and_it_gets_sigwinch(runtime: LocalRuntime) -> None:
    code = (
        "import os, signal, sys, time\n"
        "def say(*_):\n"
        "    print('size', *os.get_terminal_size(0), flush=True)\n"
        "signal.signal(signal.SIGWINCH, say)\n"
        "say()\n"
        "time.sleep(60)\n"
    )
    await start_running(
        runtime, spec("job-winch", python(code), uid=JOB_UID, gid=JOB_UID, tty=True)
    )
    seen: list[str] = []

    async def expect(line: str) -> None:
        async with asyncio.timeout(10):
            async for batch in runtime.logs("job-winch", follow=True):
                seen.extend(item.text.rstrip("\r") for item in batch.lines())
                if line in seen:
                    return
        raise AssertionError(seen)

    await expect("size 0 0")  # columns, then lines: unset until a client says
    await runtime.resize_terminal("job-winch", 40, 120)
    await expect("size 120 40")
    await runtime.resize_terminal("job-winch", 50, 132)
    await expect("size 132 50")
    with pytest.raises(BadInput):
        await runtime.resize_terminal("job-winch", 0, 80)
    await start_running(runtime, spec("job-no-tty", ["sleep", "60"], uid=JOB_UID, gid=JOB_UID))
    with pytest.raises(Conflict):
        await runtime.resize_terminal("job-no-tty", 40, 120)
