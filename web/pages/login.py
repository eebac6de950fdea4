from __future__ import annotations

import reflex as rx

from web.layout import field
from web.session import SessionState


def login() -> rx.Component:
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.heading("Sign in to Glia", size="6"),
                    rx.cond(
                        SessionState.error,
                        rx.callout(SessionState.error, color_scheme="red", role="alert"),
                    ),
                    field(
                        "User name",
                        rx.input(id="username", name="username", auto_focus=True, width="100%"),
                    ),
                    field(
                        "Password",
                        rx.input(id="password", name="password", type="password", width="100%"),
                    ),
                    rx.button("Sign in", type="submit", width="100%"),
                    spacing="3",
                    width="100%",
                ),
                on_submit=SessionState.login,
                reset_on_submit=False,
            ),
            width="100%",
            max_width="360px",
        ),
        min_height="100vh",
        padding="16px",
    )
