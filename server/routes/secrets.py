"""``PUT /api/secrets/CLUSTER/ORG/PROJECT/KEY``: set a secret's value, the request body as is.

The value is bytes (binary allowed) up to 1 MiB: a larger body is refused with 413 before it
is read whole. The answer is the secret's metadata (`glia.secrets.Secret`, the API's field
names), 201 for a new secret and 200 for a new value of one that was there. There is no way to
read a value back: no GET here, nothing in the GraphQL schema. A bearer token authenticates,
as on the API; failures have the API's error shape and status, and never quote the body.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from control_plane.platform import Platform
from glia.errors import PayloadTooLarge
from glia.secrets import MAX_VALUE_BYTES, SCHEME
from server.routes.base import authenticated_user, expected_errors

PATH = "/api/secrets/{cluster}/{org}/{project}/{key}"


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"a secret's value is at most {MAX_VALUE_BYTES} bytes (1 MiB)")


async def _value(request: Request) -> bytes:
    """The body, refused past `MAX_VALUE_BYTES` (by its declared length, else as it comes)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_VALUE_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_VALUE_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def routes(platform: Callable[[], Platform]) -> list[Route]:
    @expected_errors
    async def put(request: Request) -> Response:
        current = platform()
        user = await authenticated_user(request, current)
        params = request.path_params
        uri = f"{SCHEME}://" + "/".join(
            (params["cluster"], params["org"], params["project"], params["key"])
        )
        value = await _value(request)
        async with current.db.session() as session:
            secret, created = await current.secrets.put(session, user, uri, value)
        return JSONResponse(secret.to_wire(), status_code=201 if created else 200)

    return [Route(PATH, put, methods=["PUT"])]
