"""Subscriptions over one shared WebSocket (graphql-transport-ws), with gql.

Imported by `GliaClient.subscribe` on first use, so that a command that only queries does not
import gql and graphql-core. All subscriptions of a client share one connection (the protocol
multiplexes them), opened on first use: a new subscription costs one message, not a
handshake. The token goes in ``connection_init`` (``authToken``) and in the upgrade's
``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from typing import Any

import websockets.exceptions
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport
from graphql import DocumentNode, parse

from sdk.errors import (
    ConnectionFailed,
    ConnectionLost,
    Forbidden,
    GliaError,
    Unauthenticated,
    error_from_graphql,
)


class _Request(GraphQLRequest):
    """A request for one of the SDK's own documents, parsed once and sent as written.

    gql parses a string on every request and prints the parsed document back to text for
    every payload; for the SDK's fixed documents both are pure overhead.
    """

    def __init__(self, document: str, variables: Mapping[str, Any] | None) -> None:
        super().__init__(_parsed(document), variable_values=dict(variables or {}))
        self._text = document

    @property
    def payload(self) -> dict[str, Any]:
        payload = super().payload if self.extensions or self.operation_name else {}
        payload["query"] = self._text
        if self.variable_values:
            payload["variables"] = self.variable_values
        return payload


# How long closing the WebSocket may take before it is dropped (the server may be gone).
CLOSE_TIMEOUT_S = 2.0


@functools.lru_cache(maxsize=256)
def _parsed(document: str) -> DocumentNode:
    return parse(document)


class Subscriptions:
    """The subscriptions of one client; ``token`` is read when the connection opens (a login
    on the client changes it)."""

    def __init__(self, url: str, token: Callable[[], str | None], *, timeout: float) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout
        self._client: Client | None = None
        self._session: AsyncClientSession | None = None
        self._lock = asyncio.Lock()

    async def subscribe(
        self, document: str, variables: Mapping[str, Any] | None = None
    ) -> AsyncGenerator[Any, None]:
        """Each ``data`` of a subscription. A connection the server closed meanwhile is
        replaced once, before the first result."""
        request = _Request(document, variables)
        with _websocket_errors(self._url):
            for attempt in (1, 2):
                session = await self._open()
                received = False
                try:
                    async for data in session.subscribe(request):
                        received = True
                        yield data
                    return
                except (TransportClosed, TransportConnectionFailed):
                    await self.aclose()
                    if received or attempt == 2:
                        raise

    async def _open(self) -> AsyncClientSession:
        async with self._lock:
            if self._session is None:
                token = self._token()
                transport = WebsocketsTransport(
                    url=self._url,
                    subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
                    init_payload={"authToken": token} if token else {},
                    headers={"Authorization": f"Bearer {token}"} if token else None,
                    connect_timeout=self._timeout,
                    ack_timeout=self._timeout,
                    # No permessage-deflate: compressing every chunk of a followed log costs
                    # both ends more CPU than it saves on a LAN (a follower reads 2-3x
                    # faster without it: bench/log_throughput.py).
                    connect_args={"compression": None},
                )
                self._client = Client(transport=transport, fetch_schema_from_transport=False)
                self._session = await self._client.connect_async()
            return self._session

    async def aclose(self) -> None:
        client, self._client, self._session = self._client, None, None
        if client is not None:
            # A close handshake the server never answers must not hold the caller (Ctrl-C).
            with contextlib.suppress(TransportError, OSError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await client.close_async()


@contextlib.contextmanager
def _websocket_errors(url: str) -> Iterator[None]:
    """Turn whatever gql or websockets raise into the ``GliaError`` it means."""
    try:
        yield
    except TransportQueryError as exc:
        raise (error_from_graphql(exc.errors) if exc.errors else GliaError(str(exc))) from exc
    except TransportServerError as exc:
        raise GliaError(f"server error from {url}: {exc}") from exc
    except TransportClosed as exc:
        error = _connection_error(url, exc)
        if type(error) is ConnectionFailed:  # not an auth answer: the connection broke
            error = ConnectionLost(f"lost the connection to the Glia server at {url}")
        raise error from exc
    except (TransportConnectionFailed, OSError) as exc:
        raise _connection_error(url, exc) from exc
    except TimeoutError as exc:
        raise ConnectionFailed(f"timed out waiting for the Glia server at {url}") from exc
    except TransportError as exc:
        raise GliaError(f"unexpected answer from {url}: {exc}") from exc


def _connection_error(url: str, exc: BaseException) -> GliaError:
    # A WebSocket the server closed with an application code (4401/4403 for a rejected
    # connection_init) is an auth answer, not an unreachable server.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, websockets.exceptions.ConnectionClosed) and cause.rcvd:
            code, reason = cause.rcvd.code, cause.rcvd.reason or "connection rejected"
            if code == 4401:
                return Unauthenticated(reason)
            if code == 4403:
                return Forbidden(reason)
        if isinstance(cause, websockets.exceptions.InvalidStatus):
            status = cause.response.status_code
            if status == 401:
                return Unauthenticated(f"{url}: HTTP 401")
            if status == 403:
                return Forbidden(f"{url}: HTTP 403")
        cause = cause.__cause__
    detail = str(exc.__cause__ or exc) or type(exc).__name__
    return ConnectionFailed(f"cannot reach the Glia server at {url}: {detail}")
