"""``glia admin ...``: users (the server checks the caller is an admin); orgs, projects and
cluster users are in `cli.orgs`.

Passwords come from a hidden prompt or the first line of standard input
(``--password-stdin``), never from an argument: arguments end up in shell histories and in
``ps`` output.
"""

from __future__ import annotations

from typing import Any

import typer

from cli.options import (
    USER_ROLES,
    GliaCommand,
    OutputFormat,
    choices_help,
    complete_from,
    flag,
    output_option,
    with_examples,
)

admin_app = typer.Typer(
    help="Administration: users (admins only); orgs, projects and cluster users (their "
    "managers and admins); cluster presets (the cluster's admins).",
    invoke_without_command=True,
)


@admin_app.callback()
def _admin(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")


def _complete_user(incomplete: str) -> list[str]:
    """User names from the server; nothing on any error (completion stays silent)."""
    try:
        import asyncio

        from cli.session import current_config, open_client

        async def names() -> list[str]:
            async with open_client(current_config()) as client:
                return [user.name for user in await client.users.list()]

        found = asyncio.run(asyncio.wait_for(names(), 2.0))
        return [name for name in found if name.startswith(incomplete)]
    except Exception:
        return []


USER = typer.Argument(..., metavar="USER", help="User name.", autocompletion=_complete_user)
ROLE_HELP = f"Platform role: {choices_help(USER_ROLES)}."


def _role(text: str | None) -> Any:
    if text is None:
        return None
    from sdk import BadInput, UserRole

    try:
        return UserRole(text.lower())
    except ValueError:
        raise BadInput(
            f"--role: unknown role {text!r}; one of {choices_help(USER_ROLES)}"
        ) from None


@admin_app.command("add-user", cls=GliaCommand)
def add_user(
    name: str = typer.Argument(..., metavar="USER", help="The new user's name."),
    email: str | None = typer.Option(None, "--email", metavar="EMAIL", help="Email address."),
    role: str = typer.Option(
        "user",
        "--role",
        metavar="ROLE",
        help=ROLE_HELP,
        autocompletion=complete_from(USER_ROLES),
    ),
    password_stdin: bool = flag(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
    password_prompt: bool = flag("--password-prompt", help="Ask for the password."),
    output: OutputFormat = output_option(),
) -> None:
    """Create a user. Without --password-stdin or --password-prompt, a password is
    generated and printed once."""
    from cli import formatting
    from cli.auth import read_password
    from cli.session import current_config, open_client, run_async
    from sdk import User

    password = None
    if password_stdin or password_prompt:
        password = read_password("Password for " + name, from_stdin=password_stdin)

    async def create() -> tuple[User, str | None]:
        async with open_client(current_config()) as client:
            return await client.auth.create_user(name, email, _role(role), password)

    user, generated = run_async(create(), waiting="Creating the user")
    if output is not OutputFormat.TABLE:
        formatting.print_data({"user": user, "password": generated}, output)
        return
    formatting.print_user(user)
    if generated:
        formatting.print_fields([("Password", generated)])
        formatting.notice("The generated password is shown only once: pass it on now.")


with_examples(
    "glia admin add-user alice --email alice@example.com",
    "glia admin add-user ci --role admin --password-stdin < ci-password.txt",
)(add_user)


@admin_app.command("ls-users", cls=GliaCommand)
def ls_users(output: OutputFormat = output_option()) -> None:
    """List the users."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async
    from sdk import User

    async def users() -> list[User]:
        async with open_client(current_config()) as client:
            return list(await client.users.list())

    found = run_async(users(), waiting="Listing users")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
    else:
        formatting.print_users(found)


with_examples("glia admin ls-users", "glia admin ls-users -o json | jq -r '.[].name'")(ls_users)


@admin_app.command("get-user", cls=GliaCommand)
def get_user(name: str = USER, output: OutputFormat = output_option()) -> None:
    """Show a user."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async
    from sdk import User

    async def get() -> User:
        async with open_client(current_config()) as client:
            return await client.users.get(name)

    user = run_async(get(), waiting="Getting the user")
    if output is not OutputFormat.TABLE:
        formatting.print_data(user, output)
    else:
        formatting.print_user(user)


with_examples("glia admin get-user alice -o yaml")(get_user)


@admin_app.command("update-user", cls=GliaCommand)
def update_user(
    name: str = USER,
    email: str | None = typer.Option(
        None, "--email", metavar="EMAIL", help="New email address.", show_default="unchanged"
    ),
    role: str | None = typer.Option(
        None,
        "--role",
        metavar="ROLE",
        help=ROLE_HELP,
        show_default="unchanged",
        autocompletion=complete_from(USER_ROLES),
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Change a user's email or role."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async
    from sdk import BadInput, User

    if email is None and role is None:
        raise BadInput("nothing to change: give --email or --role")
    changes: dict[str, Any] = {}
    if email is not None:
        changes["email"] = email
    if role is not None:
        changes["role"] = _role(role)

    async def update() -> User:
        async with open_client(current_config()) as client:
            return await client.users.update(name, **changes)

    user = run_async(update(), waiting="Updating the user")
    if output is not OutputFormat.TABLE:
        formatting.print_data(user, output)
    else:
        formatting.print_user(user)


with_examples(
    "glia admin update-user alice --role admin", "glia admin update-user bob --email b@example.com"
)(update_user)


@admin_app.command("rm-user", cls=GliaCommand)
def rm_user(
    name: str = USER,
    yes: bool = flag("-y", "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a user; their running jobs are stopped."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    if not yes:
        typer.confirm(f"Delete user {name} and stop their jobs?", abort=True)

    async def delete() -> None:
        async with open_client(current_config()) as client:
            await client.users.delete(name)

    run_async(delete(), waiting="Deleting the user and stopping their jobs")
    formatting.notice(f"Deleted user {name}")


with_examples("glia admin rm-user bob", "glia admin rm-user -y bob")(rm_user)


@admin_app.command("reset-password", cls=GliaCommand)
def reset_password(name: str = USER, output: OutputFormat = output_option()) -> None:
    """Give a user a new generated password, printed once; their old one stops working."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    async def reset() -> str:
        async with open_client(current_config()) as client:
            return str(await client.users.reset_password(name))

    password = run_async(reset(), waiting="Resetting the password")
    if output is not OutputFormat.TABLE:
        formatting.print_data({"name": name, "password": password}, output)
        return
    formatting.print_fields([("User", name), ("Password", password)])
    formatting.notice("The new password is shown only once: pass it on now.")


with_examples("glia admin reset-password bob")(reset_password)


@admin_app.command("rotate-secrets-key", cls=GliaCommand)
def rotate_secrets_key(output: OutputFormat = output_option()) -> None:
    """Re-encrypt every stored secret and imported bucket credential under the server's
    current key, the first of GLIA_SECRETS_KEYS (platform admins). Run it after putting a new
    key in front of the list and restarting every server; then the old key may go."""
    from cli import formatting
    from cli.session import call_client

    rotation = call_client(lambda client: client.secrets.rotate_key(), waiting="Rotating")
    if output is not OutputFormat.TABLE:
        formatting.print_data(rotation, output)
    else:
        formatting.print_fields(
            [
                ("Secrets re-encrypted", rotation.secrets),
                ("Bucket credentials re-encrypted", rotation.bucket_credentials),
                ("Unreadable", ", ".join(rotation.unreadable) or "none"),
            ]
        )
    if rotation.unreadable:
        from cli.errors import EX_DATAERR

        formatting.notice(
            "No configured key opens the values above: add the key they were sealed with "
            "to GLIA_SECRETS_KEYS and rotate again, or set them again."
        )
        raise typer.Exit(EX_DATAERR)


with_examples("glia admin rotate-secrets-key")(rotate_secrets_key)
