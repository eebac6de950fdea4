"""The frame of every page (header, navigation, errors) and the pieces pages share: status
badges, relative times, field errors. One component library: Reflex's Radix themes."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.event import EventHandler

from web.session import SessionState

STATUS_COLORS = {
    "pending": "amber",
    "running": "blue",
    "suspended": "orange",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "gray",
}

# The navigation later pages plug into: (label, path, admins only).
NAVIGATION: list[tuple[str, str, bool]] = [
    ("Jobs", "/jobs", False),
    ("Run a job", "/run", False),
    ("Storage", "/storage", False),
    ("Orgs", "/orgs", False),
    ("Buckets", "/buckets", False),
    ("Disks", "/disks", False),
    ("Secrets", "/secrets", False),
    ("Sharing", "/sharing", False),
    ("Service accounts", "/service-accounts", False),
    ("API explorer", "/explorer", False),
    ("Admin", "/admin", True),
    ("Clusters", "/admin/clusters", True),
]


def status_badge(status: Any) -> rx.Component:
    return rx.match(
        status,
        *[
            (name, rx.badge(name, color_scheme=color, variant="soft", radius="full"))
            for name, color in STATUS_COLORS.items()
        ],
        rx.badge(status, variant="soft", radius="full"),
    )


def relative_time(iso: Any) -> rx.Component:
    """ "3 minutes ago", the exact time (UTC) on hover."""
    return rx.cond(
        iso,
        rx.tooltip(rx.moment(iso, from_now=True), content=iso),
        rx.text("—", color_scheme="gray"),
    )


def field(label: str, control: rx.Component, error: Any = None, hint: str = "") -> rx.Component:
    """A labelled form field with its error under it: the label wraps the control, so screen
    readers (and tests) find the control by its label."""
    return rx.vstack(
        rx.el.label(
            rx.text(label, size="2", weight="medium"),
            control,
            style={"display": "flex", "flex_direction": "column", "gap": "4px", "width": "100%"},
        ),
        rx.cond(error, rx.text(error, color_scheme="red", size="1", role="alert")),
        rx.cond(hint != "", rx.text(hint, color_scheme="gray", size="1")),
        spacing="1",
        width="100%",
    )


def _nav_link(label: str, path: str) -> rx.Component:
    return rx.link(label, href=path, size="2", weight="medium", underline="none")


def select(items: Any, label: Any, *, placeholder: str = "", **props: Any) -> rx.Component:
    """A Radix select whose trigger carries ``label`` as its accessible name (`rx.select`
    puts an aria-label on the root, which renders no element), so screen readers and tests
    find it by its label. ``props`` go to the root: value, on_change, name, size, …"""
    return rx.select.root(
        rx.select.trigger(aria_label=label, placeholder=placeholder or None),
        rx.select.content(rx.foreach(items, lambda item: rx.select.item(item, value=item))),
        **props,
    )


def _switcher(
    label: str, items: Any, value: Any, choose: Any, then: list[EventHandler]
) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="1", color_scheme="gray", aria_hidden="true"),
        select(items, label, value=value, on_change=[choose, *then], size="1"),
        spacing="1",
        align="center",
    )


def header(on_switch: EventHandler | None = None) -> rx.Component:
    """The header; ``on_switch`` is what the page does after the user switches the cluster,
    org or project (the jobs page lists the new project's jobs)."""
    then = [on_switch] if on_switch is not None else []
    links = [
        rx.cond(SessionState.is_admin, _nav_link(label, path))
        if admins_only
        else _nav_link(label, path)
        for label, path, admins_only in NAVIGATION
    ]
    return rx.flex(
        rx.hstack(
            rx.heading("Glia", size="5"),
            rx.flex(*links, spacing="4", wrap="wrap", aria_label="Main navigation", as_="nav"),
            spacing="5",
            align="center",
            wrap="wrap",
        ),
        rx.hstack(
            _switcher(
                "Cluster",
                SessionState.clusters,
                SessionState.cluster,
                SessionState.choose_cluster,
                then,
            ),
            _switcher("Org", SessionState.orgs, SessionState.org, SessionState.choose_org, then),
            _switcher(
                "Project",
                SessionState.projects,
                SessionState.project,
                SessionState.choose_project,
                then,
            ),
            rx.cond(
                SessionState.quota_summary,
                rx.badge(SessionState.quota_summary, id="quota-summary", variant="soft"),
            ),
            rx.text(SessionState.user_name, size="2", id="current-user"),
            rx.button("Sign out", on_click=SessionState.logout, size="1", variant="soft"),
            rx.color_mode.button(size="1", variant="ghost"),
            spacing="3",
            align="center",
            wrap="wrap",
        ),
        justify="between",
        align="center",
        wrap="wrap",
        gap="3",
        padding="12px 16px",
        border_bottom="1px solid var(--gray-a5)",
    )


def error_callout() -> rx.Component:
    return rx.cond(
        SessionState.error,
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle_alert")),
            rx.callout.text(SessionState.error),
            rx.button("Dismiss", size="1", variant="ghost", on_click=SessionState.dismiss_error),
            color_scheme="red",
            role="alert",
            margin_bottom="12px",
        ),
    )


def page(
    title: Any, *children: rx.Component, on_switch: EventHandler | None = None
) -> rx.Component:
    return rx.box(
        header(on_switch),
        rx.box(
            rx.heading(title, size="6", margin_bottom="12px"),
            error_callout(),
            *children,
            padding="16px",
            max_width="1200px",
            margin="0 auto",
        ),
        min_height="100vh",
    )
