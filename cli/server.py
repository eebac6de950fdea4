"""`glia up` and `glia serve`: the commands that start the platform itself.

These are the one place the CLI reaches into the server packages, and only when one of them
runs (the imports are inside the commands): every other command stays a thin client over the
SDK and imports nothing of the server.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.options import GliaCommand


def register(app: typer.Typer) -> None:
    app.command("up", cls=GliaCommand)(up)
    app.command("serve", cls=GliaCommand)(serve)


class ConfigLogin:
    """`glia up`'s way to log this machine's CLI in: the admin's context in the CLI config
    file (``admin@127.0.0.1:8080``), added beside the others and made current."""

    def is_logged_in(self, server_url: str) -> bool:
        from sdk import load_config

        config = load_config()
        return any(c.token and c.server == server_url for c in config.contexts.values())

    def save(self, *, server_url: str, username: str, token: str, cluster: str) -> str:
        from sdk import load_config, save_config
        from sdk.config import Context, context_name

        context = Context(server=server_url, token=token, username=username, cluster=cluster)
        config = load_config().with_context(context_name(server_url, username), context)
        return str(save_config(config))


def up(
    host: str | None = typer.Option(
        None,
        "--host",
        metavar="ADDRESS",
        help="Address to listen on (env GLIA_HOST).",
        show_default="127.0.0.1",
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        metavar="PORT",
        help="Port to listen on (env GLIA_PORT).",
        show_default="8080",
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        metavar="DIR",
        help="Where the platform keeps its state (env GLIA_DATA_DIR).",
        show_default="~/.local/share/glia",
    ),
) -> None:
    """Start the whole platform on this machine: SQLite, in-process bus, local runtime.

    The first start creates the admin user, prints its password once and logs this
    machine's CLI in (the admin's context). Stop it with Ctrl-C; jobs keep running.

    \b
    Examples:
      glia up
      glia up --port 9090 --data-dir /srv/glia
    """
    from server.launcher import run_up

    raise typer.Exit(run_up(host=host, port=port, data_dir=data_dir, login=ConfigLogin()))


def serve(
    host: str | None = typer.Option(
        None,
        "--host",
        metavar="ADDRESS",
        help="Address to listen on (env GLIA_HOST).",
        show_default="127.0.0.1",
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        metavar="PORT",
        help="Port to listen on (env GLIA_PORT).",
        show_default="8080",
    ),
) -> None:
    """Start the control plane for production: GLIA_DATABASE_URL, GLIA_REDIS_URL,
    GLIA_SECRET_KEY (required), GLIA_PUBLIC_URL, GLIA_ADMIN_PASSWORD (the first admin's).

    \b
    Examples:
      GLIA_SECRET_KEY=... GLIA_DATABASE_URL=postgresql+asyncpg://... glia serve
    """
    from server.launcher import run_serve

    raise typer.Exit(run_serve(host=host, port=port))
