"""The typed GraphQL context and the per-operation scope.

A WebSocket connection keeps one context for all its operations, so nothing that must not
outlive an operation (a DB session, DataLoaders, the caller's identity) is stored on it: the
`OperationScope` extension opens an `Operation` per operation and keeps it in a context
variable, which tasks spawned for the operation's fields inherit.

The operation's session is opened on first use. A subscription has none: it can last for
days, so its resolver relays a service's stream, and the service opens short sessions of its
own. The caller's identity is looked up by the auth service in a short session of its own (or
found in its cache), so that it holds no database connection for the rest of the operation.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from control_plane.services.auth import Identity
from glia.auth import User
from glia.errors import Unauthenticated
from graph.dataloaders import Loaders

if TYPE_CHECKING:
    from control_plane.platform import Platform


class Operation:
    """``streaming`` tells, once the document is parsed, whether this is a subscription."""

    def __init__(self, platform: Platform, *, streaming: Callable[[], bool]) -> None:
        self._platform = platform
        self._streaming = streaming
        self._session: AsyncSession | None = None
        self.loaders = Loaders(platform, lambda: self.session)
        self.identity: Identity | None = None

    @property
    def session(self) -> AsyncSession:
        if self._streaming():
            raise RuntimeError("a subscription holds no session: its service opens short ones")
        if self._session is None:
            self._session = self._platform.db.sessionmaker()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_operation: contextvars.ContextVar[Operation | None] = contextvars.ContextVar(
    "glia_operation", default=None
)


@dataclass
class Context:
    platform: Platform
    request: Request | WebSocket
    response: Response | WebSocket | None
    request_id: str
    # Set by strawberry from the graphql-transport-ws connection_init payload.
    connection_params: dict[str, Any] | None = field(default=None)

    @property
    def operation(self) -> Operation:
        operation = _operation.get()
        if operation is None:
            raise RuntimeError("no GraphQL operation is active")
        return operation

    @property
    def session(self) -> AsyncSession:
        return self.operation.session

    @property
    def loaders(self) -> Loaders:
        return self.operation.loaders

    def bearer_token(self) -> str | None:
        if self.connection_params:
            token = self.connection_params.get("authToken") or self.connection_params.get(
                "Authorization"
            )
            if isinstance(token, str) and token:
                return token.removeprefix("Bearer ").strip()
        header = self.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None

    async def identity(self) -> Identity:
        operation = self.operation
        if operation.identity is None:
            token = self.bearer_token()
            if token is None:
                raise Unauthenticated("log in first: no token was sent")
            operation.identity = await self.platform.auth.identify(token)
        return operation.identity

    async def user(self) -> User:
        return (await self.identity()).user


Info = StrawberryInfo[Context, None]


@asynccontextmanager
async def operation_scope(
    platform: Platform, *, streaming: Callable[[], bool]
) -> AsyncIterator[Operation]:
    operation = Operation(platform, streaming=streaming)
    token = _operation.set(operation)
    try:
        yield operation
    finally:
        _operation.reset(token)
        await operation.close()
