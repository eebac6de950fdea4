"""Orgs (`/orgs`) and one org (`/orgs/<org>`): its clusters, members and projects.

Everyone sees the orgs they belong to (platform admins, every org); the controls show to
those who may use them (platform admins create and delete orgs and give them clusters; an
org's managers and admins manage its members and projects). The server decides: what it
refuses shows as its error.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from sdk import BadInput, GliaClient, GliaError, Member, OrgRole, ProjectRole
from web.layout import field, page, relative_time, select
from web.session import SessionState

ORG_ROLES = [role.value for role in OrgRole]
PROJECT_ROLES = [role.value for role in ProjectRole]
# Who may manage an org's members and create its projects (besides platform admins).
ORG_MANAGERS = (OrgRole.MANAGER, OrgRole.ADMIN)


def field_errors(error: BadInput) -> dict[str, str]:
    """A BadInput's fields by their first segment (`name`, `clusters`), as forms show them."""
    return {name.split(".")[0]: message for name, message in error.fields.items()}


def member_rows(members: list[Member]) -> list[dict[str, str]]:
    return [{"user": member.user, "role": member.role} for member in members]


class OrgsState(SessionState):
    org_rows: list[dict[str, str]] = []
    # Each org's clusters, as (org, cluster) pairs: one list for the page to filter.
    org_clusters: list[dict[str, str]] = []
    errors: dict[str, str] = {}

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.errors = {}
        return await self._load()

    async def _load(self) -> Any:
        try:
            async with self.client() as client:
                orgs = await client.orgs.list()
                await self._load_orgs(client)  # the header's switchers too
        except GliaError as error:
            return self.handle(error)
        self.org_rows = [
            {
                "name": org.name,
                "personal": "yes" if org.personal else "",
                "clusters": ", ".join(org.clusters),
                "role": org.role.value if org.role else "",
                "created": org.created_at.isoformat(),
            }
            for org in orgs
        ]
        self.org_clusters = [
            {"org": org.name, "cluster": cluster} for org in orgs for cluster in org.clusters
        ]
        return None

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.errors = {}
        name = str(form.get("name") or "").strip()
        clusters = [c.strip() for c in str(form.get("clusters") or "").split(",") if c.strip()]
        try:
            async with self.client() as client:
                await client.orgs.create(name, clusters)
        except BadInput as error:
            self.errors = field_errors(error)
            return None if self.errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def delete(self, name: str) -> Any:
        try:
            async with self.client() as client:
                await client.orgs.delete(name)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def add_cluster(self, org: str, cluster: str) -> Any:
        try:
            async with self.client() as client:
                await client.orgs.add_cluster(org, cluster)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def remove_cluster(self, org: str, cluster: str) -> Any:
        try:
            async with self.client() as client:
                await client.orgs.remove_cluster(org, cluster)
        except GliaError as error:
            return self.handle(error)
        return await self._load()


class OrgState(SessionState):
    """One org's page; its name is the last segment of the URL."""

    found: bool = False
    info: dict[str, str] = {}
    members: list[dict[str, str]] = []
    project_rows: list[dict[str, str]] = []
    can_manage: bool = False
    can_admin: bool = False
    member_errors: dict[str, str] = {}
    project_errors: dict[str, str] = {}

    @rx.var
    def page_org(self) -> str:
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.found, self.info, self.members, self.project_rows = False, {}, [], []
        self.member_errors, self.project_errors = {}, {}
        return await self._load()

    async def _load(self) -> Any:
        name = self.page_org
        try:
            async with self.client() as client:
                org = await client.orgs.get(name)
                members = await client.orgs.members(name)
                projects = await client.projects.list(name)
                await self._load_orgs(client)
        except GliaError as error:
            return self.handle(error)
        self.found = True
        self.info = {
            "name": org.name,
            "personal": "yes" if org.personal else "",
            "clusters": ", ".join(org.clusters) or "none",
            "role": org.role.value if org.role else "none",
        }
        self.can_manage = self.is_admin or org.role in ORG_MANAGERS
        self.can_admin = self.is_admin or org.role is OrgRole.ADMIN
        self.members = member_rows(members)
        self.project_rows = [
            {
                "name": project.name,
                "default_role": project.default_role.value,
                "role": project.role.value if project.role else "",
                "created": project.created_at.isoformat(),
            }
            for project in projects
        ]
        return None

    async def _call(self, errors: str, action: Any) -> Any:
        """Run ``action(client)``; a BadInput's fields go to the form ``errors`` names, any
        other error to the page; then the page again."""
        setattr(self, errors, {})
        try:
            async with self.client() as client:
                await action(client)
        except BadInput as error:
            setattr(self, errors, field_errors(error))
            if not getattr(self, errors):
                return self.handle(error)
            return None
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def add_member(self, form: dict[str, Any]) -> Any:
        user = str(form.get("user") or "").strip()
        role = str(form.get("role") or OrgRole.USER.value)

        async def action(client: GliaClient) -> None:
            await client.orgs.set_member(self.page_org, user, role)

        return await self._call("member_errors", action)

    @rx.event
    async def set_role(self, user: str, role: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.orgs.set_member(self.page_org, user, role)

        return await self._call("member_errors", action)

    @rx.event
    async def remove_member(self, user: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.orgs.remove_member(self.page_org, user)

        return await self._call("member_errors", action)

    @rx.event
    async def create_project(self, form: dict[str, Any]) -> Any:
        name = str(form.get("name") or "").strip()
        default_role = str(form.get("default_role") or ProjectRole.WRITER.value)

        async def action(client: GliaClient) -> None:
            await client.projects.create(self.page_org, name, default_role)

        return await self._call("project_errors", action)

    @rx.event
    async def delete_project(self, name: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.projects.delete(self.page_org, name)

        return await self._call("project_errors", action)


# -- pieces the org and project pages share -------------------------------------------------


def confirm_button(label: str, title: Any, description: str, on_confirm: Any) -> rx.Component:
    """A red button that asks before it does anything."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button(label, size="1", variant="soft", color_scheme="red")),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(description),
            rx.flex(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft")),
                rx.alert_dialog.action(rx.button(label, color_scheme="red", on_click=on_confirm)),
                spacing="3",
                justify="end",
            ),
        ),
    )


def table(headers: tuple[str, ...], body: rx.Component, **props: Any) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            body,
            size="1",
            variant="surface",
            **props,
        ),
        overflow_x="auto",
        width="100%",
    )


def members_table(
    members: Any,
    roles: list[str],
    can_manage: Any,
    set_role: Any,
    remove: Any,
    **props: Any,
) -> rx.Component:
    """Members and their roles; for those who may manage them, a role switch and removal."""

    def row(member: Any) -> rx.Component:
        return rx.table.row(
            rx.table.cell(member["user"]),
            rx.table.cell(
                rx.cond(
                    can_manage,
                    select(
                        roles,
                        "Role of " + member["user"],
                        value=member["role"],
                        on_change=lambda role: set_role(member["user"], role),
                        size="1",
                    ),
                    rx.text(member["role"]),
                )
            ),
            rx.table.cell(
                rx.cond(
                    can_manage,
                    rx.button(
                        "Remove",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=remove(member["user"]),
                        aria_label="Remove " + member["user"],
                    ),
                )
            ),
            id="member-" + member["user"],
        )

    return table(("Member", "Role", ""), rx.table.body(rx.foreach(members, row)), **props)


def narrow(control: rx.Component) -> rx.Component:
    """A form field beside others on one line (wrapping on a narrow window)."""
    return rx.box(control, width="220px")


def member_form(
    roles: list[str], default: str, errors: Any, on_submit: Any, **props: Any
) -> rx.Component:
    return rx.form(
        rx.flex(
            narrow(field("User", rx.input(name="user", id="new-member"), errors["user"])),
            narrow(
                field(
                    "Role",
                    select(roles, "Role", name="role", default_value=default),
                    errors["role"],
                )
            ),
            rx.button("Add member", type="submit"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=on_submit,
        reset_on_submit=True,
        **props,
    )


# -- the pages --------------------------------------------------------------------------------


def _cluster_badge(pair: dict[str, str], org: Any) -> rx.Component:
    return rx.cond(
        pair["org"] == org,
        rx.badge(
            pair["cluster"],
            rx.cond(
                SessionState.is_admin,
                rx.icon_button(
                    rx.icon("x", size=12),
                    size="1",
                    variant="ghost",
                    on_click=OrgsState.remove_cluster(pair["org"], pair["cluster"]),
                    aria_label="Remove cluster " + pair["cluster"] + " from " + pair["org"],
                ),
            ),
            variant="soft",
        ),
    )


def _org_row(org: dict[str, str]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(org["name"], href="/orgs/" + org["name"])),
        rx.table.cell(org["role"]),
        rx.table.cell(
            rx.hstack(
                rx.foreach(OrgsState.org_clusters, lambda pair: _cluster_badge(pair, org["name"])),
                rx.cond(
                    SessionState.is_admin,
                    select(
                        SessionState.clusters,
                        "Add a cluster to " + org["name"],
                        placeholder="Add a cluster",
                        value="",
                        on_change=lambda cluster: OrgsState.add_cluster(org["name"], cluster),
                        size="1",
                    ),
                ),
                spacing="2",
                wrap="wrap",
                align="center",
            )
        ),
        rx.table.cell(relative_time(org["created"])),
        rx.table.cell(
            rx.cond(
                SessionState.is_admin & (org["personal"] == ""),
                confirm_button(
                    "Delete",
                    "Delete org " + org["name"] + "?",
                    "Only an org with no projects left can be deleted.",
                    OrgsState.delete(org["name"]),
                ),
            )
        ),
        id="org-" + org["name"],
    )


def _create_org_form() -> rx.Component:
    return rx.form(
        rx.flex(
            narrow(field("Name", rx.input(name="name", id="org-name"), OrgsState.errors["name"])),
            narrow(
                field(
                    "Clusters",
                    rx.input(name="clusters", id="org-clusters", placeholder="default"),
                    OrgsState.errors["clusters"],
                )
            ),
            rx.button("Create org", type="submit"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=OrgsState.create,
        reset_on_submit=True,
    )


def orgs() -> rx.Component:
    return page(
        "Orgs",
        rx.vstack(
            rx.cond(SessionState.is_admin, _create_org_form()),
            table(
                ("Org", "Your role", "Clusters", "Created", ""),
                rx.table.body(rx.foreach(OrgsState.org_rows, _org_row)),
                id="orgs",
            ),
            spacing="3",
            width="100%",
        ),
    )


def _project_row(project: dict[str, str]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.link(project["name"], href="/orgs/" + OrgState.page_org + "/" + project["name"])
        ),
        rx.table.cell(project["role"]),
        rx.table.cell(project["default_role"]),
        rx.table.cell(relative_time(project["created"])),
        rx.table.cell(
            rx.cond(
                OrgState.can_admin | (project["role"] == "admin"),
                confirm_button(
                    "Delete",
                    "Delete project " + project["name"] + "?",
                    "Only a project with no unfinished job can be deleted.",
                    OrgState.delete_project(project["name"]),
                ),
            )
        ),
        id="project-" + project["name"],
    )


def _create_project_form() -> rx.Component:
    return rx.form(
        rx.flex(
            narrow(
                field(
                    "Project name",
                    rx.input(name="name", id="project-name"),
                    OrgState.project_errors["name"],
                )
            ),
            narrow(
                field(
                    "Default role",
                    select(
                        PROJECT_ROLES,
                        "Default role",
                        name="default_role",
                        default_value=ProjectRole.WRITER.value,
                    ),
                    OrgState.project_errors["defaultRole"],
                )
            ),
            rx.button("Create project", type="submit"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=OrgState.create_project,
        reset_on_submit=True,
    )


def org() -> rx.Component:
    return page(
        "Org " + OrgState.page_org,
        rx.cond(
            OrgState.found,
            rx.vstack(
                rx.text(
                    "Clusters: ",
                    OrgState.info["clusters"],
                    ". Your role: ",
                    rx.text.span(OrgState.info["role"], id="org-role"),
                    ".",
                    size="2",
                    color_scheme="gray",
                ),
                rx.heading("Members", size="4"),
                rx.cond(
                    OrgState.can_manage,
                    member_form(
                        ORG_ROLES,
                        OrgRole.USER.value,
                        OrgState.member_errors,
                        OrgState.add_member,
                        id="org-member-form",
                    ),
                ),
                members_table(
                    OrgState.members,
                    ORG_ROLES,
                    OrgState.can_manage,
                    OrgState.set_role,
                    OrgState.remove_member,
                    id="org-members",
                ),
                rx.heading("Projects", size="4", margin_top="16px"),
                rx.cond(OrgState.can_manage, _create_project_form()),
                table(
                    ("Project", "Your role", "Default role", "Created", ""),
                    rx.table.body(rx.foreach(OrgState.project_rows, _project_row)),
                    id="org-projects",
                ),
                spacing="3",
                width="100%",
            ),
        ),
    )
