"""`glia up` and `glia serve`: the commands that start the platform itself.

These are the one place the CLI reaches into the server packages, and only when one of them
runs: every other command stays a thin client over the SDK and imports nothing of the server.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("serve")(serve)


def up(
    host: str | None = typer.Option(None, "--host", help="Address to listen on [env GLIA_HOST]"),
    port: int | None = typer.Option(None, "--port", help="Port to listen on [env GLIA_PORT]"),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where the platform keeps its state [env GLIA_DATA_DIR]"
    ),
) -> None:
    """Start the whole platform on this machine: SQLite, in-process bus, local runtime."""
    from glia.launcher import run_up

    raise typer.Exit(run_up(host=host, port=port, data_dir=data_dir))


def serve(
    host: str | None = typer.Option(None, "--host", help="Address to listen on [env GLIA_HOST]"),
    port: int | None = typer.Option(None, "--port", help="Port to listen on [env GLIA_PORT]"),
) -> None:
    """Start the control plane for production (GLIA_DATABASE_URL, GLIA_REDIS_URL, ...)."""
    from glia.launcher import run_serve

    raise typer.Exit(run_serve(host=host, port=port))
