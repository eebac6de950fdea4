"""``glia exec``, ``glia attach`` and ``glia port-forward``: into a running job.

Only typer is imported at the top; the SDK in the command bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import typer

from cli.options import GliaCommand, flag, with_examples

if TYPE_CHECKING:
    from sdk import GliaClient
    from sdk.exec import ExecSession

READ_BYTES = 64 * 1024


def register(app: typer.Typer) -> None:
    # Everything after the job belongs to the command, options included.
    app.command("exec", cls=GliaCommand, context_settings={"allow_interspersed_args": False})(
        exec_command
    )
    app.command("attach", cls=GliaCommand)(attach)
    app.command("port-forward", cls=GliaCommand)(port_forward)


def parse_ports(pairs: list[str]) -> dict[int, int]:
    """``["8080:80", "9000"]`` -> ``{8080: 80, 9000: 9000}``; BadInput naming a bad pair."""
    from sdk import BadInput

    ports: dict[int, int] = {}
    for pair in pairs:
        local, _, remote = pair.partition(":")
        try:
            numbers = int(local), int(remote or local)
        except ValueError:
            raise BadInput(f"{pair!r}: give LOCAL:REMOTE ports, such as 8080:80") from None
        if not all(0 <= n <= 65535 for n in numbers) or numbers[1] == 0:
            raise BadInput(f"{pair!r}: a port is 1 to 65535 (0 locally: any free one)")
        ports[numbers[0]] = numbers[1]
    return ports


def exec_command(
    job: str = typer.Argument(..., metavar="JOB", help="Job id, unique id prefix or name."),
    command: list[str] = typer.Argument(
        ..., metavar="COMMAND [ARG]...", help="The command to run in the job, with its arguments."
    ),
    tty: bool = flag("-t", "--tty", help="Run it under a terminal (interactive: shells, REPLs)."),
) -> None:
    """Run a command inside a running job: its sandbox, files, environment, working directory
    and user. Exits with the command's exit code. Without -t, standard input is passed on when
    it is not a terminal; stdout and stderr stay apart."""
    from cli.session import current_config, open_client, run_async

    if command and command[0] == "--":  # `glia exec JOB -- CMD`: the -- is not the command's
        command = command[1:]

    async def go() -> int:
        async with open_client(current_config()) as client:
            rows, cols = _terminal_size() if tty else (None, None)
            async with client.exec.open(job, command, tty=tty, rows=rows, cols=cols) as session:
                with _raw_terminal(tty):
                    return await _interact(session, tty)

    raise typer.Exit(run_async(go()))


with_examples(
    "glia exec train -- nvidia-smi", "glia exec -t train -- bash", "glia exec train -- ls -la"
)(exec_command)


async def _interact(session: ExecSession, tty: bool) -> int:
    loop = asyncio.get_running_loop()
    feeding = asyncio.ensure_future(_feed_stdin(session, tty))
    if tty:
        loop.add_signal_handler(
            signal.SIGWINCH,
            lambda: asyncio.ensure_future(session.resize(*_terminal_size())),
        )
    try:
        async for stream, chunk in session.output():
            out = sys.stderr.buffer if stream == 2 else sys.stdout.buffer
            out.write(chunk)
            out.flush()
    finally:
        feeding.cancel()
        if tty:
            loop.remove_signal_handler(signal.SIGWINCH)
    return session.exit_code if session.exit_code is not None else 1


async def _feed_stdin(session: ExecSession, tty: bool) -> None:
    """stdin to the command: always under -t, else when it is not a terminal."""
    if not tty and sys.stdin.isatty():
        await session.close_stdin()
        return
    fd = sys.stdin.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):  # a file never blocks, and epoll refuses one
        while data := os.read(fd, READ_BYTES):
            await session.write(data)
        await session.close_stdin()
        return
    loop = asyncio.get_running_loop()
    while True:
        ready = loop.create_future()
        loop.add_reader(fd, ready.set_result, None)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        data = os.read(fd, READ_BYTES)
        if not data:
            await session.close_stdin()
            return
        await session.write(data)


async def _feed_terminal(session: ExecSession) -> None:
    """stdin to an attached job's terminal; its end as Ctrl-D, the terminal's end of file."""
    fd = sys.stdin.fileno()
    loop = asyncio.get_running_loop()
    regular = stat.S_ISREG(os.fstat(fd).st_mode)
    while True:
        if not regular:
            ready = loop.create_future()
            loop.add_reader(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
        data = os.read(fd, READ_BYTES)
        if not data:
            await session.write(b"\x04")
            return
        await session.write(data)


def _terminal_size() -> tuple[int, int]:
    """Rows and columns of the local terminal; 24 x 80 where it says none (0 x 0)."""
    size = os.get_terminal_size(sys.stdout.fileno()) if sys.stdout.isatty() else None
    return (size.lines, size.columns) if size and size.lines and size.columns else (24, 80)


@contextlib.contextmanager
def _raw_terminal(tty: bool) -> Iterator[None]:
    """The local terminal in raw mode while a remote one is used; restored after."""
    if not tty or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty as tty_mode

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty_mode.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def attach(
    job: str = typer.Argument(..., metavar="JOB", help="Job id, unique id prefix or name."),
) -> None:
    """Follow a running job's output from now on, until it ends or Ctrl-C (stderr apart).
    A job run with -t also gets what is typed (or piped) here, a line at a time, and this
    terminal's size as it changes; the end of the input is sent as Ctrl-D."""
    from cli.session import current_config, open_client, run_async

    async def go() -> None:
        async with open_client(current_config()) as client:
            found = await client.jobs.get(job)
            async with client.exec.attach(found.id) as session:
                feeding = asyncio.ensure_future(_feed_terminal(session)) if found.tty else None
                # The job's terminal takes this one's size, now and on each change.
                sizing = found.tty and sys.stdout.isatty()
                loop = asyncio.get_running_loop()
                if sizing:
                    await session.resize(*_terminal_size())
                    loop.add_signal_handler(
                        signal.SIGWINCH,
                        lambda: asyncio.ensure_future(session.resize(*_terminal_size())),
                    )
                try:
                    async for stream, chunk in session.output():
                        out = sys.stderr.buffer if stream == 2 else sys.stdout.buffer
                        out.write(chunk)
                        out.flush()
                finally:
                    if feeding is not None:
                        feeding.cancel()
                    if sizing:
                        loop.remove_signal_handler(signal.SIGWINCH)

    with contextlib.suppress(KeyboardInterrupt):
        run_async(go())


with_examples("glia attach train")(attach)


def port_forward(
    job: str = typer.Argument(..., metavar="JOB", help="Job id, unique id prefix or name."),
    ports: list[str] = typer.Argument(
        ..., metavar="LOCAL:REMOTE...", help="Local port and the job's port (repeatable)."
    ),
) -> None:
    """Carry connections to local ports to the job's ports (on its own network, else its
    host's loopback), until Ctrl-C. Each connection gets its own WebSocket."""
    from cli.session import current_config, open_client, run_async

    wanted = parse_ports(ports)

    async def go() -> None:
        async with open_client(current_config()) as client:
            await forward(client, job, wanted, lambda line: typer.echo(line, err=True))

    with contextlib.suppress(KeyboardInterrupt):
        run_async(go())


with_examples("glia port-forward notebook 8888:8888", "glia port-forward train 6006:6006 9000:80")(
    port_forward
)


async def forward(
    client: GliaClient, job: str, ports: dict[int, int], say: Callable[[str], None]
) -> None:
    """Serve the tunnel of ``ports`` until cancelled (shared with ``glia run --port-forward``)."""
    ref = await client.jobs.resolve(job)
    async with client.exec.forward(ref, ports) as tunnel:
        for (local, remote), port in zip(ports.items(), tunnel.ports, strict=True):
            say(f"Forwarding 127.0.0.1:{port or local} -> {ref}:{remote}")
        await tunnel.serve_forever()


async def forward_when_running(client: GliaClient, job_id: str, ports: dict[int, int]) -> None:
    """``glia run --port-forward``: the tunnel once the job runs, until cancelled; a failure
    is said on stderr and leaves the run going."""
    from cli import formatting
    from sdk import GliaError, JobStatus

    try:
        async for job in client.jobs.watch_status(job_id):
            if job.status is JobStatus.RUNNING:
                break
            if job.status.is_finished:
                return
        await forward(client, job_id, ports, formatting.notice)
    except GliaError as exc:
        formatting.notice(f"port-forward: {exc.message}")
