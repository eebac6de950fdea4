"""The typed GraphQL context and the per-operation scope.

A WebSocket connection keeps one context for all its operations, so nothing that must not
outlive an operation (a DB session, DataLoaders, the caller's identity) is stored on it: the
`OperationScope` extension opens those per operation and keeps them in a context variable,
which tasks spawned for the operation's fields inherit.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from glia.errors import Unauthenticated
from glia.services.auth import Identity, User
from graph.dataloaders import Loaders

if TYPE_CHECKING:
    from glia.platform import Platform


@dataclass
class Operation:
    session: AsyncSession
    loaders: Loaders
    identity: Identity | None = None


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
            operation.identity = await self.platform.auth.identify(operation.session, token)
            # The caller is most often the owner of what they ask about: spare that lookup.
            operation.loaders.users.prime(operation.identity.user.id, operation.identity.user)
        return operation.identity

    async def user(self) -> User:
        return (await self.identity()).user


Info = StrawberryInfo[Context, None]


@asynccontextmanager
async def operation_scope(platform: Platform) -> AsyncIterator[Operation]:
    async with platform.db.session() as session:
        operation = Operation(session=session, loaders=Loaders(platform, session))
        token = _operation.set(operation)
        try:
            yield operation
        finally:
            _operation.reset(token)
