"""Starting the server: `glia up` (embedded, first-run conveniences) and `glia serve`.

The server knows nothing of the CLI's config file: `glia up` passes a `LocalLogin`, the CLI's
side of logging this machine in, and the launcher hands it the admin's token on first run.

Before anything else, both take their port (a busy port fails at once: no admin created, no
password printed, no CLI config written), and `glia up` takes the data dir's lock file (a
second `glia up` on the same data dir says where the first one runs).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import uvicorn
from pydantic import SecretStr

from control_plane.platform import Platform
from control_plane.settings import Settings, load_settings
from glia.malloc import keep_freed_memory
from server import graphiql
from server.app import StartupHook, create_app
from server.logging import configure_logging

ADMIN_NAME = "admin"


class LocalLogin(Protocol):
    """Where `glia up` logs this machine's CLI in (the CLI implements it over its config)."""

    def is_logged_in(self, server_url: str) -> bool:
        """Whether the CLI already holds a token for ``server_url``."""
        ...

    def save(self, *, server_url: str, username: str, token: str, cluster: str) -> str:
        """Log the CLI in; returns where the credentials were written, for the user."""
        ...


class StartError(Exception):
    """The server cannot start (port taken, data dir in use); the message says why."""


LOCK_FILE = "glia.lock"


@contextlib.contextmanager
def data_dir_lock(data_dir: Path, url: str) -> Iterator[None]:
    """Hold ``<data_dir>/glia.lock`` (an flock, released by the kernel if the process dies)
    with this process's pid and URL in it; raises StartError naming the holder when another
    process has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").split()
            pid = holder[0] if holder else "?"
            where = holder[1] if len(holder) > 1 else "its port"
            raise StartError(
                f"Glia is already running on the data dir {data_dir} (pid {pid}, at {where}); "
                "stop it first, or give another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {url}\n".encode())
        yield
    finally:
        os.close(fd)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, taken before anything else happens; StartError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartError(
                f"port {port} on {host} is in use (another Glia or another program): "
                "choose another with --port or GLIA_PORT"
            ) from None
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _secret_key(data_dir: Path) -> str:
    """The embedded install's token signing key: made once, kept in the data dir (0600)."""
    path = data_dir / "secret.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def _first_run(login: LocalLogin) -> StartupHook:
    async def first_run(platform: Platform) -> None:
        """Make sure there is an admin and that this machine's CLI can talk to the server."""
        settings = platform.settings
        url = settings.effective_public_url
        async with platform.db.session() as session:
            admin, password = await platform.auth.ensure_admin(session, ADMIN_NAME)
            token = None
            if password is not None or not login.is_logged_in(url):
                token = await platform.auth.issue_token(session, admin.id, description="glia up")
        print(f"Glia is up at {url}", file=sys.stderr)
        if token is not None:
            where = login.save(
                server_url=url, username=admin.name, token=token, cluster=settings.cluster_name
            )
            print(f"  the CLI is logged in as {admin.name!r} (config: {where})", file=sys.stderr)
        else:
            print(f"  the CLI on this machine is logged in as {admin.name!r}", file=sys.stderr)
        if password is not None:
            print(f"  admin password (shown once): {password}", file=sys.stderr)
        print(f"  log in elsewhere with: glia login {url} -u {admin.name}", file=sys.stderr)
        if password is None:
            print(
                "  (its password was printed at the first start; "
                f"glia admin reset-password {admin.name} makes a new one)",
                file=sys.stderr,
            )

    return first_run


async def _bootstrap_admin(platform: Platform) -> None:
    """Production's first admin comes from GLIA_ADMIN_PASSWORD, once."""
    password = platform.settings.admin_password
    async with platform.db.session() as session:
        if password is None:
            await platform.auth.ensure_admin_exists_or_warn(session, ADMIN_NAME)
            return
        await platform.auth.ensure_admin(session, ADMIN_NAME, password=password.get_secret_value())


def _serve(settings: Settings, on_startup: StartupHook, listener: socket.socket) -> int:
    configure_logging(level=settings.log_level, json=settings.log_format == "json")
    keep_freed_memory()
    # GraphiQL's files, from the npm registry on a first start: beside the start, not before
    # it (the page says so until they are there).
    threading.Thread(target=graphiql.ensure_assets, name="graphiql-assets", daemon=True).start()
    app = create_app(settings, on_startup=on_startup)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it handled once it has shut down cleanly.
        pass
    # uvicorn reports a failed startup (port taken, lifespan error) by not having started.
    return 0 if server.started else 1


def _settings(**options: object) -> Settings:
    """Settings from the environment, with the command line's options (those given) on top."""
    return load_settings(None, **{k: v for k, v in options.items() if v is not None})


def run_up(*, host: str | None, port: int | None, data_dir: Path | None, login: LocalLogin) -> int:
    settings = _settings(host=host, port=port, data_dir=data_dir)
    try:
        with data_dir_lock(settings.data_dir, settings.effective_public_url):
            listener = bind(settings.host, settings.port)
            if settings.secret_key is None:
                settings = settings.model_copy(
                    update={"secret_key": SecretStr(_secret_key(settings.data_dir))}
                )
            with listener:
                return _serve(settings, _first_run(login), listener)
    except StartError as exc:
        print(f"glia up: {exc}", file=sys.stderr)
        return 1


def run_serve(*, host: str | None, port: int | None) -> int:
    settings = _settings(host=host, port=port)
    if settings.secret_key is None:
        print("glia serve: set GLIA_SECRET_KEY (at least 32 characters)", file=sys.stderr)
        return 2
    try:
        listener = bind(settings.host, settings.port)
    except StartError as exc:
        print(f"glia serve: {exc}", file=sys.stderr)
        return 1
    with listener:
        return _serve(settings, _bootstrap_admin, listener)
