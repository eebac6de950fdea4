"""``glia secret ...``: a project's secrets, for its jobs.

Secrets live in the context's project (glia config switch-project; your personal one by
default) on the context's cluster, or where ``--cluster``, ``--org`` and ``--project`` say.
A value goes to the server and never comes back: ``ls`` shows keys and times only.

Only typer is imported here; the SDK inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.options import GliaCommand, OutputFormat, cluster_option, output_option, with_examples

if TYPE_CHECKING:
    from sdk import GliaClient
    from sdk.config import Context

secret_app = typer.Typer(
    help="Secrets of a project: values its jobs use, kept encrypted, never shown again.",
    invoke_without_command=True,
)


@secret_app.callback()
def _secret(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    app.add_typer(secret_app, name="secret")


CLUSTER_OPTION = cluster_option()
ORG_OPTION = typer.Option(
    None, "--org", metavar="ORG", help="The project's org.", show_default="the context's"
)
PROJECT_OPTION = typer.Option(
    None, "--project", metavar="PROJECT", help="The project.", show_default="the context's"
)
KEY_ARGUMENT = typer.Argument(
    ..., metavar="KEY", help="Letters, digits, '_', '.' and '-', up to 253 characters."
)


async def _place(
    client: GliaClient,
    context: Context,
    cluster: str | None,
    org: str | None,
    project: str | None,
) -> tuple[str, str, str]:
    """The cluster, org and project a command works in (the personal project by default)."""
    from cli.session import personal_name, working_project
    from sdk import BadInput, NotFound

    in_org, in_project = working_project(context, org=org, project=project)
    if in_project is None or in_org is None:
        personal = personal_name(context)
        if personal is None:
            raise BadInput("name the project of the secret: --org ORG --project PROJECT")
        in_org = in_org or personal
        in_project = in_project or personal
    in_cluster = cluster or context.cluster
    if in_cluster is None:
        clusters = await client.clusters.list()
        if not clusters:
            raise NotFound("no cluster to keep secrets for")
        in_cluster = clusters[0].name
    return in_cluster, in_org, in_project


def _run(work: Any, *, waiting: str) -> Any:
    from cli.session import current_config, open_client, run_async

    context = current_config()

    async def run() -> Any:
        async with open_client(context) as client:
            return await work(client, context)

    return run_async(run(), waiting=waiting)


def _read_value(value: str) -> bytes:
    """VALUE as given: ``@path`` a file's bytes, ``-`` standard input's, else the text."""
    from glia.secrets import MAX_VALUE_BYTES
    from sdk import BadInput, NotFound

    if value == "-":
        data = sys.stdin.buffer.read(MAX_VALUE_BYTES + 1)
    elif value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            with path.open("rb") as source:
                data = source.read(MAX_VALUE_BYTES + 1)
        except FileNotFoundError:
            raise NotFound(f"no file {str(path)!r} to read the value from") from None
        except IsADirectoryError:
            raise BadInput(f"{str(path)!r} is a directory, not a file") from None
        except PermissionError:
            raise BadInput(f"{str(path)!r} cannot be read (permission denied)") from None
    else:
        data = value.encode()
    if len(data) > MAX_VALUE_BYTES:
        raise BadInput(f"a secret's value is at most {MAX_VALUE_BYTES} bytes (1 MiB)")
    return data


@secret_app.command("add", cls=GliaCommand)
def add(
    key: str = KEY_ARGUMENT,
    value: str = typer.Argument(
        ...,
        metavar="VALUE|@FILE|-",
        help="The value: the text itself, @FILE for a file's bytes, - for standard input. "
        "A value on the command line lands in your shell's history: prefer @FILE or -.",
    ),
    cluster: str | None = CLUSTER_OPTION,
    org: str | None = ORG_OPTION,
    project: str | None = PROJECT_OPTION,
    output: OutputFormat = output_option(),
) -> None:
    """Add a secret to a project, or give one a new value (the project's writers)."""
    from cli import formatting
    from glia.secrets import check_secret_key

    check_secret_key(key, "KEY")
    data = _read_value(value)

    async def put(client: GliaClient, context: Context) -> Any:
        place = await _place(client, context, cluster, org, project)
        return await client.secrets.put("secret://" + "/".join((*place, key)), data)

    secret, created = _run(put, waiting="Adding the secret")
    if output is not OutputFormat.TABLE:
        formatting.print_data(secret, output)
    else:
        formatting.notice(f"{'Added' if created else 'Replaced'} {secret.uri}")


with_examples(
    "glia secret add WANDB_KEY @~/.wandb-key",
    'printf %s "$TOKEN" | glia secret add HF_TOKEN -',
    "glia secret add --project vision DB_PASSWORD @db.txt",
)(add)


@secret_app.command("ls", cls=GliaCommand)
def ls(
    cluster: str | None = CLUSTER_OPTION,
    org: str | None = ORG_OPTION,
    project: str | None = PROJECT_OPTION,
    output: OutputFormat = output_option(),
) -> None:
    """List a project's secrets: keys and times, never values (the project's readers)."""
    from cli import formatting

    async def listing(client: GliaClient, context: Context) -> Any:
        in_cluster, in_org, in_project = await _place(client, context, cluster, org, project)
        return await client.secrets.list(cluster=in_cluster, org=in_org, project=in_project)

    found = _run(listing, waiting="Listing secrets")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
        return
    formatting.print_table(
        ["KEY", "UPDATED", "BY", "URI"],
        [(s.key, formatting.age(s.updated_at), s.updated_by or "", s.uri) for s in found],
    )


with_examples("glia secret ls", "glia secret ls --org acme --project vision -o json")(ls)


@secret_app.command("rm", cls=GliaCommand)
def rm(
    key: str = KEY_ARGUMENT,
    cluster: str | None = CLUSTER_OPTION,
    org: str | None = ORG_OPTION,
    project: str | None = PROJECT_OPTION,
) -> None:
    """Delete a secret (the project's writers)."""
    from cli import formatting
    from glia.secrets import check_secret_key

    check_secret_key(key, "KEY")

    async def delete(client: GliaClient, context: Context) -> Any:
        place = await _place(client, context, cluster, org, project)
        return await client.secrets.delete("secret://" + "/".join((*place, key)))

    deleted = _run(delete, waiting="Deleting the secret")
    formatting.notice(f"Deleted {deleted.uri}")


with_examples("glia secret rm WANDB_KEY", "glia secret rm --project vision DB_PASSWORD")(rm)
