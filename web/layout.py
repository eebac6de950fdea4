"""The frame of every page (header, navigation, errors) and the pieces pages share: status
badges, relative times, field errors. One component library: Reflex's Radix themes."""

from __future__ import annotations

from typing import Any

import reflex as rx

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
    ("API explorer", "/explorer", False),
    ("Admin", "/admin", True),
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


def header() -> rx.Component:
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
            rx.select(
                SessionState.clusters,
                value=SessionState.cluster,
                on_change=SessionState.choose_cluster,
                aria_label="Cluster",
                size="1",
            ),
            rx.text(SessionState.user_name, size="2", id="current-user"),
            rx.button("Sign out", on_click=SessionState.logout, size="1", variant="soft"),
            rx.color_mode.button(size="1", variant="ghost"),
            spacing="3",
            align="center",
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


def page(title: str, *children: rx.Component) -> rx.Component:
    return rx.box(
        header(),
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
