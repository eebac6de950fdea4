"""``glia login``, ``glia logout`` and ``glia config ...``: who talks to which server."""

from __future__ import annotations

import sys

import typer

from cli import formatting
from cli.formatting import OutputFormat
from cli.session import current_config, open_client, run_async
from sdk import DEFAULT_SERVER, CliConfig, Cluster, GliaClient, GliaError, NotFound, save_config

config_app = typer.Typer(help="Show or change the CLI's configuration.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.add_typer(config_app, name="config")


def login(
    url: str | None = typer.Argument(
        None, help=f"Server URL [default: the configured one, else {DEFAULT_SERVER}]"
    ),
    username: str | None = typer.Option(None, "-u", "--username"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    token: str | None = typer.Option(
        None, "--token", help="Use an existing API token (checked with the server)."
    ),
) -> None:
    """Log in to a Glia server and remember the token."""
    config = current_config()
    server = (url or config.server or DEFAULT_SERVER).rstrip("/")
    if token is None:
        username = username or typer.prompt("Username")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True)
        new_token, name = run_async(_login(server, username, password))
    else:
        new_token, name = token, run_async(_whoami(server, token))
    if server != config.server:
        config = config.with_cluster(None)  # a cluster name means nothing on another server
    save_config(config.replace(server=server, token=new_token, username=name))
    formatting.notice(f"Logged in to {server} as {name}")


async def _login(server: str, username: str, password: str) -> tuple[str, str]:
    async with GliaClient(server, None) as client:
        token, user = await client.auth.login(username, password)
        return token, user.name


async def _whoami(server: str, token: str) -> str:
    async with GliaClient(server, token) as client:
        return (await client.auth.me()).name


def logout() -> None:
    """Revoke the token on the server (best effort) and forget it here."""
    config = current_config()
    if not config.token:
        formatting.notice("Not logged in.")
        return
    try:
        run_async(_logout(config))
    except GliaError as exc:
        formatting.notice(f"warning: could not revoke the token on the server: {exc.message}")
    save_config(config.with_token(None))
    formatting.notice(f"Logged out of {config.server_url}")


async def _logout(config: CliConfig) -> None:
    async with open_client(config) as client:
        await client.auth.logout()


@config_app.command("show")
def show(output: OutputFormat = typer.Option(OutputFormat.TABLE, "-o", "--output")) -> None:
    """Show the server, user and cluster in use, with the cluster's presets."""
    config = current_config()
    cluster = run_async(_cluster(config)) if config.token else None
    if output is OutputFormat.JSON:
        formatting.print_json(
            {
                "server": config.server_url,
                "username": config.username,
                "cluster": cluster.name if cluster else config.cluster,
                "presets": cluster.presets if cluster else [],
            }
        )
        return
    formatting.print_fields(
        [
            ("Server", config.server_url),
            ("User", config.username if config.token else "(not logged in)"),
            ("Cluster", cluster.name if cluster else config.cluster),
        ]
    )
    if cluster:
        formatting.stdout_console().print()
        formatting.print_presets(cluster.presets)


async def _cluster(config: CliConfig) -> Cluster | None:
    """The configured cluster, else the server's first one (its default for new jobs)."""
    async with open_client(config) as client:
        if config.cluster:
            return await client.clusters.get(config.cluster)
        clusters = await client.clusters.list()
        return clusters[0] if clusters else None


@config_app.command("set-cluster")
def set_cluster(name: str = typer.Argument(..., help="Cluster for new jobs by default")) -> None:
    """Make NAME the default cluster of glia run (checked with the server)."""
    config = current_config()
    cluster = run_async(_cluster(config.with_cluster(name)))
    if cluster is None:
        raise NotFound(f"no cluster {name!r}")
    save_config(config.with_cluster(cluster.name))
    formatting.notice(f"Default cluster: {cluster.name}")
