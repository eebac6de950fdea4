"""``glia admin ...``: administration commands (the server checks the caller is an admin)."""

from __future__ import annotations

import typer

from cli import formatting
from cli.formatting import OutputFormat
from cli.session import current_config, open_client, run_async
from sdk import User, UserRole

admin_app = typer.Typer(help="Administration (admins only).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")


@admin_app.command("add-user")
def add_user(
    name: str = typer.Argument(..., help="The new user's name."),
    email: str | None = typer.Option(None, "--email"),
    role: UserRole = typer.Option(UserRole.USER, "--role"),
    password: str | None = typer.Option(
        None, "--password", help="[default: generate one and print it once]"
    ),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "-o", "--output"),
) -> None:
    """Create a user; prints the generated password when none was given."""
    config = current_config()

    async def create() -> tuple[User, str | None]:
        async with open_client(config) as client:
            return await client.auth.create_user(name, email, role, password)

    user, generated = run_async(create())
    if output is OutputFormat.JSON:
        formatting.print_json({"user": user, "password": generated})
        return
    rows: list[tuple[str, object]] = [
        ("ID", user.id),
        ("Name", user.name),
        ("Email", user.email),
        ("Role", user.role.value),
    ]
    if generated:
        rows.append(("Password", generated))
    formatting.print_fields(rows)
    if generated:
        formatting.notice("The generated password is shown only once: pass it on now.")
