"""What every command needs to talk to the server: the saved config and a client for it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from sdk import CliConfig, GliaClient, load_config

T = TypeVar("T")


def current_config() -> CliConfig:
    return load_config()


def open_client(config: CliConfig, *, token: str | None = None) -> GliaClient:
    """A client for the configured server, with the saved token unless one is given."""
    return GliaClient(config.server_url, token if token is not None else config.token)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; errors propagate to the app's single error handler."""
    return asyncio.run(coro)
