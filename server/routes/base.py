"""What every byte route shares: who is calling, and errors in the API's shape.

A byte route authenticates like the API (``Authorization: Bearer <token>``), checks access
through the same services, and answers a failure with the GraphQL error shape
(``{"errors": [{"message", "extensions": {"code"}}]}``) and the matching HTTP status, so a
client handles both the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from control_plane.platform import Platform
from control_plane.services.auth import Identity
from glia.auth import User
from glia.errors import GliaError, Unauthenticated

Handler = Callable[[Request], Awaitable[Response]]


async def authenticated_user(request: HTTPConnection, platform: Platform) -> User:
    return (await authenticated_identity(request, platform)).user


async def authenticated_identity(request: HTTPConnection, platform: Platform) -> Identity:
    """The caller and their token (what a long connection watches for revocation)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("log in first: send Authorization: Bearer <token>")
    return await platform.auth.identify(token.strip())


def error_response(
    error: GliaError, *, status: int | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    status = status or error.http_status
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, headers=headers)


def expected_errors(handler: Handler) -> Handler:
    """Answer a `GliaError` raised before the response starts in the API's error shape."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except GliaError as error:
            return error_response(error)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded
