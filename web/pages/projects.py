"""One project (`/orgs/<org>/<project>`): its members and their roles, its default role.

Its members see the page; its managers and admins (and the org's admins, and platform admins)
get the controls. What the server refuses shows as its error.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from sdk import BadInput, GliaClient, GliaError, NotFound, OrgRole, ProjectRole
from web.layout import field, page, select
from web.pages.orgs import (
    PROJECT_ROLES,
    field_errors,
    member_form,
    member_rows,
    members_table,
    narrow,
)
from web.session import SessionState

# Who may manage a project's members (besides the org's admins and platform admins).
PROJECT_MANAGERS = (ProjectRole.MANAGER, ProjectRole.ADMIN)
# The member form's choice for "the project's default role".
DEFAULT_ROLE = "default"


def _url_segment(path: str, index: int) -> str:
    """A segment of `/orgs/<org>/<project>`; empty where there is none (compiling the page)."""
    segments = path.strip("/").split("/")
    return segments[index] if len(segments) == 3 else ""


class ProjectState(SessionState):
    """One project's page; the URL ends with its org and its name."""

    found: bool = False
    info: dict[str, str] = {}
    members: list[dict[str, str]] = []
    can_manage: bool = False
    can_admin: bool = False
    errors: dict[str, str] = {}

    @rx.var
    def page_org(self) -> str:
        return _url_segment(self.router.url.path, 1)

    @rx.var
    def page_project(self) -> str:
        return _url_segment(self.router.url.path, 2)

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.found, self.info, self.members, self.errors = False, {}, [], {}
        return await self._load()

    async def _load(self) -> Any:
        page_org, name = self.page_org, self.page_project
        try:
            async with self.client() as client:
                project = await client.projects.get(page_org, name)
                members = await client.projects.members(page_org, name)
                try:
                    org_role = (await client.orgs.get(page_org)).role
                except NotFound:
                    org_role = None
                await self._load_orgs(client)
        except GliaError as error:
            return self.handle(error)
        self.found = True
        self.info = {
            "role": project.role.value if project.role else "none",
            "default_role": project.default_role.value,
        }
        org_admin = self.is_admin or org_role is OrgRole.ADMIN
        self.can_manage = org_admin or project.role in PROJECT_MANAGERS
        self.can_admin = org_admin or project.role is ProjectRole.ADMIN
        self.members = member_rows(members)
        return None

    async def _call(self, action: Any) -> Any:
        self.errors = {}
        try:
            async with self.client() as client:
                await action(client)
        except BadInput as error:
            self.errors = field_errors(error)
            return None if self.errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def add_member(self, form: dict[str, Any]) -> Any:
        user = str(form.get("user") or "").strip()
        role = str(form.get("role") or DEFAULT_ROLE)

        async def action(client: GliaClient) -> None:
            await client.projects.set_member(
                self.page_org, self.page_project, user, None if role == DEFAULT_ROLE else role
            )

        return await self._call(action)

    @rx.event
    async def set_role(self, user: str, role: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.projects.set_member(self.page_org, self.page_project, user, role)

        return await self._call(action)

    @rx.event
    async def remove_member(self, user: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.projects.remove_member(self.page_org, self.page_project, user)

        return await self._call(action)

    @rx.event
    async def set_default_role(self, role: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.projects.update(self.page_org, self.page_project, default_role=role)

        return await self._call(action)


def project() -> rx.Component:
    return page(
        "Project " + ProjectState.page_org + "/" + ProjectState.page_project,
        rx.cond(
            ProjectState.found,
            rx.vstack(
                rx.hstack(
                    rx.text(
                        "Your role: ",
                        rx.text.span(ProjectState.info["role"], id="project-role"),
                        ".",
                        size="2",
                        color_scheme="gray",
                    ),
                    rx.link(
                        "All projects of " + ProjectState.page_org,
                        href="/orgs/" + ProjectState.page_org,
                        size="2",
                    ),
                    spacing="4",
                    align="center",
                    wrap="wrap",
                ),
                narrow(
                    field(
                        "Default role of new members",
                        rx.cond(
                            ProjectState.can_admin,
                            select(
                                PROJECT_ROLES,
                                "Default role",
                                value=ProjectState.info["default_role"],
                                on_change=ProjectState.set_default_role,
                                size="1",
                            ),
                            rx.text(ProjectState.info["default_role"], size="2"),
                        ),
                    ),
                ),
                rx.heading("Members", size="4", margin_top="8px"),
                rx.cond(
                    ProjectState.can_manage,
                    member_form(
                        [DEFAULT_ROLE, *PROJECT_ROLES],
                        DEFAULT_ROLE,
                        ProjectState.errors,
                        ProjectState.add_member,
                        id="project-member-form",
                    ),
                ),
                members_table(
                    ProjectState.members,
                    PROJECT_ROLES,
                    ProjectState.can_manage,
                    ProjectState.set_role,
                    ProjectState.remove_member,
                    id="project-members",
                ),
                spacing="3",
                width="100%",
                max_width="800px",
            ),
        ),
    )
