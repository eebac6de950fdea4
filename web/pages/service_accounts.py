"""Service accounts (`/service-accounts`): the user's (every one, for admins), a form to create
one, and deletion, which ends its tokens at once.

A new account's token is shown once, in a copyable field: the page keeps it only while it is
shown, and forgets it when the user dismisses it, leaves the page or opens it again. A reload
or a socket that connects again (which run the page's load again) keep it.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from sdk import BadInput, GliaError, ProjectRole
from web.layout import field, page, relative_time, select
from web.pages.orgs import confirm_button, field_errors, narrow, table
from web.session import SessionState

# The role field's choice for "the project's default role".
DEFAULT_ROLE = "default"
ROLES = [DEFAULT_ROLE, *(role.value for role in ProjectRole)]


class ServiceAccountsState(SessionState):
    accounts: list[dict[str, str]] = []
    errors: dict[str, str] = {}
    # The token of the account just created, and its name: shown once, then forgotten.
    new_token: str = ""
    new_token_for: str = ""

    @rx.event
    async def open(self) -> Any:
        if not self.opened_again():
            self.forget_token()
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.errors, self.accounts = {}, []
        return await self._load()

    async def _load(self) -> Any:
        try:
            async with self.client() as client:
                accounts = await client.service_accounts.list()
        except GliaError as error:
            return self.handle(error)
        self.accounts = [
            {
                "name": account.name,
                "key": account.name.replace("/", "-"),
                "owner": account.owner,
                "project": f"{account.org}/{account.project}" if account.project else "",
                "created": account.created_at.isoformat(),
            }
            for account in accounts
        ]
        return None

    @rx.event
    def forget_token(self) -> None:
        self.new_token, self.new_token_for = "", ""

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.errors = {}
        self.forget_token()
        name = str(form.get("name") or "").strip()
        org = str(form.get("org") or "").strip() or None
        project = str(form.get("project") or "").strip() or None
        role = str(form.get("role") or DEFAULT_ROLE)
        try:
            async with self.client() as client:
                account, token = await client.service_accounts.create(
                    name, project=project, org=org, role=None if role == DEFAULT_ROLE else role
                )
        except BadInput as error:
            self.errors = field_errors(error)
            return None if self.errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        self.new_token, self.new_token_for = token, account.name
        return await self._load()

    @rx.event
    async def delete(self, name: str) -> Any:
        self.forget_token()
        try:
            async with self.client() as client:
                await client.service_accounts.delete(name)
        except GliaError as error:
            return self.handle(error)
        return await self._load()


def _token_callout() -> rx.Component:
    return rx.cond(
        ServiceAccountsState.new_token,
        rx.callout.root(
            rx.callout.icon(rx.icon("key_round")),
            rx.vstack(
                rx.callout.text(
                    "The token of ",
                    rx.text.strong(ServiceAccountsState.new_token_for),
                    ", shown once: copy it now. Glia keeps no copy it could show again; ",
                    "if it is lost, delete the account and create another.",
                ),
                rx.hstack(
                    rx.input(
                        value=ServiceAccountsState.new_token,
                        read_only=True,
                        id="service-account-token",
                        aria_label="Token",
                        font_family="var(--code-font-family, monospace)",
                        width="100%",
                    ),
                    rx.button(
                        rx.icon("copy", size=14),
                        "Copy",
                        on_click=rx.set_clipboard(ServiceAccountsState.new_token),
                        variant="soft",
                    ),
                    rx.button("Done", on_click=ServiceAccountsState.forget_token, variant="soft"),
                    width="100%",
                    align="center",
                ),
                spacing="2",
                width="100%",
            ),
            color_scheme="green",
            id="new-token",
            # Leaving the page (the header's links are client-side) forgets the token too.
            on_unmount=ServiceAccountsState.forget_token,
            width="100%",
        ),
    )


def _create_form() -> rx.Component:
    errors = ServiceAccountsState.errors
    return rx.form(
        rx.flex(
            narrow(field("Name", rx.input(name="name", id="sa-name"), errors["name"])),
            narrow(
                field(
                    "Org",
                    rx.input(name="org", id="sa-org", placeholder="your personal org"),
                    errors["org"],
                )
            ),
            narrow(
                field(
                    "Project",
                    rx.input(name="project", id="sa-project", placeholder="none"),
                    errors["project"],
                )
            ),
            narrow(
                field(
                    "Role in the project",
                    select(ROLES, "Role in the project", name="role", default_value=DEFAULT_ROLE),
                    errors["role"],
                )
            ),
            rx.button("Create service account", type="submit"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=ServiceAccountsState.create,
        reset_on_submit=True,
        id="service-account-form",
    )


def _account_row(account: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(account["name"]),
        rx.table.cell(rx.cond(account["project"] != "", account["project"], "—")),
        rx.table.cell(relative_time(account["created"])),
        rx.table.cell(
            confirm_button(
                "Delete",
                "Delete service account " + account["name"] + "?",
                "Its tokens stop working at once.",
                ServiceAccountsState.delete(account["name"]),
            )
        ),
        id="service-account-" + account["key"],
    )


def service_accounts() -> rx.Component:
    return page(
        "Service accounts",
        rx.vstack(
            rx.text(
                "A service account signs in with a token and may do what it was given: with a "
                "project, what its role there allows; more through sharing (its name, "
                "OWNER/NAME, is a user to share with).",
                size="2",
                color_scheme="gray",
            ),
            _token_callout(),
            _create_form(),
            table(
                ("Name", "Project", "Created", ""),
                rx.table.body(rx.foreach(ServiceAccountsState.accounts, _account_row)),
                id="service-accounts",
            ),
            spacing="3",
            width="100%",
        ),
    )
