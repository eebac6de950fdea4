"""``glia service-account ...``: tokens for programs, acting with what they were given.

Only typer is imported here; the SDK inside the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.options import GliaCommand, OutputFormat, complete_from, flag, output_option, with_examples

if TYPE_CHECKING:
    from sdk import ServiceAccount

PROJECT_ROLES = ("reader", "writer", "manager", "admin")

service_account_app = typer.Typer(
    help="Service accounts: tokens for programs (CI, schedulers), with their own permissions.",
    invoke_without_command=True,
)


@service_account_app.callback()
def _service_account(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    app.add_typer(service_account_app, name="service-account")


NAME = typer.Argument(..., metavar="NAME", help="Its name (yours: ci) or its full name (alice/ci).")


@service_account_app.command("create", cls=GliaCommand)
def create(
    name: str = typer.Argument(..., metavar="NAME", help="Lowercase letters, digits, '-' and '_'."),
    project: str | None = typer.Option(
        None, "--project", metavar="PROJECT", help="A project it joins, and runs jobs in."
    ),
    org: str | None = typer.Option(
        None,
        "--org",
        metavar="ORG",
        help="The project's org.",
        show_default="the context's (glia config switch-org), else your personal org",
    ),
    role: str | None = typer.Option(
        None,
        "--role",
        metavar="ROLE",
        help="Its role in the project: reader, writer, manager or admin.",
        show_default="the project's default role",
        autocompletion=complete_from(PROJECT_ROLES),
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Create a service account and print its token, which is shown only this once. Use
    the token with glia login --token TOKEN, or as a Bearer token of the API."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async
    from sdk import BadInput

    if project is None and (org is not None or role is not None):
        raise BadInput("--org and --role go with --project")
    context = current_config()
    in_org = (org or context.org) if project is not None else None

    async def make() -> tuple[ServiceAccount, str]:
        async with open_client(context) as client:
            return await client.service_accounts.create(
                name, project=project, org=in_org, role=role
            )

    account, token = run_async(make(), waiting="Creating the service account")
    if output is not OutputFormat.TABLE:
        formatting.print_data({"serviceAccount": account, "token": token}, output)
        return
    formatting.print_service_account(account)
    formatting.print_fields([("Token", token)])
    formatting.notice("The token is shown only once: store it now (glia login --token TOKEN).")


with_examples(
    "glia service-account create ci --project vision --org acme --role writer",
    "glia service-account create nightly -o json | jq -r .token",
)(create)


@service_account_app.command("ls", cls=GliaCommand)
def ls(output: OutputFormat = output_option()) -> None:
    """List your service accounts (every one, for admins)."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def accounts() -> list[ServiceAccount]:
        async with open_client(current_config()) as client:
            return await client.service_accounts.list()

    found = run_async(accounts(), waiting="Listing service accounts")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
    else:
        formatting.print_service_accounts(found)


with_examples("glia service-account ls")(ls)


@service_account_app.command("get", cls=GliaCommand)
def get(name: str = NAME, output: OutputFormat = output_option()) -> None:
    """Show a service account."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def account() -> ServiceAccount:
        async with open_client(current_config()) as client:
            return await client.service_accounts.get(name)

    found = run_async(account(), waiting="Getting the service account")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
    else:
        formatting.print_service_account(found)


with_examples("glia service-account get ci")(get)


@service_account_app.command("rm", cls=GliaCommand)
def rm(
    name: str = NAME, yes: bool = flag("-y", "--yes", help="Do not ask for confirmation.")
) -> None:
    """Delete a service account: its tokens stop working at once."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    if not yes:
        typer.confirm(f"Delete service account {name}? Its token stops working.", abort=True)

    async def delete() -> ServiceAccount:
        async with open_client(current_config()) as client:
            return await client.service_accounts.delete(name)

    account = run_async(delete(), waiting="Deleting the service account")
    formatting.notice(f"Deleted service account {account.name}")


with_examples("glia service-account rm ci", "glia service-account rm -y alice/ci")(rm)
