"""Admin pages (admins only, at the URL as in the navigation): users, and the chosen cluster's
presets and users (orgs and projects have their own pages, `web.pages.orgs`)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from sdk import BadInput, ClusterRole, GliaClient, GliaError, UserRole
from web.layout import field, page, relative_time
from web.pages.orgs import field_errors, member_form, member_rows, members_table
from web.session import SessionState, quota_summary

CLUSTER_ROLES = [role.value for role in ClusterRole]


class AdminState(SessionState):
    users: list[dict[str, str]] = []
    presets: list[dict[str, str]] = []
    cluster_users: list[dict[str, str]] = []
    cluster_user_errors: dict[str, str] = {}
    preset_errors: dict[str, str] = {}
    new_password: str = ""
    new_password_for: str = ""
    errors: dict[str, str] = {}
    refused: bool = False
    quota_errors: dict[str, str] = {}
    # The level last set or credited, as the server answered it.
    quota_result: str = ""

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.new_password, self.new_password_for, self.errors = "", "", {}
        self.refused = not self.is_admin
        if self.refused:
            return None
        return await self._load()

    async def _load(self) -> Any:
        try:
            async with self.client() as client:
                users = await client.users.list()
                cluster = await client.clusters.get(self.cluster)
                cluster_users = await client.clusters.users(self.cluster)
        except GliaError as error:
            return self.handle(error)
        self.cluster_users = member_rows(cluster_users)
        self.users = [
            {
                "name": u.name,
                "email": u.email or "",
                "role": u.role.value,
                "created": u.created_at.isoformat(),
            }
            for u in users
        ]
        self.presets = [
            {
                "name": p.name,
                "cpu": f"{p.resources.cpu:g}",
                "memory": f"{p.resources.memory_mb} MiB",
                "gpu": str(p.resources.gpu)
                + (f" × {p.resources.gpu_model}" if p.resources.gpu_model else ""),
                "pids": str(p.resources.pids_limit),
                "credits": f"{p.credits_per_hour:g}",
                "flags": ", ".join(
                    word
                    for word, on in (
                        ("preemptible", p.preemptible),
                        ("no queue", not p.scheduler_enabled),
                    )
                    if on
                ),
                "available": "?" if p.available is None else str(p.available),
            }
            for p in cluster.presets
        ]
        return None

    @rx.event
    async def switched(self) -> Any:
        """Another cluster chosen in the header: its presets and users."""
        return None if self.refused else await self._load()

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.errors, self.new_password = {}, ""
        name = str(form.get("name") or "").strip()
        try:
            async with self.client() as client:
                user, password = await client.auth.create_user(
                    name,
                    email=str(form.get("email") or "").strip() or None,
                    role=str(form.get("role") or "user"),
                )
        except BadInput as error:
            self.errors = {k.split(".")[0]: v for k, v in error.fields.items()}
            return None if self.errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        self.new_password, self.new_password_for = password or "", user.name
        return await self._load()

    @rx.event
    async def set_role(self, name: str, role: str) -> Any:
        try:
            async with self.client() as client:
                await client.users.update(name, role=UserRole(role))
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def reset_password(self, name: str) -> Any:
        try:
            async with self.client() as client:
                self.new_password = await client.users.reset_password(name)
        except GliaError as error:
            return self.handle(error)
        self.new_password_for = name
        return None

    @rx.event
    async def remove(self, name: str) -> Any:
        try:
            async with self.client() as client:
                await client.users.delete(name)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    async def _cluster_user_call(self, action: Any) -> Any:
        self.cluster_user_errors = {}
        try:
            async with self.client() as client:
                await action(client)
        except BadInput as error:
            self.cluster_user_errors = field_errors(error)
            return None if self.cluster_user_errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def save_preset(self, form: dict[str, Any]) -> Any:
        """Add the preset, or set every field of the one of that name."""
        self.preset_errors = {}

        def number(key: str, default: str = "0") -> str:
            return str(form.get(key) or default).strip()

        name = str(form.get("name") or "").strip()
        values = {
            "cpu": number("cpu"),
            "memory_mb": number("memory_mb"),
            "gpu": number("gpu"),
            "gpu_model": str(form.get("gpu_model") or "").strip() or None,
            "credits_per_hour": number("credits_per_hour"),
            "preemptible": bool(form.get("preemptible")),
            "scheduler_enabled": not form.get("no_queue"),
        }
        try:
            async with self.client() as client:
                if any(p["name"] == name for p in self.presets):
                    await client.clusters.update_preset(self.cluster, name, **values)
                else:
                    await client.clusters.add_preset(self.cluster, name, **values)
        except BadInput as error:
            self.preset_errors = field_errors(error)
            return None if self.preset_errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def remove_preset(self, name: str) -> Any:
        try:
            async with self.client() as client:
                await client.clusters.remove_preset(self.cluster, name)
        except GliaError as error:
            return self.handle(error)
        return await self._load()

    @rx.event
    async def add_cluster_user(self, form: dict[str, Any]) -> Any:
        user = str(form.get("user") or "").strip()
        role = str(form.get("role") or ClusterRole.USER.value)

        async def action(client: GliaClient) -> None:
            await client.clusters.set_user(self.cluster, user, role)

        return await self._cluster_user_call(action)

    @rx.event
    async def set_cluster_role(self, user: str, role: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.clusters.set_user(self.cluster, user, role)

        return await self._cluster_user_call(action)

    @rx.event
    async def remove_cluster_user(self, user: str) -> Any:
        async def action(client: GliaClient) -> None:
            await client.clusters.remove_user(self.cluster, user)

        return await self._cluster_user_call(action)

    @rx.event
    async def set_quota(self, form: dict[str, Any]) -> Any:
        """Set the level's running jobs and credits: a number, "unlimited", or empty to keep
        what it has; with "Add credits", add the credits instead."""
        self.quota_errors, self.quota_result = {}, ""

        def text(key: str) -> str | None:
            return str(form.get(key) or "").strip() or None

        target = {"org": text("org"), "cluster": text("cluster"), "user": text("user")}
        jobs, credits = text("running_jobs"), text("credits")
        try:
            async with self.client() as client:
                if form.get("add"):
                    quota = await client.quotas.add_credits(_number(credits or "0"), **target)
                else:
                    quota = await client.quotas.set(
                        **target,
                        max_running_jobs=None if _unlimited(jobs) else _whole(jobs),
                        unlimited_running_jobs=_unlimited(jobs),
                        credits=None if _unlimited(credits) else _number(credits),
                        unlimited_credits=_unlimited(credits),
                    )
        except BadInput as error:
            self.quota_errors = field_errors(error)
            return None if self.quota_errors else self.handle(error)
        except GliaError as error:
            return self.handle(error)
        named = (("org", quota.org), ("cluster", quota.cluster), ("user", quota.user))
        where = " ".join(f"{name} {value}" for name, value in named if value)
        self.quota_result = f"{where}: {quota_summary([quota]) or 'no limits'}"
        return None


def _unlimited(value: str | None) -> bool:
    return value is not None and value.lower() == "unlimited"


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise BadInput(f"{value!r} is not a number", fields={"credits": "not a number"}) from None


def _whole(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadInput(
            f"{value!r} is not a whole number", fields={"maxRunningJobs": "not a whole number"}
        ) from None


def _quota_form() -> rx.Component:
    def text(label: str, name: str, error: str, **props: Any) -> rx.Component:
        return field(
            label, rx.input(name=name, id="quota-" + name, **props), AdminState.quota_errors[error]
        )

    return rx.form(
        rx.flex(
            text("Org", "org", "org"),
            text("Cluster", "cluster", "cluster"),
            text("User", "user", "user"),
            text("Running jobs", "running_jobs", "maxRunningJobs", placeholder="unchanged"),
            text("Credits", "credits", "credits", placeholder="unchanged"),
            rx.checkbox("Add credits", name="add"),
            rx.button("Set quota", type="submit", align_self="end"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=AdminState.set_quota,
        reset_on_submit=False,
        id="quota-form",
    )


def _user_row(user: dict[str, str]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(user["name"]),
        rx.table.cell(user["email"]),
        rx.table.cell(
            rx.select(
                ["user", "admin"],
                value=user["role"],
                on_change=lambda role: AdminState.set_role(user["name"], role),
                size="1",
                aria_label="Role of " + user["name"],
            )
        ),
        rx.table.cell(relative_time(user["created"])),
        rx.table.cell(
            rx.hstack(
                rx.button(
                    "Reset password",
                    size="1",
                    variant="soft",
                    on_click=AdminState.reset_password(user["name"]),
                ),
                rx.alert_dialog.root(
                    rx.alert_dialog.trigger(
                        rx.button("Remove", size="1", variant="soft", color_scheme="red")
                    ),
                    rx.alert_dialog.content(
                        rx.alert_dialog.title("Remove " + user["name"] + "?"),
                        rx.alert_dialog.description(
                            "Their unfinished jobs are stopped and they are signed out. "
                            "Their name is never given out again."
                        ),
                        rx.flex(
                            rx.alert_dialog.cancel(rx.button("Cancel", variant="soft")),
                            rx.alert_dialog.action(
                                rx.button(
                                    "Remove",
                                    color_scheme="red",
                                    on_click=AdminState.remove(user["name"]),
                                )
                            ),
                            spacing="3",
                            justify="end",
                        ),
                    ),
                ),
                spacing="2",
            )
        ),
    )


PRESET_COLUMNS = ("name", "cpu", "memory", "gpu", "pids", "credits", "flags", "available")


def _preset_row(preset: dict[str, str]) -> rx.Component:
    return rx.table.row(
        *[rx.table.cell(preset[key]) for key in PRESET_COLUMNS],
        rx.table.cell(
            rx.button(
                "Remove",
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=AdminState.remove_preset(preset["name"]),
                aria_label="Remove preset " + preset["name"],
            )
        ),
    )


def _preset_form() -> rx.Component:
    def number(label: str, name: str, **props: Any) -> rx.Component:
        return field(
            label,
            rx.input(name=name, id="preset-" + name, type="number", step="any", **props),
            AdminState.preset_errors[name],
        )

    return rx.form(
        rx.flex(
            field(
                "Preset",
                rx.input(name="name", id="preset-name"),
                AdminState.preset_errors["name"],
            ),
            number("CPU", "cpu", default_value="1"),
            number("Memory (MiB)", "memory_mb", default_value="1024"),
            number("GPUs", "gpu", default_value="0"),
            field("GPU model", rx.input(name="gpu_model", id="preset-gpu_model")),
            number("Credits / hour", "credits_per_hour", default_value="0"),
            rx.checkbox("Preemptible", name="preemptible"),
            rx.checkbox("No queue", name="no_queue"),
            rx.button("Save preset", type="submit", align_self="end"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=AdminState.save_preset,
        reset_on_submit=False,
        id="preset-form",
    )


def _create_form() -> rx.Component:
    return rx.form(
        rx.flex(
            field("Name", rx.input(name="name", id="name"), AdminState.errors["name"]),
            field(
                "Email",
                rx.input(name="email", id="email", type="email"),
                AdminState.errors["email"],
            ),
            field(
                "Role",
                rx.select(["user", "admin"], name="role", default_value="user", aria_label="Role"),
            ),
            rx.button("Create user", type="submit", align_self="end"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=AdminState.create,
        reset_on_submit=False,
    )


def admin() -> rx.Component:
    return page(
        "Admin",
        rx.cond(
            AdminState.refused,
            rx.callout(
                "This page is for admins only.", color_scheme="red", role="alert", id="refused"
            ),
            rx.vstack(
                rx.heading("Users", size="4"),
                _create_form(),
                rx.cond(
                    AdminState.new_password,
                    rx.callout(
                        rx.text(
                            "The password of ",
                            rx.text.strong(AdminState.new_password_for),
                            ", shown once: ",
                            rx.code(AdminState.new_password, id="one-time-password"),
                        ),
                        color_scheme="green",
                    ),
                ),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *[
                                    rx.table.column_header_cell(h)
                                    for h in ("Name", "Email", "Role", "Created", "")
                                ]
                            )
                        ),
                        rx.table.body(rx.foreach(AdminState.users, _user_row)),
                        size="1",
                        variant="surface",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
                rx.heading("Presets of " + AdminState.cluster, size="4", margin_top="16px"),
                rx.text(
                    "Available: how many more jobs of each fit in what the cluster has free now. "
                    "Saving a preset of an existing name changes it; jobs submitted before keep "
                    "their resources.",
                    size="2",
                    color_scheme="gray",
                ),
                _preset_form(),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *[
                                    rx.table.column_header_cell(h)
                                    for h in (
                                        "Preset",
                                        "CPU",
                                        "Memory",
                                        "GPU",
                                        "Processes",
                                        "Credits/h",
                                        "",
                                        "Available",
                                        "",
                                    )
                                ]
                            )
                        ),
                        rx.table.body(rx.foreach(AdminState.presets, _preset_row)),
                        size="1",
                        variant="surface",
                        id="presets",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
                rx.heading("Quotas and credits", size="4", margin_top="16px"),
                rx.text(
                    "A level is named by an org; an org and a cluster; an org and a user; or a "
                    "cluster and a user. Running jobs and credits: a number, unlimited, or "
                    "empty to keep what the level has. The tightest level applies to a job.",
                    size="2",
                    color_scheme="gray",
                ),
                _quota_form(),
                rx.cond(
                    AdminState.quota_result,
                    rx.callout(AdminState.quota_result, id="quota-result", color_scheme="green"),
                ),
                rx.heading("Users of " + AdminState.cluster, size="4", margin_top="16px"),
                rx.text(
                    "Roles on the cluster itself; an org's members run on their org's clusters "
                    "without one.",
                    size="2",
                    color_scheme="gray",
                ),
                member_form(
                    CLUSTER_ROLES,
                    ClusterRole.USER.value,
                    AdminState.cluster_user_errors,
                    AdminState.add_cluster_user,
                    id="cluster-user-form",
                ),
                members_table(
                    AdminState.cluster_users,
                    CLUSTER_ROLES,
                    True,
                    AdminState.set_cluster_role,
                    AdminState.remove_cluster_user,
                    id="cluster-users",
                ),
                spacing="3",
                width="100%",
            ),
        ),
        on_switch=AdminState.switched,
    )
