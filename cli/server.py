"""`glia up` and `glia serve`: the commands that start the platform itself.

These are the one place the CLI reaches into the server packages, and only when one of them
runs (the imports are inside the commands): every other command stays a thin client over the
SDK and imports nothing of the server.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sdk import load_config, save_config


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("serve")(serve)


class ConfigLogin:
    """`glia up`'s way to log this machine's CLI in: the CLI config file."""

    def is_logged_in(self, server_url: str) -> bool:
        config = load_config()
        return bool(config.token) and config.server == server_url

    def save(self, *, server_url: str, username: str, token: str, cluster: str) -> str:
        config = load_config().replace(
            server=server_url, token=token, username=username, cluster=cluster
        )
        return str(save_config(config))


def up(
    host: str | None = typer.Option(None, "--host", help="Address to listen on [env GLIA_HOST]"),
    port: int | None = typer.Option(None, "--port", help="Port to listen on [env GLIA_PORT]"),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where the platform keeps its state [env GLIA_DATA_DIR]"
    ),
) -> None:
    """Start the whole platform on this machine: SQLite, in-process bus, local runtime."""
    from server.launcher import run_up

    raise typer.Exit(run_up(host=host, port=port, data_dir=data_dir, login=ConfigLogin()))


def serve(
    host: str | None = typer.Option(None, "--host", help="Address to listen on [env GLIA_HOST]"),
    port: int | None = typer.Option(None, "--port", help="Port to listen on [env GLIA_PORT]"),
) -> None:
    """Start the control plane for production (GLIA_DATABASE_URL, GLIA_REDIS_URL, ...)."""
    from server.launcher import run_serve

    raise typer.Exit(run_serve(host=host, port=port))
