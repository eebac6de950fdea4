"""What every command needs to talk to the server: the context in use and a client for it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from typer._click.globals import get_current_context  # typer 0.29 vendors click

from cli.errors import ConfigError
from sdk import CliConfig, GliaClient, load_config
from sdk.config import Context

if TYPE_CHECKING:
    from rich.status import Status

T = TypeVar("T")

# Waits shorter than this show nothing: a spinner that flashes is noise.
SPINNER_DELAY_S = 1.0


def load() -> CliConfig:
    """The config file (ConfigError when it cannot be read)."""
    try:
        return load_config()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def context_option() -> str | None:
    """The ``--context`` given on the command line (or ``GLIA_CONTEXT``), if any."""
    ctx = get_current_context(silent=True)
    return None if ctx is None else ctx.find_root().meta.get("glia.context")


def current_name(config: CliConfig) -> str | None:
    """The name of the context this command uses: ``--context``, else the current one."""
    return context_option() or config.current_context


def current_config() -> Context:
    """The context this command uses: ``--context NAME`` if given, else the current one."""
    config = load()
    name = context_option()
    if name is None:
        return config.current
    try:
        return config.context(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None


def personal_name(context: Context) -> str | None:
    """The context's user's personal org and project (both have the user's name); None for a
    service account (``alice/ci``), which has none, or when nobody is logged in."""
    name = context.username if context.token else None
    return name if name and "/" not in name else None


def working_project(
    context: Context, *, org: str | None = None, project: str | None = None
) -> tuple[str | None, str | None]:
    """The org and project a command works in: those given on its command line, else the
    context's (glia config switch-org/switch-project); None where the server decides (the
    caller's personal project, a service account's own)."""
    if project is not None:
        return org or context.org, project
    if org is not None:
        return org, context.project if org == context.org else None
    return context.org, context.project


def listed_project(
    context: Context, *, org: str | None = None, project: str | None = None
) -> tuple[str | None, str | None]:
    """The org and project whose jobs ``glia ps`` lists: as `working_project`, with the
    personal project where that leaves both open (nothing narrowed for a service account)."""
    org, project = working_project(context, org=org, project=project)
    if org is None and project is None:
        personal = personal_name(context)
        return personal, personal
    return org, project


def open_client(context: Context, *, token: str | None = None) -> GliaClient:
    """A client for the context's server, with its token unless one is given."""
    return GliaClient(context.server_url, token if token is not None else context.token)


def call_client(action: Callable[[GliaClient], Awaitable[T]], *, waiting: str) -> T:
    """Run ``action`` with a client of the context in use (a spinner after a second)."""

    async def call() -> T:
        async with open_client(current_config()) as client:
            return await action(client)

    return run_async(call(), waiting=waiting)


def run_async(coro: Coroutine[Any, Any, T], *, waiting: str | None = None) -> T:
    """Run one command's coroutine; errors propagate to the app's single error handler.

    With ``waiting``, a wait of more than a second shows a spinner with that text on a
    terminal (see `spinner`).
    """
    if waiting is None:
        return asyncio.run(coro)

    async def with_spinner() -> T:
        async with spinner(waiting):
            return await coro

    return asyncio.run(with_spinner())


class Spinner:
    """A spinner on stderr, shown only on a terminal and only once a wait passes
    ``SPINNER_DELAY_S``; `stop` before printing anything else."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._status: Status | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start_later(self, delay: float = SPINNER_DELAY_S) -> None:
        if sys.stderr.isatty():
            self._timer = asyncio.get_running_loop().call_later(delay, self._show)

    def _show(self) -> None:
        from rich.console import Console

        self._status = Console(stderr=True).status(self.text)
        self._status.start()

    def update(self, text: str) -> None:
        self.text = text
        if self._status is not None:
            self._status.update(text)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._status is not None:
            self._status.stop()
            self._status = None


@contextlib.asynccontextmanager
async def spinner(text: str) -> AsyncIterator[Spinner]:
    shown = Spinner(text)
    shown.start_later()
    try:
        yield shown
    finally:
        shown.stop()
