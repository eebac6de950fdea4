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

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from control_plane.services.auth import Identity
from glia.auth import User
from glia.clock import utcnow
from glia.errors import Unauthenticated
from graph.dataloaders import Loaders
from graph.streams import StreamLimits

if TYPE_CHECKING:
    from control_plane.platform import Platform

T = TypeVar("T")


class OperationSession(AsyncSession):
    """The session of one operation, safe to share between its fields.

    GraphQL resolves sibling fields concurrently (`{ job(id: 1) { … } jobs { … } }`, two
    DataLoaders in one tick): each database call takes the session in turn instead of two
    running on one connection at once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = asyncio.Lock()

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().scalar(*args, **kwargs)

    # scalars() goes through execute(): it takes its turn there (the lock is not reentrant).

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().get(*args, **kwargs)

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        async with self._turn:
            await super().flush(*args, **kwargs)

    async def commit(self) -> None:
        async with self._turn:
            await super().commit()

    async def rollback(self) -> None:
        async with self._turn:
            await super().rollback()


class Operation:
    """``streaming`` tells, once the document is parsed, whether this is a subscription."""

    def __init__(self, platform: Platform, *, streaming: Callable[[], bool]) -> None:
        self._platform = platform
        self._streaming = streaming
        self._session: AsyncSession | None = None
        self.loaders = Loaders(platform, lambda: self.session)
        self.identity: Identity | None = None
        # Who `login` just signed in: the viewer of its answer, who sent no token yet.
        self.signed_in: User | None = None

    @property
    def session(self) -> AsyncSession:
        if self._streaming():
            raise RuntimeError("a subscription holds no session: its service opens short ones")
        if self._session is None:
            self._session = OperationSession(self._platform.db.engine, expire_on_commit=False)
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
    limits: StreamLimits
    # Set by strawberry from the graphql-transport-ws connection_init payload.
    connection_params: dict[str, Any] | None = field(default=None)

    @property
    def client_address(self) -> str | None:
        client = self.request.client
        return client.host if client is not None else None

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
        """The caller's token: from a WebSocket's ``connection_init`` payload (``authToken``,
        ``Authorization`` in any letter case, or ``headers: {Authorization}`` as Apollo and
        GraphiQL send it), else from the request's ``Authorization: Bearer`` header."""
        if self.connection_params:
            token = _payload_token(self.connection_params)
            if token is not None:
                return token
        return _bearer(self.request.headers.get("authorization", ""))

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

    async def viewer(self) -> User:
        """Who reads the answer: the caller, or the user `login` just signed in."""
        signed_in = self.operation.signed_in
        return signed_in if signed_in is not None else await self.user()

    async def stream(self, items: AsyncGenerator[T, None]) -> AsyncIterator[T]:
        """Relay a service's stream to a subscriber while their token stays valid.

        Counts against the user's subscriptions; ends with UNAUTHENTICATED as soon as the
        token is revoked (in any process) or expires, and closes ``items`` when it ends.
        """
        identity = await self.identity()
        auth = self.platform.auth
        with (
            self.limits.subscription(identity.user.id),
            auth.revocation(identity.token_id) as revoked,
        ):
            # The relay awaits each item in the caller's task (a task and a wait per item
            # cost ~13 µs, per follower and line): the end of the token cancels that wait,
            # the way `asyncio.timeout` does, and only that wait.
            waiting: asyncio.Task[Any] | None = None
            interrupted = False

            def interrupt(_: asyncio.Future[None]) -> None:
                nonlocal interrupted
                if waiting is not None and not interrupted:
                    interrupted = True
                    waiting.cancel()

            ended = asyncio.ensure_future(_until(revoked, identity.expires_at))
            ended.add_done_callback(interrupt)
            try:
                async with contextlib.aclosing(items):
                    while not ended.done():
                        task = asyncio.current_task()
                        if task is None:
                            raise RuntimeError("a stream is relayed by a task")
                        cancelling = task.cancelling()
                        waiting = task
                        try:
                            item = await anext(items)
                        except StopAsyncIteration:
                            return
                        except asyncio.CancelledError:
                            # Ours alone becomes UNAUTHENTICATED; any other cancellation
                            # (the client completed the operation) goes on.
                            if interrupted and task.uncancel() <= cancelling:
                                break
                            raise
                        finally:
                            waiting = None
                        if interrupted:
                            # ``items`` swallowed the cancellation: it was still delivered.
                            task.uncancel()
                            break
                        yield item
                raise Unauthenticated(
                    "the token of this subscription was revoked or has expired: log in again"
                )
            finally:
                waiting = None
                ended.remove_done_callback(interrupt)
                ended.cancel()


def _bearer(value: str) -> str | None:
    """The token of ``Bearer <token>`` (any letter case of the scheme)."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _payload_token(payload: dict[str, Any]) -> str | None:
    token = payload.get("authToken")
    if isinstance(token, str) and token.strip():
        return _bearer(token) or token.strip()  # a bare token, or "Bearer <token>"
    for holder in (payload, payload.get("headers")):
        if not isinstance(holder, dict):
            continue
        for key, value in holder.items():
            if isinstance(key, str) and key.lower() == "authorization" and isinstance(value, str):
                return _bearer(value)
    return None


async def _until(revoked: asyncio.Event, expires_at: datetime) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, (expires_at - utcnow()).total_seconds())):
            await revoked.wait()


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
