"""``glia login``, ``glia logout`` and ``glia config ...``: who talks to which server.

Like kubectl, the config file holds named contexts (a server, a user's token, a default
cluster, the org and project to work in) and which one is in use; ``--context NAME`` picks
another for one command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.options import GliaCommand, OutputFormat, flag, output_option, with_examples

if TYPE_CHECKING:
    from sdk import CliConfig, Cluster, Quota
    from sdk.config import Context

config_app = typer.Typer(
    help="Show or change the CLI's configuration: contexts (server, user, cluster, org, project).",
    invoke_without_command=True,
)


@config_app.callback()
def _config(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    app.command("login", cls=GliaCommand)(login)
    app.command("logout", cls=GliaCommand)(logout)
    app.add_typer(config_app, name="config")


def read_password(prompt: str, *, from_stdin: bool) -> str:
    """A password from one line of stdin, or from a hidden prompt; never an argument."""
    import sys

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True))


def login(
    url: str | None = typer.Argument(
        None,
        metavar="[URL]",
        help="Server URL.",
        show_default="the current context's server, else http://127.0.0.1:8080",
    ),
    username: str | None = typer.Option(
        None, "-u", "--username", metavar="NAME", help="User name.", show_default="prompt"
    ),
    password_stdin: bool = flag(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        metavar="TOKEN",
        help="Use an existing API token (checked with the server) instead of a password.",
    ),
    name: str | None = typer.Option(
        None,
        "--name",
        metavar="CONTEXT",
        help="Name of the context to add or replace.",
        show_default="USER@HOST:PORT",
    ),
) -> None:
    """Log in to a Glia server: adds a context (server, user, token) and uses it.

    Logging in as another user, or to another server, keeps the contexts already there.
    """
    from cli import formatting
    from cli.session import load, run_async
    from sdk import DEFAULT_SERVER, GliaClient
    from sdk.config import Context, context_name

    config = load()
    server = (url or config.current.server or DEFAULT_SERVER).rstrip("/")

    async def by_password(username: str, password: str) -> tuple[str, str]:
        async with GliaClient(server, None) as client:
            new_token, user = await client.auth.login(username, password)
            return new_token, user.name

    async def whoami(token: str) -> str:
        async with GliaClient(server, token) as client:
            return (await client.auth.me()).name

    if token is None:
        username = username or str(typer.prompt("Username"))
        password = read_password("Password", from_stdin=password_stdin)
        new_token, user = run_async(by_password(username, password), waiting="Logging in")
    else:
        new_token, user = token, run_async(whoami(token), waiting="Checking the token")
    context_key = name or context_name(server, user)
    old = config.contexts.get(context_key)
    # A cluster, org or project name means nothing on another server.
    same = old is not None and old.server == server
    context = Context(server=server, token=new_token, username=user)
    if old is not None and same:
        context = context.replace(cluster=old.cluster, org=old.org, project=old.project)
    _save(config.with_context(context_key, context))
    formatting.notice(f"Logged in to {server} as {user} (context {context_key})")


with_examples(
    "glia login http://glia.example.com:8080 -u alice",
    'echo "$PASSWORD" | glia login -u alice --password-stdin',
    'glia login --token "$GLIA_TOKEN" --name ci',
)(login)


def _save(config: CliConfig) -> None:
    from sdk import save_config

    save_config(config)


def logout() -> None:
    """Revoke the context's token on the server (best effort) and forget it here; the
    context stays, without a token, for a later glia login."""
    from cli import formatting
    from cli.errors import error_line
    from cli.session import current_name, load, open_client, run_async
    from sdk import GliaError

    config = load()
    name = current_name(config)
    context = config.contexts.get(name) if name else None
    if name is None or context is None or not context.token:
        formatting.notice("Not logged in.")
        return

    async def revoke() -> None:
        async with open_client(context) as client:
            await client.auth.logout()

    try:
        run_async(revoke(), waiting="Logging out")
    except GliaError as exc:
        formatting.notice(f"warning: could not revoke the token on the server: {error_line(exc)}")
    _save(
        config.with_context(name, context.replace(token=None), use=name == config.current_context)
    )
    formatting.notice(f"Logged out of {context.server_url} (context {name})")


with_examples("glia logout", "glia --context ci logout")(logout)


@config_app.command("show", cls=GliaCommand)
def show(output: OutputFormat = output_option()) -> None:
    """Show the context in use: server, user, cluster, org and project, with the cluster's
    presets."""
    from cli import formatting
    from cli.session import current_config, current_name, load, personal_name, run_async

    name = current_name(load())
    context = current_config()
    personal = personal_name(context)
    org = context.org or personal
    project = context.project or (personal if org == personal else None)
    cluster, quotas = (
        run_async(_overview(context, org), waiting="Asking the server")
        if context.token
        else (None, [])
    )
    if output is not OutputFormat.TABLE:
        formatting.print_data(
            {
                "context": name,
                "server": context.server_url,
                "username": context.username if context.token else None,
                "cluster": cluster.name if cluster else context.cluster,
                "org": org,
                "project": project,
                "presets": list(cluster.presets) if cluster else [],
                "quotas": quotas,
            },
            output,
        )
        return
    formatting.print_fields(
        [
            ("Context", name),
            ("Server", context.server_url),
            ("User", context.username if context.token else "(not logged in)"),
            ("Cluster", cluster.name if cluster else context.cluster),
            ("Org", org or "(the server's choice)"),
            ("Project", project or "(none chosen: glia config switch-project PROJECT)"),
        ]
    )
    if cluster:
        formatting.stdout_console().print()
        formatting.print_presets(cluster.presets)
    if quotas:
        formatting.stdout_console().print()
        formatting.print_quotas(quotas)


with_examples("glia config show", "glia --context alice@glia.example.com:8080 config show -o yaml")(
    show
)


async def _named_cluster(context: Context, name: str) -> Cluster:
    from cli.session import open_client

    async with open_client(context) as client:
        return await client.clusters.get(name)


async def _overview(context: Context, org: str | None) -> tuple[Cluster | None, list[Quota]]:
    """The context's cluster, else the server's first one (its default for new jobs), and
    the caller's quotas in ``org`` there."""
    from cli.session import open_client
    from sdk import NotFound

    async with open_client(context) as client:
        if context.cluster:
            cluster: Cluster | None = await client.clusters.get(context.cluster)
        else:
            clusters = await client.clusters.list()
            cluster = clusters[0] if clusters else None
        if cluster is None:
            return None, []
        try:
            return cluster, await client.quotas.mine(org=org, cluster=cluster.name)
        except NotFound:  # an org the context names that the caller may no longer see
            return cluster, []


@config_app.command("switch-cluster", cls=GliaCommand)
def switch_cluster(
    name: str = typer.Argument(
        ..., metavar="CLUSTER", help="The cluster to work on by default (glia admin ls-clusters)."
    ),
) -> None:
    """Work on CLUSTER from now on in this context (checked with the server): the default of
    --cluster for glia run, storage, blob, disk and secret commands."""
    from cli import formatting
    from cli.errors import ConfigError
    from cli.session import current_name, load, run_async

    config = load()
    context_key = current_name(config)
    if context_key is None or context_key not in config.contexts:
        raise ConfigError("no context in use (run glia login)")
    context = config.contexts[context_key]
    cluster = run_async(_named_cluster(context, name), waiting="Asking the server")
    _save(config.with_context(context_key, context.replace(cluster=cluster.name), use=False))
    formatting.notice(f"Default cluster of context {context_key}: {cluster.name}")


with_examples("glia config switch-cluster gpu-farm")(switch_cluster)
# The name it had before the cluster life cycle (kept for scripts; not in help).
config_app.command("set-cluster", cls=GliaCommand, hidden=True)(switch_cluster)


def _logged_in_context() -> tuple[CliConfig, str, Context]:
    """The config, the name of the context this command uses, and that context, which must
    be logged in (switching is checked with the server)."""
    from cli.errors import ConfigError
    from cli.session import current_name, load
    from sdk import Unauthenticated

    config = load()
    context_key = current_name(config)
    if context_key is None or context_key not in config.contexts:
        raise ConfigError("no context in use (run glia login)")
    context = config.contexts[context_key]
    if not context.token:
        raise Unauthenticated(f"context {context_key} is logged out")
    return config, context_key, context


@config_app.command("switch-org", cls=GliaCommand)
def switch_org(
    org: str = typer.Argument(
        ..., metavar="ORG", help="An org you belong to (glia admin ls-orgs)."
    ),
) -> None:
    """Work in ORG from now on in this context (checked with the server): glia run and
    glia ps use it. The project is kept when ORG has one of that name; else ORG's only
    project, or your personal one in your personal org, is chosen; else choose one with
    glia config switch-project."""
    from cli import formatting
    from cli.session import open_client, personal_name, run_async
    from sdk import Project

    config, context_key, context = _logged_in_context()

    async def projects() -> list[Project]:
        async with open_client(context) as client:
            await client.orgs.get(org)  # NotFound unless the caller belongs to it
            return await client.projects.list(org)

    found = [p.name for p in run_async(projects(), waiting="Asking the server")]
    current = context.project or personal_name(context)
    if current in found:
        project: str | None = current
    elif len(found) == 1:
        project = found[0]
    else:
        project = None
    _save(config.with_context(context_key, context.replace(org=org, project=project), use=False))
    if project is not None:
        formatting.notice(f"Context {context_key} works in org {org}, project {project}")
        return
    formatting.notice(f"Context {context_key} works in org {org}; choose a project:")
    formatting.notice(
        "  glia config switch-project PROJECT"
        + (f"  (one of {', '.join(found)})" if found else "  (you see none in it yet)")
    )


with_examples("glia config switch-org acme")(switch_org)


@config_app.command("switch-project", cls=GliaCommand)
def switch_project(
    project: str = typer.Argument(
        ...,
        metavar="[ORG/]PROJECT",
        help="A project of the context's org (glia admin ls-projects), or ORG/PROJECT.",
    ),
) -> None:
    """Work in PROJECT from now on in this context (checked with the server): glia run
    starts jobs there and glia ps lists its jobs."""
    from cli import formatting
    from cli.session import open_client, personal_name, run_async
    from sdk import BadInput

    config, context_key, context = _logged_in_context()
    org, _, name = project.rpartition("/")
    org = org or context.org or personal_name(context) or ""
    if not org:
        raise BadInput(f"name the org too: glia config switch-project ORG/{name}")

    async def check() -> None:
        async with open_client(context) as client:
            await client.projects.get(org, name)  # NotFound unless the caller may see it

    run_async(check(), waiting="Asking the server")
    _save(config.with_context(context_key, context.replace(org=org, project=name), use=False))
    formatting.notice(f"Context {context_key} works in org {org}, project {name}")


with_examples("glia config switch-project vision", "glia config switch-project acme/vision")(
    switch_project
)


def _complete_context(incomplete: str) -> list[str]:
    try:
        from sdk import load_config

        return [name for name in load_config().contexts if name.startswith(incomplete)]
    except Exception:  # completion stays silent
        return []


CONTEXT = typer.Argument(..., metavar="CONTEXT", autocompletion=_complete_context)


@config_app.command("get-contexts", cls=GliaCommand)
def get_contexts(output: OutputFormat = output_option()) -> None:
    """List the contexts; the one in use is marked with *."""
    from cli import formatting
    from cli.session import current_name, load

    config = load()
    in_use = current_name(config)
    if output is not OutputFormat.TABLE:
        formatting.print_data(
            [
                {
                    "name": name,
                    "current": name == in_use,
                    "server": c.server_url,
                    "username": c.username,
                    "cluster": c.cluster,
                    "org": c.org,
                    "project": c.project,
                    "loggedIn": bool(c.token),
                }
                for name, c in config.contexts.items()
            ],
            output,
        )
        return
    formatting.print_table(
        ("CURRENT", "NAME", "SERVER", "USER", "CLUSTER"),
        (
            (
                "*" if name == in_use else "",
                name,
                c.server_url,
                c.username if c.token else f"{c.username or '-'} (logged out)",
                c.cluster,
            )
            for name, c in config.contexts.items()
        ),
    )


@config_app.command("use-context", cls=GliaCommand)
def use_context(name: str = CONTEXT) -> None:
    """Use CONTEXT from now on."""
    from cli import formatting
    from cli.errors import ConfigError
    from cli.session import load

    try:
        config = load().using(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    _save(config)
    formatting.notice(f"Switched to context {name}")


with_examples("glia config use-context admin@127.0.0.1:8080")(use_context)


@config_app.command("rename-context", cls=GliaCommand)
def rename_context(
    old: str = CONTEXT,
    new: str = typer.Argument(..., metavar="NEW_NAME"),
) -> None:
    """Rename a context."""
    from cli import formatting
    from cli.errors import ConfigError
    from cli.session import load

    try:
        config = load().renamed(old, new)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    _save(config)
    formatting.notice(f"Context {old} renamed to {new}")


with_examples("glia config rename-context alice@glia.example.com:8080 prod")(rename_context)


@config_app.command("delete-context", cls=GliaCommand)
def delete_context(name: str = CONTEXT) -> None:
    """Delete a context from the config file (its token is not revoked: glia logout does
    that)."""
    from cli import formatting
    from cli.errors import ConfigError
    from cli.session import load

    config = load()
    try:
        _save(config.without(name))
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    formatting.notice(f"Deleted context {name}")
    if config.current_context == name:
        formatting.notice("No context is in use now: glia config use-context NAME")


with_examples("glia config delete-context old-server")(delete_context)
with_examples(
    "glia config get-contexts",
    "glia config use-context alice@glia.example.com:8080",
    "glia --context admin@127.0.0.1:8080 ps",
)(get_contexts)
