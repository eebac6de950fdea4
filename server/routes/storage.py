"""``/api/storage/CLUSTER/ORG/PROJECT/path``: a storage file's bytes, streamed both ways.

- ``GET`` sends the file; a single ``Range: bytes=a-b`` (``a-``, ``-n``) is answered 206 with
  ``Content-Range``, a range past the end 416.
- ``PUT`` writes it from the request body, streamed to a partial file beside it and renamed
  over it at the end (atomic). ``X-Glia-Sha256`` (hex, of the whole file) is checked before
  the rename: a mismatch is BAD_USER_INPUT and the partial is dropped. A transfer cut short
  keeps its partial: ``?offset=N`` sends the rest, from byte N (``storageUploadOffset`` says
  how many bytes were kept). A body over ``GLIA_STORAGE_UPLOAD_LIMIT_BYTES`` is 413.
  Answers 201 with ``{"entry": StorageEntry}``.

Both authenticate and answer errors as every byte route does (`server.routes.base`); the
path is checked as GraphQL checks a storage URI (`glia.storage`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from control_plane.platform import Platform
from glia.errors import BadInput, PayloadTooLarge
from glia.storage import Checksum, FileType, StorageLocation, check_name, split_path
from server.routes.base import authenticated_user, error_response, expected_errors
from server.routes.monitoring import parse_range

PREFIX = "/api/storage"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _location(request: Request) -> StorageLocation:
    params = request.path_params
    return StorageLocation(
        cluster=check_name(params["cluster"]),
        org=check_name(params["org"]),
        project=check_name(params["project"]),
        path=split_path(params.get("path", "")),
    )


def _offset(request: Request) -> int:
    try:
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        raise BadInput(
            "offset must be a whole number of bytes", fields={"offset": "not a number"}
        ) from None
    if offset < 0:
        raise BadInput("offset must not be negative", fields={"offset": "negative"})
    return offset


def _checksum(request: Request) -> Checksum | None:
    """``X-Glia-Checksum: xxh3-128=HEX`` (or ``sha256=HEX``), or ``X-Glia-Sha256: HEX``."""
    declared = request.headers.get("x-glia-checksum")
    if declared is not None:
        return Checksum.parse(declared)
    sha256 = request.headers.get("x-glia-sha256")
    if sha256 is None:
        return None
    if not _SHA256.fullmatch(sha256.strip()):
        raise BadInput(
            "X-Glia-Sha256 must be 64 hexadecimal digits", fields={"checksum": "not SHA-256"}
        )
    return Checksum("sha256", sha256.strip().lower())


def routes(platform: Callable[[], Platform]) -> list[Route]:
    @expected_errors
    async def download(request: Request) -> Response:
        current = platform()
        user = await authenticated_user(request, current)
        found = await current.storage.download(user, _location(request))
        if found.status.type is not FileType.FILE:
            raise BadInput(f"{found.status.uri} is not a file", fields={"path": "not a file"})
        size = found.status.size
        headers = {
            "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.status.name)}",
            "Last-Modified": found.status.modified_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }
        try:
            wanted = parse_range(request.headers.get("range"), size)
        except ValueError:
            return error_response(
                BadInput(f"the range is outside the file's {size} bytes"),
                status=416,
                headers={**headers, "Content-Range": f"bytes */{size}"},
            )
        status = 200
        start, end = 0, size
        if wanted is not None:
            start, end = wanted
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        return StreamingResponse(
            found.read(start, end - start),
            status_code=status,
            headers=headers,
            media_type="application/octet-stream",
        )

    @expected_errors
    async def upload(request: Request) -> Response:
        current = platform()
        user = await authenticated_user(request, current)
        location = _location(request)
        offset = _offset(request)
        limit = current.storage.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and offset + int(declared) > limit:
            raise PayloadTooLarge(f"a file may hold at most {limit} bytes")
        try:
            entry = await current.storage.upload(
                user, location, request.stream(), offset=offset, checksum=_checksum(request)
            )
        except ClientDisconnect:
            # Nobody is left to answer; the bytes that came are kept for `?offset=`.
            return Response(status_code=400)
        return JSONResponse({"entry": entry.to_wire()}, status_code=201)

    path = PREFIX + "/{cluster}/{org}/{project}"
    return [
        Route(path + "/{path:path}", download, methods=["GET"]),
        Route(path + "/{path:path}", upload, methods=["PUT"]),
        Route(path, download, methods=["GET"]),
    ]
