"""The clusters admin page (platform admins, /admin/clusters): every registered cluster with
its life-cycle status, last heartbeat and capacity; a form to register one and a button to
decommission one. A remote gateway's secret is shown once, as the CLI's add-cluster does."""

from __future__ import annotations

from typing import Any

import reflex as rx

from sdk import BadInput, ClusterConfig, GliaError, Resources
from web.layout import field, page, relative_time
from web.pages.orgs import confirm_button
from web.session import SessionState

RUNTIMES = ["local", "kubernetes"]


def _resources(resources: Resources | None) -> str:
    if resources is None:
        return "-"
    text = f"{resources.cpu:g} CPU, {resources.memory_mb} MiB"
    return text + (f", {resources.gpu} GPU" if resources.gpu else "")


def cluster_row(cluster: ClusterConfig) -> dict[str, str]:
    health = cluster.health
    return {
        "name": cluster.name,
        "status": cluster.status.value,
        "reason": cluster.status_reason or "",
        "gateway": cluster.gateway,
        "runtime": cluster.runtime.value,
        "heartbeat": health.last_heartbeat_at.isoformat() if health.last_heartbeat_at else "",
        "capacity": _resources(health.capacity),
        "free": _resources(health.free),
    }


class ClustersAdminState(SessionState):
    cluster_configs: list[dict[str, str]] = []
    errors: dict[str, str] = {}
    refused: bool = False
    # A remote gateway's shared secret, shown once after its registration.
    new_secret: str = ""
    new_secret_for: str = ""
    # The jobs the last decommission stopped.
    removed_note: str = ""

    @rx.event
    async def open(self) -> Any:
        redirect = await self.require_login()
        if redirect is not None:
            return redirect
        self.errors, self.new_secret, self.new_secret_for, self.removed_note = {}, "", "", ""
        self.refused = not self.is_admin
        return None if self.refused else await self._load()

    async def _load(self) -> Any:
        try:
            async with self.client() as client:
                found = await client.clusters.configs()
        except GliaError as error:
            return self.handle(error)
        self.cluster_configs = [cluster_row(cluster) for cluster in found]
        return None

    @rx.event
    async def refresh(self) -> Any:
        return None if self.refused else await self._load()

    @rx.event
    async def add(self, form: dict[str, Any]) -> Any:
        self.errors, self.new_secret, self.removed_note = {}, "", ""

        def text(key: str) -> str | None:
            return str(form.get(key) or "").strip() or None

        name = text("name") or ""
        try:
            async with self.client() as client:
                registered = await client.clusters.register(
                    name,
                    gateway=text("gateway") or "local",
                    runtime=text("runtime") or "local",
                    storage_url=text("storage_url"),
                    registry_url=text("registry_url"),
                )
        except BadInput as error:
            self.errors = {k.split(".")[0]: v for k, v in error.fields.items()}
            return None if self.errors else self.handle(error)
        except GliaError as error:
            if error.fields:
                self.errors = {k.split(".")[0]: v for k, v in error.fields.items()}
                return None
            return self.handle(error)
        self.new_secret = registered.gateway_secret or ""
        self.new_secret_for = registered.cluster.name
        return await self._load()

    @rx.event
    async def remove(self, name: str) -> Any:
        self.new_secret, self.removed_note = "", ""
        try:
            async with self.client() as client:
                removed = await client.clusters.decommission(name)
        except GliaError as error:
            return self.handle(error)
        stopped = removed.stopped_jobs
        self.removed_note = (
            f"Cluster {name} removed; {len(stopped)} unfinished job(s) cancelled"
            + (": " + ", ".join(stopped) if stopped else ".")
        )
        return await self._load()


def _status(row: Any) -> rx.Component:
    return rx.badge(
        row["status"],
        color_scheme=rx.match(
            row["status"],
            ("deployed", "green"),
            ("failed", "red"),
            ("deleting", "gray"),
            "yellow",
        ),
    )


def _row(row: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["name"]),
        rx.table.cell(_status(row), rx.text(row["reason"], size="1", color_scheme="gray")),
        rx.table.cell(row["gateway"]),
        rx.table.cell(row["runtime"]),
        rx.table.cell(rx.cond(row["heartbeat"], relative_time(row["heartbeat"]), "never")),
        rx.table.cell(row["capacity"]),
        rx.table.cell(row["free"]),
        rx.table.cell(
            confirm_button(
                "Remove",
                "Decommission " + row["name"] + "?",
                "Its unfinished jobs are cancelled first, then the cluster is removed with its "
                "jobs' records.",
                ClustersAdminState.remove(row["name"]),
            )
        ),
    )


def _add_form() -> rx.Component:
    errors = ClustersAdminState.errors
    return rx.form(
        rx.flex(
            field("Name", rx.input(name="name", id="cluster-name"), errors["name"]),
            field(
                "Gateway",
                rx.input(
                    name="gateway",
                    id="cluster-gateway",
                    default_value="local",
                    placeholder="local or https://…",
                ),
                errors["gateway"],
            ),
            field(
                "Runtime",
                rx.select(RUNTIMES, name="runtime", default_value="local", aria_label="Runtime"),
                errors["runtime"],
            ),
            field(
                "Storage URL",
                rx.input(name="storage_url", id="cluster-storage-url"),
                errors["storageUrl"],
            ),
            field(
                "Registry URL",
                rx.input(name="registry_url", id="cluster-registry-url"),
                errors["registryUrl"],
            ),
            rx.button("Add cluster", type="submit", align_self="end"),
            spacing="3",
            wrap="wrap",
            align="end",
        ),
        on_submit=ClustersAdminState.add,
        reset_on_submit=False,
        id="cluster-form",
    )


def clusters_admin() -> rx.Component:
    return page(
        "Clusters",
        rx.cond(
            ClustersAdminState.refused,
            rx.callout(
                "This page is for admins only.", color_scheme="red", role="alert", id="refused"
            ),
            rx.vstack(
                rx.text(
                    "Each cluster's life cycle (blank, deploying, deployed, failed, deleting), "
                    "when its gateway last answered, and its capacity. A local gateway runs in "
                    "the control plane with a data dir of its own; a remote one is the URL of "
                    "the cluster's glia gateway serve.",
                    size="2",
                    color_scheme="gray",
                ),
                _add_form(),
                rx.cond(
                    ClustersAdminState.new_secret,
                    rx.callout(
                        rx.text(
                            "The gateway secret of ",
                            rx.text.strong(ClustersAdminState.new_secret_for),
                            ", shown once (GLIA_GATEWAY_SECRET for its glia gateway serve): ",
                            rx.code(ClustersAdminState.new_secret, id="gateway-secret"),
                        ),
                        color_scheme="green",
                    ),
                ),
                rx.cond(
                    ClustersAdminState.removed_note,
                    rx.callout(ClustersAdminState.removed_note, id="removed-note"),
                ),
                rx.hstack(
                    rx.button(
                        "Refresh", size="1", variant="soft", on_click=ClustersAdminState.refresh
                    ),
                ),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *[
                                    rx.table.column_header_cell(h)
                                    for h in (
                                        "Cluster",
                                        "Status",
                                        "Gateway",
                                        "Runtime",
                                        "Last heartbeat",
                                        "Capacity",
                                        "Free",
                                        "",
                                    )
                                ]
                            )
                        ),
                        rx.table.body(rx.foreach(ClustersAdminState.cluster_configs, _row)),
                        size="1",
                        variant="surface",
                        id="clusters",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
        ),
    )
