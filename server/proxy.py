"""The job proxy: ``http://LABEL.<jobs domain>:PORT/…`` to the port an exposed job serves.

Host-based, so a job's app works at ``/``. Every request is checked like ``/auth/forward``
(`IngressService.authorize`; a browser without a session is sent to ``/.glia/login`` on the
same host). HTTP goes through httpx, streamed both ways in the chunks each side sends (no
body is held whole); WebSockets through the ``websockets`` client, message by message, each
at most `MAX_WS_MESSAGE_BYTES`. The job never sees the caller's Glia credentials: the
``Authorization`` header that signed the caller in and the ``glia_session`` cookie are taken
out, and ``X-Glia-User`` names the caller instead (a client's own ``X-Glia-*`` headers are
dropped, so none can pretend).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
import structlog
from starlette.requests import HTTPConnection, Request
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from control_plane.platform import Platform
from control_plane.services.ingress import SESSION_COOKIE, ExposedJob
from glia.auth import User
from glia.errors import Forbidden, Unauthenticated
from server.routes.ingress import LOGIN_PATH, credentials_of, login, login_location, page

logger = structlog.get_logger("server.proxy")

# Headers of one connection, not of the request (RFC 9110 7.6.1), and those this proxy sets.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
MAX_WS_MESSAGE_BYTES = 16 * 1024 * 1024
# Messages a slow side may have waiting, per direction, before the other side waits too.
WS_QUEUE = 16


class JobProxy:
    """A pure ASGI app for the job hosts (mounted with ``Host("{label}.<jobs domain>")``)."""

    def __init__(self, platform: Callable[[], Platform]) -> None:
        self._platform = platform
        self._client: httpx.AsyncClient | None = None

    def _http(self, platform: Platform) -> httpx.AsyncClient:
        if self._client is None:
            settings = platform.settings
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    settings.http_proxy_read_timeout_s,
                    connect=settings.http_proxy_connect_timeout_s,
                ),
                follow_redirects=False,
                trust_env=False,  # never through an HTTP(S)_PROXY of the server's environment
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        platform = self._platform()
        if scope["type"] == "http" and scope["path"] == LOGIN_PATH:
            response = await login(Request(scope, receive), platform)
            await response(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        credentials = credentials_of(connection)
        ingress = platform.ingress
        label = ingress.host_label(credentials.host)
        job = await ingress.exposed_job(label=label) if label else None
        try:
            user = await ingress.authorize(job, credentials)
        except (Unauthenticated, Forbidden) as error:
            await self._refuse(scope, receive, send, error)
            return
        if job is None:  # authorize lets no request through to no job; keep mypy sure of it
            return
        if job.status.value != "running":
            await self._answer(
                scope,
                receive,
                send,
                page(
                    "The job is not running",
                    f"Job {job.id} is {job.status.value}: its URL works while it runs.",
                    status=503,
                    headers={"Retry-After": "5"},
                ),
            )
            return
        headers = _forwarded_headers(
            scope, user, strip_authorization=job.http_auth and credentials.bearer is not None
        )
        if scope["type"] == "http":
            await self._proxy_http(platform, job, scope, receive, send, headers)
        else:
            await self._proxy_websocket(platform, job, scope, receive, send, headers)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: Unauthenticated | Forbidden
    ) -> None:
        if scope["type"] == "websocket":
            await send(
                {
                    "type": "websocket.close",
                    "code": 4401 if isinstance(error, Unauthenticated) else 4403,
                }
            )
            return
        request = Request(scope)
        if isinstance(error, Unauthenticated):
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
                query = scope.get("query_string", b"").decode("latin-1")
                location = login_location(path + (f"?{query}" if query else ""))
                await self._answer(
                    scope,
                    receive,
                    send,
                    page(
                        "Sign in",
                        "Sign in to reach this job.",
                        status=302,
                        headers={"Location": location},
                    ),
                )
                return
            response = page(
                "Sign in", error.message, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        else:
            response = page("Not allowed", error.message, status=403)
        await self._answer(scope, receive, send, response)

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send, response: object) -> None:
        await response(scope, receive, send)  # type: ignore[operator]

    async def _proxy_http(
        self,
        platform: Platform,
        job: ExposedJob,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[str, str]],
    ) -> None:
        host, port = platform.ingress.target(job)
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = f"http://{host}:{port}{path.decode('latin-1')}"
        if query:
            url += "?" + query.decode("latin-1")
        client = self._http(platform)
        has_body = any(k == "content-length" or k == "transfer-encoding" for k, _ in _raw(scope))
        request = client.build_request(
            scope["method"],
            url,
            headers=headers,
            content=_request_body(receive) if has_body else None,
        )
        try:
            upstream = await client.send(request, stream=True)
        except httpx.TimeoutException:
            await page(
                "The job did not answer",
                f"Job {job.id} did not answer in time on port {port}.",
                status=504,
            )(scope, receive, send)
            return
        except httpx.HTTPError:
            await page(
                "The job is not listening",
                f"Job {job.id} runs, but nothing listens on its port {port} (yet): the app may "
                "still be starting, or listen on another port or only on another address.",
                status=502,
                headers={"Retry-After": "2"},
            )(scope, receive, send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status_code,
                    "headers": [
                        (name, value)
                        for name, value in upstream.headers.raw
                        if name.lower().decode("latin-1") not in HOP_BY_HOP
                    ],
                }
            )
            try:
                async for chunk in upstream.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError:
                # The job broke off its answer: end ours (the client sees a short body).
                logger.info("job proxy: the job broke off its answer", job=job.id)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await upstream.aclose()

    async def _proxy_websocket(
        self,
        platform: Platform,
        job: ExposedJob,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[str, str]],
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        host, port = platform.ingress.target(job)
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"ws://{host}:{port}{path}" + (f"?{query}" if query else "")
        subprotocols = scope.get("subprotocols") or None
        # The client library sets Host and the handshake's own headers.
        ws_headers = [
            (k, v) for k, v in headers if k != "host" and not k.startswith("sec-websocket-")
        ]
        try:
            upstream_cm = connect(
                url,
                additional_headers=ws_headers,
                subprotocols=subprotocols,
                max_size=MAX_WS_MESSAGE_BYTES,
                max_queue=WS_QUEUE,
                open_timeout=platform.settings.http_proxy_connect_timeout_s,
                proxy=None,
                user_agent_header=None,
            )
            upstream = await upstream_cm
        except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
            await send({"type": "websocket.close", "code": 1011})
            return
        try:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _relay(upstream, receive, send)
        finally:
            await upstream.close()


async def _relay(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    """Messages both ways until one side closes; the other side is then closed too."""

    async def from_client() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(code=message.get("code", 1000))
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])

    async def from_job() -> None:
        try:
            async for data in upstream:
                if isinstance(data, bytes):
                    await send({"type": "websocket.send", "bytes": data})
                else:
                    await send({"type": "websocket.send", "text": data})
        except ConnectionClosed:
            pass
        code = upstream.close_code or 1000
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code if code != 1005 else 1000})

    tasks = [asyncio.create_task(from_client()), asyncio.create_task(from_job())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


def _raw(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]


def _forwarded_headers(
    scope: Scope, user: User | None, *, strip_authorization: bool
) -> list[tuple[str, str]]:
    """The client's headers for the job, less the connection's, Glia's credentials and any
    ``X-Glia-*`` the client sent; with ``X-Glia-User`` and the ``X-Forwarded-*`` set."""
    headers: list[tuple[str, str]] = []
    original_host = ""
    for name, value in _raw(scope):
        if name == "host":
            original_host = value
        if name in HOP_BY_HOP or name.startswith("x-glia-") or name.startswith("x-forwarded-"):
            continue
        if name == "authorization" and strip_authorization:
            continue
        if name == "cookie":
            value = _without_session_cookie(value)
            if not value:
                continue
        headers.append((name, value))
    client = scope.get("client")
    if client:
        headers.append(("x-forwarded-for", str(client[0])))
    headers.append(("x-forwarded-host", original_host))
    headers.append(
        ("x-forwarded-proto", "https" if scope.get("scheme") in ("https", "wss") else "http")
    )
    headers.append(("host", original_host))
    if user is not None:
        headers.append(("x-glia-user", user.name))
    return headers


def _without_session_cookie(header: str) -> str:
    """A ``Cookie`` header without ``glia_session`` (kept as sent otherwise)."""
    kept = [
        part.strip()
        for part in header.split(";")
        if part.strip() and part.strip().split("=", 1)[0].strip() != SESSION_COOKIE
    ]
    return "; ".join(kept)
