"""Sharing (`/sharing`): what the signed-in user may do and through whom, what they shared
(with revocation), a form to share, the roles they hold, and the roles of their own: create,
delete, add and remove members.

A grant on a role's URI (`role://user/alice/team`) makes the grantee a member of the role.
The server decides who may share what: its warnings (a URI that names nothing yet) and its
errors show as it says them.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from sdk import Action, BadInput, GliaError, GrantEntry
from web.layout import field, page, select
from web.pages.orgs import confirm_button, field_errors, narrow, table
from web.session import SessionState

ACTIONS = [action.label for action in Action]
# A role's members hold it with this action; `manage` also lets them change its members.
MEMBER_ACTIONS = ["read", "manage"]
CUSTOM_ROLES = "role://user/"


def subject_label(subject: str, me: str) -> str:
    """``user:bob`` -> ``bob``; the signed-in user -> ``you``; ``role:x`` -> ``role://x``."""
    if subject == f"user:{me}":
        return "you"
    if subject.startswith("role:"):
        return "role://" + subject.removeprefix("role:")
    return subject.removeprefix("user:")


def job_link(uri: str) -> str:
    """The page of the job a URI names (``job://CLUSTER/ORG/PROJECT/ID`` -> ``/jobs/ID``),
    or ``""`` for any other URI."""
    scheme, _, rest = uri.partition("://")
    segments = rest.split("/")
    return f"/jobs/{segments[3]}" if scheme == "job" and len(segments) == 4 else ""


def grant_rows(grants: list[GrantEntry], me: str) -> list[dict[str, str]]:
    return [
        {
            "uri": entry.uri,
            "action": entry.action,
            "subject": entry.subject,
            "who": subject_label(entry.subject, me),
            "link": job_link(entry.uri),
        }
        for entry in grants
    ]


def member_list(members: list[GrantEntry], me: str) -> str:
    """``bob, carol (manages)``: a role's direct members as the table shows them."""
    names = [
        subject_label(m.subject, me) + (" (manages)" if m.action == Action.MANAGE.label else "")
        for m in members
    ]
    return ", ".join(names) or "-"


async def grant(
    state: SessionState, uri: str, subject: str, action: str
) -> tuple[list[str], dict[str, str]]:
    """Grant through ``state``'s session; returns the server's warnings and, for a BadInput
    that names form fields, the fields' errors. Any other error shows on the page (raised
    as `GliaError` for the caller to hand to `SessionState.handle`)."""
    async with state.client() as client:
        try:
            _entry, warnings = await client.acl.grant(uri, subject, action)
        except BadInput as error:
            errors = field_errors(error)
            if not errors:
                raise
            return [], errors
    return warnings, {}


class SharingState(SessionState):
    permission_rows: list[dict[str, str]] = []
    shared_rows: list[dict[str, str]] = []
    held_roles: list[dict[str, str]] = []
    # The custom roles the user manages: their URI and their short name (`team`, or
    # `user/bob/team` for one of another user's that the user was made a manager of).
    managed_roles: list[dict[str, str]] = []
    managed_role_uris: list[str] = []
    share_errors: dict[str, str] = {}
    role_errors: dict[str, str] = {}
    member_errors: dict[str, str] = {}
    warnings: list[str] = []
    notice: str = ""
    # The role-members form is controlled: its two buttons (add, remove) read these.
    member_role: str = ""
    member_name: str = ""
    member_action: str = "read"

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.share_errors, self.role_errors, self.member_errors = {}, {}, {}
        self.warnings, self.notice = [], ""
        self.permission_rows, self.shared_rows, self.held_roles = [], [], []
        self.managed_roles, self.managed_role_uris = [], []
        return await self._load()

    async def _load(self) -> Any:
        try:
            async with self.client() as client:
                permissions = await client.acl.permissions()
                shared = await client.acl.shared()
                roles = await client.acl.roles()
                managed = sorted(
                    {
                        entry.uri
                        for entry in permissions
                        if entry.uri.startswith(CUSTOM_ROLES)
                        and entry.action == Action.MANAGE.label
                    }
                )
                members = {uri: await client.acl.role_members(uri) for uri in managed}
        except GliaError as error:
            return self.handle(error)
        me = self.user_name
        self.permission_rows = grant_rows(permissions, me)
        self.shared_rows = grant_rows(shared, me)
        self.held_roles = [
            {"name": role.name, "uri": role.uri, "built_in": "yes" if role.built_in else ""}
            for role in roles
        ]
        own = f"{CUSTOM_ROLES}{me}/"
        self.managed_roles = [
            {
                "uri": uri,
                "name": uri.removeprefix(own) if uri.startswith(own) else uri[len("role://") :],
                "members": member_list(members[uri], me),
            }
            for uri in managed
        ]
        self.managed_role_uris = managed
        if self.member_role not in managed:
            self.member_role = managed[0] if managed else ""
        return None

    @rx.event
    async def share(self, form: dict[str, Any]) -> Any:
        self.share_errors, self.warnings, self.notice = {}, [], ""
        uri = str(form.get("uri") or "").strip()
        subject = str(form.get("subject") or "").strip()
        action = str(form.get("action") or Action.READ.label)
        try:
            self.warnings, self.share_errors = await grant(self, uri, subject, action)
        except GliaError as error:
            return self.handle(error)
        if self.share_errors:
            return None
        self.notice = f"Shared {uri} with {subject} ({action})."
        return await self._load()

    @rx.event
    async def revoke(self, uri: str, subject: str) -> Any:
        self.warnings, self.notice = [], ""
        try:
            async with self.client() as client:
                await client.acl.revoke(uri, subject)
        except GliaError as error:
            return self.handle(error)
        self.notice = f"Revoked what {subject_label(subject, self.user_name)} held on {uri}."
        return await self._load()

    @rx.event
    async def create_role(self, form: dict[str, Any]) -> Any:
        self.role_errors, self.notice = {}, ""
        name = str(form.get("name") or "").strip()
        try:
            async with self.client() as client:
                role = await client.acl.create_role(name)
        except BadInput as error:
            self.role_errors = field_errors(error)
            return None if self.role_errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        self.notice = f"Created role {role.uri}."
        self.member_role = role.uri
        return await self._load()

    @rx.event
    async def delete_role(self, uri: str) -> Any:
        self.notice = ""
        try:
            async with self.client() as client:
                role = await client.acl.delete_role(uri)
        except GliaError as error:
            return self.handle(error)
        self.notice = f"Deleted role {role.uri}."
        return await self._load()

    @rx.event
    def set_member_role(self, uri: str) -> None:
        self.member_role = uri

    @rx.event
    def set_member_name(self, name: str) -> None:
        self.member_name = name

    @rx.event
    def set_member_action(self, action: str) -> None:
        self.member_action = action

    @rx.event
    async def add_member(self) -> Any:
        """A grant on the role's URI: the grantee becomes a member (with `manage`, one who
        may change its members too)."""
        self.member_errors, self.warnings, self.notice = {}, [], ""
        role, member = self.member_role, self.member_name.strip()
        try:
            self.warnings, self.member_errors = await grant(self, role, member, self.member_action)
        except GliaError as error:
            return self.handle(error)
        if self.member_errors:
            return None
        self.notice, self.member_name = f"Added {member} to {role}.", ""
        return await self._load() or rx.set_value("role-member", "")

    @rx.event
    async def remove_member(self) -> Any:
        self.member_errors, self.warnings, self.notice = {}, [], ""
        role, member = self.member_role, self.member_name.strip()
        try:
            async with self.client() as client:
                await client.acl.revoke(role, member)
        except BadInput as error:
            self.member_errors = field_errors(error)
            return None if self.member_errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        self.notice, self.member_name = f"Removed {member} from {role}.", ""
        return await self._load() or rx.set_value("role-member", "")


# -- pieces the job page shares ---------------------------------------------------------------


def warnings_callout(warnings: Any) -> rx.Component:
    """The server's warnings about a grant it made (a URI that names nothing yet)."""
    return rx.cond(
        warnings,
        rx.callout.root(
            rx.callout.icon(rx.icon("info")),
            rx.vstack(rx.foreach(warnings, lambda warning: rx.callout.text(warning))),
            color_scheme="amber",
            id="share-warnings",
        ),
    )


def notice_text(notice: Any) -> rx.Component:
    return rx.cond(notice, rx.text(notice, size="2", color_scheme="green", role="status"))


def action_select(name: str, label: str = "Action", items: list[str] = ACTIONS) -> rx.Component:
    return select(items, label, name=name, default_value=Action.READ.label)


# -- the page ---------------------------------------------------------------------------------


def _uri_cell(row: Any) -> rx.Component:
    return rx.table.cell(
        rx.cond(row["link"] != "", rx.link(row["uri"], href=row["link"]), rx.code(row["uri"]))
    )


def _permission_row(row: Any) -> rx.Component:
    return rx.table.row(
        _uri_cell(row),
        rx.table.cell(row["action"]),
        rx.table.cell(row["who"]),
    )


def _shared_row(row: Any) -> rx.Component:
    return rx.table.row(
        _uri_cell(row),
        rx.table.cell(row["who"]),
        rx.table.cell(row["action"]),
        rx.table.cell(
            rx.button(
                "Revoke",
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=SharingState.revoke(row["uri"], row["subject"]),
                aria_label="Revoke " + row["who"] + " on " + row["uri"],
            )
        ),
    )


def _held_role_row(role: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(role["uri"])),
        rx.table.cell(rx.cond(role["built_in"] != "", "built in", "custom")),
    )


def _managed_role_row(role: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(role["name"]),
        rx.table.cell(rx.code(role["uri"])),
        rx.table.cell(role["members"], class_name="role-members"),
        rx.table.cell(
            confirm_button(
                "Delete",
                "Delete role " + role["uri"] + "?",
                "Its members lose it, and what it was granted goes with it.",
                SharingState.delete_role(role["uri"]),
            )
        ),
        id="role-" + role["name"],
    )


def _share_form() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.box(
                field(
                    "URI",
                    rx.input(
                        name="uri",
                        id="share-uri",
                        placeholder="job://default/acme/vision/job-…",
                    ),
                    SharingState.share_errors["uri"],
                ),
                width="360px",
            ),
            narrow(
                field(
                    "User or role",
                    rx.input(name="subject", id="share-subject", placeholder="bob"),
                    SharingState.share_errors["subject"],
                )
            ),
            narrow(field("Action", action_select("action"), SharingState.share_errors["action"])),
            rx.button("Share", type="submit"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=SharingState.share,
        reset_on_submit=False,
        id="share-form",
    )


def _create_role_form() -> rx.Component:
    return rx.form(
        rx.flex(
            narrow(
                field(
                    "Role name",
                    rx.input(name="name", id="role-name", placeholder="team"),
                    SharingState.role_errors["name"],
                )
            ),
            rx.button("Create role", type="submit"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=SharingState.create_role,
        reset_on_submit=True,
        id="create-role-form",
    )


def _members_form() -> rx.Component:
    return rx.flex(
        rx.box(
            field(
                "Role",
                select(
                    SharingState.managed_role_uris,
                    "Role",
                    value=SharingState.member_role,
                    on_change=SharingState.set_member_role,
                ),
            ),
            width="300px",
        ),
        narrow(
            field(
                "Member",
                # Uncontrolled (a controlled input costs an npm package): each change goes to
                # the state, and a done change empties the field.
                rx.input(
                    on_change=SharingState.set_member_name,
                    id="role-member",
                    placeholder="bob",
                ),
                SharingState.member_errors["subject"],
                hint="a user, or a role: role://user/…",
            )
        ),
        narrow(
            field(
                "As",
                select(
                    MEMBER_ACTIONS,
                    "As",
                    value=SharingState.member_action,
                    on_change=SharingState.set_member_action,
                ),
                hint="manage: may change the members",
            )
        ),
        rx.button("Add member", on_click=SharingState.add_member),
        rx.button(
            "Remove member", on_click=SharingState.remove_member, variant="soft", color_scheme="red"
        ),
        spacing="3",
        wrap="wrap",
        align="end",
        id="role-members-form",
    )


def sharing() -> rx.Component:
    return page(
        "Sharing",
        rx.vstack(
            notice_text(SharingState.notice),
            warnings_callout(SharingState.warnings),
            rx.heading("Share", size="4"),
            rx.text(
                "Let a user or a role read, write or manage a resource and everything beneath "
                "it. You may share what you manage.",
                size="2",
                color_scheme="gray",
            ),
            _share_form(),
            rx.heading("What you shared", size="4", margin_top="16px"),
            table(
                ("URI", "With", "Action", ""),
                rx.table.body(rx.foreach(SharingState.shared_rows, _shared_row)),
                id="shared",
            ),
            rx.heading("Your roles", size="4", margin_top="16px"),
            rx.text(
                "Roles of your own: grant things to one, and its members may do them.",
                size="2",
                color_scheme="gray",
            ),
            _create_role_form(),
            table(
                ("Role", "URI", "Members", ""),
                rx.table.body(rx.foreach(SharingState.managed_roles, _managed_role_row)),
                id="managed-roles",
            ),
            rx.cond(SharingState.managed_role_uris, _members_form()),
            rx.heading("Roles you hold", size="4", margin_top="16px"),
            table(
                ("Role", "Kind"),
                rx.table.body(rx.foreach(SharingState.held_roles, _held_role_row)),
                id="held-roles",
            ),
            rx.heading("What you may do", size="4", margin_top="16px"),
            table(
                ("URI", "Action", "Through"),
                rx.table.body(rx.foreach(SharingState.permission_rows, _permission_row)),
                id="permissions",
            ),
            spacing="3",
            width="100%",
        ),
    )
