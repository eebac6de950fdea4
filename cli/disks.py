"""``glia disk create|ls|get|rm``: a project's disks (fixed-size filesystems that one job at
a time mounts read-write: ``glia run -v disk:NAME:/mnt/data``).

Only typer is imported here; the SDK inside the commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cli.options import (
    GliaCommand,
    OutputFormat,
    cluster_option,
    output_option,
    parse_size,
    with_examples,
)

if TYPE_CHECKING:
    from sdk import Disk, GliaClient

T = TypeVar("T")

disk_app = typer.Typer(
    help="Disks: fixed-size filesystems of a project that one job at a time mounts read-write.",
    invoke_without_command=True,
)


@disk_app.callback()
def _disk(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    app.add_typer(disk_app, name="disk")
    for name, command in COMMANDS.items():
        disk_app.command(name, cls=GliaCommand)(command)


CLUSTER = cluster_option()
ORG = typer.Option(
    None, "--org", metavar="ORG", help="The project's org.", show_default="the context's"
)
PROJECT = typer.Option(
    None, "--project", metavar="PROJECT", help="The project.", show_default="the context's"
)
DISK = typer.Argument(..., metavar="DISK", help="The disk's id, or its name in the project.")


def _call(
    action: Callable[[GliaClient, dict[str, str | None]], Awaitable[T]],
    waiting: str,
    *,
    cluster: str | None,
    org: str | None,
    project: str | None,
) -> T:
    """Run ``action`` with a client and the place it works in: the options given, else the
    context's cluster, org and project."""
    from cli.session import call_client, current_config, working_project

    context = current_config()
    org, project = working_project(context, org=org, project=project)
    place = {"cluster": cluster or context.cluster, "org": org, "project": project}
    return call_client(lambda client: action(client, place), waiting=waiting)


def _show(disks: list[Disk], output: OutputFormat, *, one: bool = False) -> None:
    from cli import formatting
    from glia.sizes import format_size
    from sdk import format_duration

    if output is not OutputFormat.TABLE:
        formatting.print_data(disks[0] if one else disks, output)
        return

    def deleted_after(disk: Disk) -> str:
        if disk.timeout_unused_s is None:
            return "never"
        return "after " + format_duration(timedelta(seconds=disk.timeout_unused_s))

    formatting.print_table(
        ("ID", "NAME", "STATUS", "SIZE", "USED", "PROJECT", "IN USE BY", "DELETED UNUSED"),
        (
            (
                d.id,
                d.name or "-",
                d.status.value + (f" ({d.status_description})" if d.status_description else ""),
                format_size(d.size_bytes),
                "-" if d.used_bytes is None else format_size(d.used_bytes),
                f"{d.org}/{d.project}",
                d.used_by or "-",
                deleted_after(d),
            )
            for d in disks
        ),
    )


def create(
    size: str = typer.Argument(..., metavar="SIZE", help="Its size: 512M, 10G, 1T."),
    name: str | None = typer.Option(None, "--name", metavar="NAME", help="A name for it."),
    timeout_unused: str | None = typer.Option(
        None,
        "--timeout-unused",
        metavar="DURATION",
        help="Delete it once no job has used it for this long: 1d, 12h.",
        show_default="never",
    ),
    cluster: str | None = CLUSTER,
    org: str | None = ORG,
    project: str | None = PROJECT,
    output: OutputFormat = output_option(),
) -> None:
    """Create a disk in the project."""
    from sdk import BadInput, parse_duration

    size_bytes = parse_size(size, "SIZE")
    try:
        timeout_s = parse_duration(timeout_unused).total_seconds() if timeout_unused else None
    except ValueError as exc:
        raise BadInput(f"--timeout-unused: {exc}") from exc

    async def make(client: GliaClient, place: dict[str, str | None]) -> Disk:
        return await client.disks.create(size_bytes, name=name, timeout_unused_s=timeout_s, **place)

    disk = _call(make, "Creating the disk", cluster=cluster, org=org, project=project)
    _show([disk], output, one=True)


def ls(
    cluster: str | None = CLUSTER,
    org: str | None = ORG,
    project: str | None = PROJECT,
    all_projects: bool = typer.Option(
        False, "--all-projects", help="Every project's disks you may read."
    ),
    output: OutputFormat = output_option(),
) -> None:
    """List the project's disks."""

    async def listing(client: GliaClient, place: dict[str, str | None]) -> list[Disk]:
        if all_projects:
            return await client.disks.list(cluster=place["cluster"])
        from cli.session import current_config, personal_name

        org_name = place["org"] or personal_name(current_config())
        project_name = place["project"] or (org_name if place["org"] is None else None)
        return await client.disks.list(cluster=place["cluster"], org=org_name, project=project_name)

    _show(_call(listing, "Listing disks", cluster=cluster, org=org, project=project), output)


def get(
    disk: str = DISK,
    cluster: str | None = CLUSTER,
    org: str | None = ORG,
    project: str | None = PROJECT,
    output: OutputFormat = output_option(),
) -> None:
    """Show a disk."""

    async def one(client: GliaClient, place: dict[str, str | None]) -> Disk:
        return await client.disks.get(disk, **place)

    _show(
        [_call(one, "Asking the server", cluster=cluster, org=org, project=project)],
        output,
        one=True,
    )


def rm(
    disk: str = DISK,
    cluster: str | None = CLUSTER,
    org: str | None = ORG,
    project: str | None = PROJECT,
) -> None:
    """Delete a disk and its files (not while a job uses it)."""
    from cli import formatting

    async def remove(client: GliaClient, place: dict[str, str | None]) -> Disk:
        return await client.disks.delete(disk, **place)

    gone = _call(remove, "Deleting the disk", cluster=cluster, org=org, project=project)
    formatting.notice(f"Deleted disk {gone.name or gone.id} ({gone.id})")


with_examples(
    "glia disk create 10G --name data",
    "glia disk create 1T --timeout-unused 7d --project vision",
)(create)
with_examples("glia disk ls", "glia disk ls --all-projects -o json")(ls)
with_examples("glia disk get data")(get)
with_examples("glia disk rm data")(rm)

COMMANDS: dict[str, Callable[..., Any]] = {"create": create, "ls": ls, "get": get, "rm": rm}
