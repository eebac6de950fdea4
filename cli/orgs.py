"""``glia admin`` for orgs, their users and projects, projects' users and cluster users
(neuro-cli's admin group's names). The server checks each caller: platform admins for orgs
and org clusters; an org's managers for its users and projects; a project's managers for its
users; a cluster's managers for its users.

Only typer is imported here; the SDK inside the commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cli.options import (
    GliaCommand,
    OutputFormat,
    complete_from,
    flag,
    output_option,
    with_examples,
)

if TYPE_CHECKING:
    from sdk import GliaClient

T = TypeVar("T")

# The kernel's roles (glia.tenancy), written out so that help needs no import of the kernel;
# tests/unit/test_cli_tenancy.py checks they match.
ORG_ROLES = ("user", "manager", "admin")
PROJECT_ROLES = ("reader", "writer", "manager", "admin")
CLUSTER_ROLES = ("user", "manager", "admin")

ORG = typer.Argument(..., metavar="ORG", help="The org's name.")
PROJECT = typer.Argument(..., metavar="PROJECT", help="The project's name.")
CLUSTER = typer.Argument(..., metavar="CLUSTER", help="The cluster's name.")
USER = typer.Argument(..., metavar="USER", help="A user (or a service account, OWNER/NAME).")


def register(admin_app: typer.Typer) -> None:
    for name, command in COMMANDS.items():
        admin_app.command(name, cls=GliaCommand)(command)


def _call(action: Callable[[GliaClient], Awaitable[T]], waiting: str) -> T:
    from cli.session import call_client

    return call_client(action, waiting=waiting)


def _show(value: Any, output: OutputFormat, table: Callable[[Any], None]) -> None:
    from cli import formatting

    if output is not OutputFormat.TABLE:
        formatting.print_data(value, output)
    else:
        table(value)


def _done(message: str) -> None:
    from cli import formatting

    formatting.notice(message)


# -- orgs --


def create_org(
    org: str = typer.Argument(..., metavar="ORG", help="Lowercase letters, digits, '-', '_'."),
    clusters: list[str] = typer.Option(
        [],
        "--cluster",
        metavar="CLUSTER",
        help="A cluster its members may run on (repeatable).",
        show_default="the default cluster",
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Create an org (platform admins)."""
    from cli import formatting

    created = _call(lambda client: client.orgs.create(org, clusters), "Creating the org")
    _show(created, output, lambda o: formatting.print_orgs([o]))


def rm_org(org: str = ORG, yes: bool = flag("-y", "--yes", help="Do not ask.")) -> None:
    """Delete an org that has no projects left (platform admins)."""
    if not yes:
        typer.confirm(f"Delete org {org}?", abort=True)
    _call(lambda client: client.orgs.delete(org), "Deleting the org")
    _done(f"Deleted org {org}")


def ls_orgs(output: OutputFormat = output_option()) -> None:
    """List the orgs you belong to (every org, for platform admins)."""
    from cli import formatting

    found = _call(lambda client: client.orgs.list(), "Listing orgs")
    _show(found, output, formatting.print_orgs)


def add_org_cluster(org: str = ORG, cluster: str = CLUSTER) -> None:
    """Let an org's members run on a cluster (platform admins)."""
    _call(lambda client: client.orgs.add_cluster(org, cluster), "Adding the cluster")
    _done(f"Org {org} may use cluster {cluster}")


def rm_org_cluster(org: str = ORG, cluster: str = CLUSTER) -> None:
    """Stop an org's members running new jobs on a cluster (platform admins)."""
    _call(lambda client: client.orgs.remove_cluster(org, cluster), "Removing the cluster")
    _done(f"Org {org} may no longer use cluster {cluster}")


def add_org_user(
    org: str = ORG,
    user: str = USER,
    role: str = typer.Argument(
        "user",
        metavar="ROLE",
        help="user, manager or admin.",
        autocompletion=complete_from(ORG_ROLES),
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Add a user to an org, or change their role in it (its managers; its admins for the
    admin role)."""
    from cli import formatting

    member = _call(lambda client: client.orgs.set_member(org, user, role), "Adding the user")
    _show(member, output, lambda m: formatting.notice(f"{m.user} is {m.role} of org {org}"))


def rm_org_user(org: str = ORG, user: str = USER) -> None:
    """Take a user out of an org and all of its projects (its managers)."""
    _call(lambda client: client.orgs.remove_member(org, user), "Removing the user")
    _done(f"Removed {user} from org {org}")


def ls_org_users(org: str = ORG, output: OutputFormat = output_option()) -> None:
    """List an org's users and their roles."""
    from cli import formatting

    found = _call(lambda client: client.orgs.members(org), "Listing the org's users")
    _show(found, output, formatting.print_members)


# -- projects --


def create_project(
    org: str = ORG,
    name: str = typer.Argument(
        ..., metavar="NAME", help="Lowercase letters, digits, '-', '_'; unique in the org."
    ),
    default_role: str = typer.Option(
        "writer",
        "--default-role",
        metavar="ROLE",
        help="The role of a user added without one: reader, writer, manager or admin.",
        autocompletion=complete_from(PROJECT_ROLES),
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Create a project in an org (its managers and admins); you become its admin."""
    from cli import formatting

    created = _call(
        lambda client: client.projects.create(org, name, default_role), "Creating the project"
    )
    _show(created, output, formatting.print_project)


def rm_project(
    org: str = ORG, name: str = PROJECT, yes: bool = flag("-y", "--yes", help="Do not ask.")
) -> None:
    """Delete a project that has no unfinished job (its admins)."""
    if not yes:
        typer.confirm(f"Delete project {org}/{name}?", abort=True)
    _call(lambda client: client.projects.delete(org, name), "Deleting the project")
    _done(f"Deleted project {org}/{name}")


def ls_projects(
    org: str | None = typer.Argument(
        None, metavar="ORG", help="Only this org's.", show_default="every org's"
    ),
    output: OutputFormat = output_option(),
) -> None:
    """List the projects you may see (all of an org, for its admins)."""
    from cli import formatting

    found = _call(lambda client: client.projects.list(org), "Listing projects")
    _show(found, output, formatting.print_projects)


def add_project_user(
    org: str = ORG,
    project: str = PROJECT,
    user: str = USER,
    role: str | None = typer.Argument(
        None,
        metavar="ROLE",
        help="reader, writer, manager or admin.",
        show_default="the project's default role",
        autocompletion=complete_from(PROJECT_ROLES),
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Add a user to a project, or change their role in it (its managers; its admins for
    the admin role); they join the org as a user if not in it."""
    from cli import formatting

    member = _call(
        lambda client: client.projects.set_member(org, project, user, role), "Adding the user"
    )
    _show(
        member,
        output,
        lambda m: formatting.notice(f"{m.user} is {m.role} of project {org}/{project}"),
    )


def rm_project_user(org: str = ORG, project: str = PROJECT, user: str = USER) -> None:
    """Take a user out of a project (its managers; anyone may leave)."""
    _call(lambda client: client.projects.remove_member(org, project, user), "Removing the user")
    _done(f"Removed {user} from project {org}/{project}")


def ls_project_users(
    org: str = ORG, project: str = PROJECT, output: OutputFormat = output_option()
) -> None:
    """List a project's users and their roles."""
    from cli import formatting

    found = _call(
        lambda client: client.projects.members(org, project), "Listing the project's users"
    )
    _show(found, output, formatting.print_members)


# -- cluster users --


def add_cluster_user(
    cluster: str = CLUSTER,
    user: str = USER,
    role: str = typer.Argument(
        "user",
        metavar="ROLE",
        help="user, manager or admin.",
        autocompletion=complete_from(CLUSTER_ROLES),
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Give a user a role on a cluster itself (its managers; its admins for the admin
    role). An org's members run on their org's clusters without one."""
    from cli import formatting

    member = _call(lambda client: client.clusters.set_user(cluster, user, role), "Adding the user")
    _show(member, output, lambda m: formatting.notice(f"{m.user} is {m.role} of cluster {cluster}"))


def rm_cluster_user(cluster: str = CLUSTER, user: str = USER) -> None:
    """Take a user's role on a cluster away (its managers)."""
    _call(lambda client: client.clusters.remove_user(cluster, user), "Removing the user")
    _done(f"Removed {user} from cluster {cluster}")


def ls_cluster_users(cluster: str = CLUSTER, output: OutputFormat = output_option()) -> None:
    """List the users given a role on a cluster itself (its managers and admins)."""
    from cli import formatting

    found = _call(lambda client: client.clusters.users(cluster), "Listing the cluster's users")
    _show(found, output, formatting.print_members)


with_examples("glia admin create-org acme", "glia admin create-org acme --cluster gpu")(create_org)
with_examples("glia admin rm-org -y acme")(rm_org)
with_examples("glia admin ls-orgs", "glia admin ls-orgs -o json | jq -r '.[].name'")(ls_orgs)
with_examples("glia admin add-org-cluster acme gpu")(add_org_cluster)
with_examples("glia admin rm-org-cluster acme gpu")(rm_org_cluster)
with_examples("glia admin add-org-user acme alice", "glia admin add-org-user acme bob manager")(
    add_org_user
)
with_examples("glia admin rm-org-user acme bob")(rm_org_user)
with_examples("glia admin ls-org-users acme")(ls_org_users)
with_examples(
    "glia admin create-project acme vision",
    "glia admin create-project acme audit --default-role reader",
)(create_project)
with_examples("glia admin rm-project -y acme vision")(rm_project)
with_examples("glia admin ls-projects", "glia admin ls-projects acme -o yaml")(ls_projects)
with_examples(
    "glia admin add-project-user acme vision bob",
    "glia admin add-project-user acme vision carol reader",
)(add_project_user)
with_examples("glia admin rm-project-user acme vision bob")(rm_project_user)
with_examples("glia admin ls-project-users acme vision")(ls_project_users)
with_examples("glia admin add-cluster-user default bob manager")(add_cluster_user)
with_examples("glia admin rm-cluster-user default bob")(rm_cluster_user)
with_examples("glia admin ls-cluster-users default")(ls_cluster_users)

COMMANDS: dict[str, Callable[..., None]] = {
    "create-org": create_org,
    "rm-org": rm_org,
    "ls-orgs": ls_orgs,
    "add-org-cluster": add_org_cluster,
    "rm-org-cluster": rm_org_cluster,
    "add-org-user": add_org_user,
    "rm-org-user": rm_org_user,
    "ls-org-users": ls_org_users,
    "create-project": create_project,
    "rm-project": rm_project,
    "ls-projects": ls_projects,
    "add-project-user": add_project_user,
    "rm-project-user": rm_project_user,
    "ls-project-users": ls_project_users,
    "add-cluster-user": add_cluster_user,
    "rm-cluster-user": rm_cluster_user,
    "ls-cluster-users": ls_cluster_users,
}
