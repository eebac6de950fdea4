"""The GraphQL WebSocket protocol (graphql-transport-ws) with Glia's admission rules.

A `connection_init` must carry a valid token (`authToken`, or `Authorization: Bearer …`):
otherwise the socket is closed with 4401 before it is acknowledged, so an unauthenticated
client holds no acknowledged connection. Each user may hold `StreamLimits.connections_per_user`
connections at once (4429 past that).
"""

from __future__ import annotations

from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage

from glia.errors import Unauthenticated
from graph.context import Context

# A close frame's reason is at most 123 bytes.
_MAX_REASON = 120


class GliaTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    _user_id: str | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload: Any = message.get("payload") or {}
        if isinstance(payload, dict) and not self.connection_init_received:
            context = self.context
            context.connection_params = payload
            token = context.bearer_token()
            if token is None:
                await self._close(4401, "Unauthorized: send authToken in connection_init")
                return
            try:
                identity = await context.platform.auth.identify(token)
            except Unauthenticated as exc:
                await self._close(4401, f"Unauthorized: {exc.message}")
                return
            if not context.limits.open_connection(identity.user.id):
                limit = context.limits.connections_per_user
                await self._close(4429, f"Too many connections: at most {limit} per user")
                return
            self._user_id = identity.user.id
        await super().handle_connection_init(message)

    async def _close(self, code: int, reason: str) -> None:
        self.connection_init_received = True
        await self.websocket.close(
            code=code, reason=reason.encode()[:_MAX_REASON].decode(errors="ignore")
        )

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            if self._user_id is not None:
                self.context.limits.close_connection(self._user_id)
                self._user_id = None
