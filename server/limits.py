"""Request body limit for the API: a body over `max_bytes` is answered 413 before it is read
whole, so no client can make the server buffer without bound."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glia.errors import PayloadTooLarge


class BodyLimit:
    """Pure ASGI middleware for the routes under ``paths``: reads at most ``max_bytes`` of a
    request's body, then hands the app the body it read (GraphQL reads it whole anyway)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        paths: tuple[str, ...],
        other_hosts: str | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths
        # Hosts ending with this (``.jobs.localhost``) are exposed jobs': their paths are the
        # job's own, streamed through by the job proxy, whatever they are called. Matched as
        # Starlette's Host route matches them (case and all), so no host skips the limit
        # that does not also go to the proxy instead of the API.
        self.other_hosts = other_hosts.encode() if other_hosts else None

    def _applies(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return False
        if self.other_hosts is None:
            return True
        host = dict(scope.get("headers", ())).get(b"host", b"").split(b":")[0]
        return not host.endswith(self.other_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        error = PayloadTooLarge(f"the request body is over {self.max_bytes} bytes")
        body = json.dumps(
            {"errors": [{"message": error.message, "extensions": error.extensions}]}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
