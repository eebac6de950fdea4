"""`glia up`, `glia serve` and `glia web`: the commands that start the platform itself.

These are the one place the CLI reaches into the server packages and the web UI's launcher,
and only when one of them runs (the imports are inside the commands): every other command
stays a thin client over the SDK and imports nothing of the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cli.options import GliaCommand


def register(app: typer.Typer) -> None:
    app.command("up", cls=GliaCommand)(up)
    app.command("serve", cls=GliaCommand)(serve)
    app.command("web", cls=GliaCommand)(web)


# The options `up` and `serve` share.
Host = Annotated[
    str | None,
    typer.Option(
        "--host",
        metavar="ADDRESS",
        help="Address to listen on (env GLIA_HOST).",
        show_default="127.0.0.1",
    ),
]
Port = Annotated[
    int | None,
    typer.Option(
        "--port", metavar="PORT", help="Port to listen on (env GLIA_PORT).", show_default="8080"
    ),
]
WebPort = Annotated[
    int | None,
    typer.Option(
        "--web-port", metavar="PORT", help="Port of the web UI [default: the API's port + 1]."
    ),
]


def _with_web(
    run: Callable[[], int], *, enabled: bool, api_host: str, api_port: int, web_port: int | None
) -> int:
    """Run the API (``run``, which blocks) with the web UI beside it as a child process."""
    if not enabled:
        return run()
    from web.launcher import WebError, start, stop

    port = web_port or api_port + 1
    try:
        process = start(api_url=f"http://{api_host}:{api_port}", host=api_host, port=port)
    except WebError as error:
        # The platform is useful without its pages: say why they are missing, serve the API.
        typer.echo(f"warning: the web UI is not served: {error}", err=True)
        return run()
    typer.echo(f"Glia's web UI: http://{api_host}:{port} (it builds its pages first)", err=True)
    try:
        return run()
    finally:
        stop(process)


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
    host: Host = None,
    port: Port = None,
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        metavar="DIR",
        help="Where the platform keeps its state (env GLIA_DATA_DIR).",
        show_default="~/.local/share/glia",
    ),
    with_web: bool = typer.Option(True, "--web/--no-web", help="Serve the web UI too."),
    web_port: WebPort = None,
) -> None:
    """Start the whole platform on this machine: SQLite, in-process bus, local runtime,
    and the web UI beside the API.

    The first start creates the admin user, prints its password once and logs this
    machine's CLI in (the admin's context). Stop it with Ctrl-C; jobs keep running.

    \b
    Examples:
      glia up
      glia up --port 9090 --data-dir /srv/glia
    """
    from server.launcher import run_up

    def run() -> int:
        return run_up(host=host, port=port, data_dir=data_dir, login=ConfigLogin())

    api_host, api_port = _address(host, port)
    code = _with_web(run, enabled=with_web, api_host=api_host, api_port=api_port, web_port=web_port)
    raise typer.Exit(code)


def serve(
    host: Host = None,
    port: Port = None,
    with_web: bool = typer.Option(False, "--web/--no-web", help="Serve the web UI too."),
    web_port: WebPort = None,
) -> None:
    """Start the control plane for production: GLIA_DATABASE_URL, GLIA_REDIS_URL,
    GLIA_SECRET_KEY (required), GLIA_PUBLIC_URL, GLIA_ADMIN_PASSWORD (the first admin's).

    \b
    Examples:
      GLIA_SECRET_KEY=... GLIA_DATABASE_URL=postgresql+asyncpg://... glia serve
    """
    from server.launcher import run_serve

    api_host, api_port = _address(host, port)
    code = _with_web(
        lambda: run_serve(host=host, port=port),
        enabled=with_web,
        api_host=api_host,
        api_port=api_port,
        web_port=web_port,
    )
    raise typer.Exit(code)


def _address(host: str | None, port: int | None) -> tuple[str, int]:
    """The API's address as the server will take it (options, else GLIA_HOST/GLIA_PORT)."""
    return (
        host or os.environ.get("GLIA_HOST", "127.0.0.1"),
        port or int(os.environ.get("GLIA_PORT", "8080")),
    )


def web(
    api: str = typer.Option(
        "http://127.0.0.1:8080", "--api", metavar="URL", help="The Glia API to talk to."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="ADDRESS", help="Address to listen on."
    ),
    port: int = typer.Option(3000, "--port", metavar="PORT", help="Port to listen on."),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        metavar="URL",
        help="Where browsers reach the web UI, when not at http://ADDRESS:PORT.",
    ),
) -> None:
    """Serve the web UI alone, against a Glia API elsewhere.

    \b
    Examples:
      glia web --api http://127.0.0.1:8080
      glia web --api https://glia.example.com --host 0.0.0.0 --public-url https://ui.example.com
    """
    from web.launcher import WebError, start

    try:
        process = start(api_url=api.rstrip("/"), host=host, port=port, public_url=public_url)
    except WebError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Glia's web UI: {public_url or f'http://{host}:{port}'} (API: {api})", err=True)
    try:
        raise typer.Exit(process.wait())
    except KeyboardInterrupt:
        from web.launcher import stop

        stop(process)
        raise typer.Exit(130) from None
