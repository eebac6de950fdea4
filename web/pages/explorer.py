"""The API explorer: the server's GraphiQL (served from local assets) with the user's token.

The token travels in the frame's URL fragment, which the browser never sends to a server (so
no log sees it); the GraphiQL page takes it from there and sets the Authorization header.
"""

from __future__ import annotations

import reflex as rx

from web.layout import page
from web.session import PUBLIC_API_URL, SessionState


def explorer() -> rx.Component:
    return page(
        "API explorer",
        rx.el.iframe(
            src=f"{PUBLIC_API_URL}/graphql#token=" + SessionState.token,
            title="GraphiQL",
            id="graphiql",
            width="100%",
            height="75vh",
            border="1px solid var(--gray-a5)",
            border_radius="6px",
        ),
    )
