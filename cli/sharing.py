"""``glia acl ...`` and ``glia share``: who may do what on which resource, and roles.

A grant lets a user or a role do an action (read < write < manage) on a URI and everything
beneath it; a grant on a role's URI (``role://user/alice/team``) makes the grantee a member of
the role. Only typer is imported here; the SDK inside the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.options import GliaCommand, OutputFormat, complete_from, flag, output_option, with_examples

if TYPE_CHECKING:
    from sdk import GliaClient, GrantEntry, Role

ACTIONS = ("read", "write", "manage")

acl_app = typer.Typer(
    help="Share resources with users and roles, and manage your roles.",
    invoke_without_command=True,
)


@acl_app.callback()
def _acl(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    app.add_typer(acl_app, name="acl")
    app.command("share", cls=GliaCommand)(share)


URI = typer.Argument(
    ...,
    metavar="URI",
    help="A resource URI (job://CLUSTER/ORG/PROJECT/JOB, project://ORG/PROJECT, "
    "role://user/alice/team, …), or a job's id or name.",
)
SUBJECT = typer.Argument(
    ..., metavar="USER|ROLE", help="A user name, or a role: role://user/alice/team."
)
ACTION = typer.Argument(
    ...,
    metavar="ACTION",
    help="read, write or manage (each includes the ones before it).",
    autocompletion=complete_from(ACTIONS),
)


async def resolve_uri(client: GliaClient, ref: str) -> str:
    """``ref`` if it is a URI (or ``*``), else the URI of the job it names."""
    if "://" in ref or ref == "*":
        return ref
    return (await client.jobs.get(ref)).uri


def _grant(uri: str, subject: str, action: str, output: OutputFormat) -> None:
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def grant() -> tuple[GrantEntry, list[str]]:
        async with open_client(current_config()) as client:
            return await client.acl.grant(await resolve_uri(client, uri), subject, action)

    granted, warnings = run_async(grant(), waiting="Granting")
    for warning in warnings:
        formatting.notice(f"warning: {warning}")
    if output is not OutputFormat.TABLE:
        formatting.print_data({"grant": granted, "warnings": warnings}, output)
    else:
        formatting.notice(f"{granted.subject} may {granted.action} {granted.uri}")


@acl_app.command("grant", cls=GliaCommand)
def grant(
    uri: str = URI,
    subject: str = SUBJECT,
    action: str = ACTION,
    output: OutputFormat = output_option(),
) -> None:
    """Let a user or a role do ACTION on URI and everything beneath it (you must manage
    URI). On a role's URI, make them a member of the role. A URI that names nothing (yet)
    is granted with a warning."""
    _grant(uri, subject, action, output)


with_examples(
    "glia acl grant job://default/alice/alice/job-0a1b2c3d bob read",
    "glia acl grant train bob write",
    "glia acl grant project://acme/vision role://user/alice/team read",
    "glia acl grant role://user/alice/team bob read",
)(grant)


def share(
    uri: str = URI,
    subject: str = SUBJECT,
    action: str = ACTION,
    output: OutputFormat = output_option(),
) -> None:
    """Share URI with a user or a role: the same as glia acl grant."""
    _grant(uri, subject, action, output)


with_examples("glia share train bob read", "glia share job://default/acme/vision bob write")(share)


@acl_app.command("revoke", cls=GliaCommand)
def revoke(uri: str = URI, subject: str = SUBJECT, output: OutputFormat = output_option()) -> None:
    """Take back what a user or a role was given on exactly URI (not what they hold beneath
    it, nor through a role); on a role's URI, take them out of the role."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def take_back() -> GrantEntry:
        async with open_client(current_config()) as client:
            return await client.acl.revoke(await resolve_uri(client, uri), subject)

    revoked = run_async(take_back(), waiting="Revoking")
    if output is not OutputFormat.TABLE:
        formatting.print_data(revoked, output)
    else:
        formatting.notice(f"{revoked.subject} no longer holds {revoked.action} on {revoked.uri}")


with_examples("glia acl revoke train bob", "glia acl revoke role://user/alice/team bob")(revoke)


USER_OPTION = typer.Option(
    None,
    "-u",
    "--user",
    metavar="USER|ROLE",
    help="Another user's or a role's (for those who manage it).",
    show_default="yours",
)


@acl_app.command("ls", cls=GliaCommand)
def ls(
    shared: bool = flag(
        "--shared", help="What you have shared: grants others hold on what you manage."
    ),
    user: str | None = USER_OPTION,
    output: OutputFormat = output_option(),
) -> None:
    """List what you (or USER) may do, by URI: your grants and your roles' grants; with
    --shared, what you have shared with others."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def grants() -> list[GrantEntry]:
        async with open_client(current_config()) as client:
            if shared:
                return await client.acl.shared(user)
            return await client.acl.permissions(user)

    found = run_async(grants(), waiting="Listing grants")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
    else:
        formatting.print_grants(found)


with_examples("glia acl ls", "glia acl ls --shared", "glia acl ls -u bob -o json")(ls)


@acl_app.command("add-role", cls=GliaCommand)
def add_role(
    name: str = typer.Argument(
        ..., metavar="NAME", help="The role's name: team is role://user/YOU/team."
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Create a role of your own; grant things to it, and grant it to users (glia acl
    grant role://user/YOU/NAME USER read)."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def create() -> Role:
        async with open_client(current_config()) as client:
            return await client.acl.create_role(name)

    role = run_async(create(), waiting="Creating the role")
    if output is not OutputFormat.TABLE:
        formatting.print_data(role, output)
    else:
        formatting.notice(f"Created role {role.uri}")


with_examples("glia acl add-role team", "glia acl add-role team/leads")(add_role)


@acl_app.command("rm-role", cls=GliaCommand)
def rm_role(
    name: str = typer.Argument(
        ..., metavar="NAME", help="One of your roles (team), or a role in full (user/bob/team)."
    ),
) -> None:
    """Delete a role you manage: its members lose it and what it was granted."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def delete() -> Role:
        async with open_client(current_config()) as client:
            return await client.acl.delete_role(name)

    role = run_async(delete(), waiting="Deleting the role")
    formatting.notice(f"Deleted role {role.uri}")


with_examples("glia acl rm-role team")(rm_role)


@acl_app.command("ls-roles", cls=GliaCommand)
def ls_roles(user: str | None = USER_OPTION, output: OutputFormat = output_option()) -> None:
    """List the roles you (or USER) hold, directly or through other roles."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def roles() -> list[Role]:
        async with open_client(current_config()) as client:
            return await client.acl.roles(user)

    found = run_async(roles(), waiting="Listing roles")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
    else:
        formatting.print_roles(found)


with_examples("glia acl ls-roles", "glia acl ls-roles -u bob")(ls_roles)


@acl_app.command("ls-role-members", cls=GliaCommand)
def ls_role_members(
    role: str = typer.Argument(
        ..., metavar="ROLE", help="role://user/alice/team, or team for a role of your own"
    ),
    output: OutputFormat = output_option(),
) -> None:
    """List who holds a role you manage (read: a member; manage: may change its members)."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def members() -> list[GrantEntry]:
        async with open_client(current_config()) as client:
            name = role
            if "/" not in role and not role.startswith("role"):
                name = f"user/{(await client.auth.me()).name}/{role}"
            return await client.acl.role_members(name)

    found = run_async(members(), waiting="Listing the role's members")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
    else:
        formatting.print_grants(found)


with_examples("glia acl ls-role-members team", "glia acl ls-role-members role://user/alice/team")(
    ls_role_members
)
