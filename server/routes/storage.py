"""``/api/storage/CLUSTER/ORG/PROJECT/path``: a storage file's bytes, streamed both ways.

- ``GET`` sends the file; a single ``Range: bytes=a-b`` (``a-``, ``-n``) is answered 206 with
  ``Content-Range``, a range past the end 416.
- ``PUT`` writes it from the request body, streamed to a partial file beside it and renamed
  over it at the end (atomic). ``X-Glia-Sha256`` (hex, of the whole file) is checked before
  the rename: a mismatch is BAD_USER_INPUT and the partial is dropped. A transfer cut short
  keeps its partial: ``?offset=N`` sends the rest, from byte N (``storageUploadOffset`` says
  how many bytes were kept). A body over ``GLIA_STORAGE_UPLOAD_LIMIT_BYTES`` is 413.
  Answers 201 with ``{"entry": StorageEntry}``. ``X-Glia-Mtime`` (seconds since the epoch)
  gives the file that modification time, ``X-Glia-Executable: 1`` makes it executable by
  its owner: a workdir sync (``syncStorageDirectory``) compares both next time.

``/api/storage-archive/CLUSTER/ORG/PROJECT/path`` carries many files of the directory ``path``
as one tar stream (`cluster_gateway.storage_archive`):

- ``PUT``: the body is a tar archive; each member (a file, or a directory) is written below
  ``path`` as a ``PUT`` of it would be: its name checked, at most the upload limit, its
  checksum in its piece's ``GLIA.files`` record (`glia.storage.ARCHIVE_FILES`) verified,
  written atomically; a link or special file is BAD_USER_INPUT. Files before a failure
  stay. Answers 201 with ``{"files", "size"}``.
- ``POST`` with ``{"paths": ["a/b.csv", …]}`` (at most 10,000): a tar archive of those files
  (paths below ``path``), each with its checksum and exact mtime in its piece's record; a
  path that is not a file is left out. ``{"all": true}`` instead: every file below
  ``path``, at any depth, as the server walks it (links, special files and uploads still
  arriving are left out), so a client copies a tree without listing it first.

All authenticate and answer errors as every byte route does (`server.routes.base`); the
path is checked as GraphQL checks a storage URI (`glia.storage`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from control_plane.platform import Platform
from glia.errors import BadInput, PayloadTooLarge
from glia.storage import (
    ARCHIVE_MAX_PATHS,
    Checksum,
    ChecksumTrailer,
    DeclaredChecksum,
    FileType,
    StorageLocation,
    archive_member_path,
    check_name,
    declared_checksum,
    split_path,
)
from server.routes.base import authenticated_user, error_response, expected_errors
from server.routes.monitoring import parse_range

PREFIX = "/api/storage"
ARCHIVE_PREFIX = "/api/storage-archive"
# What a request for an archive may list: 10,000 paths of a few hundred bytes.
ARCHIVE_REQUEST_BYTES = 8 * 1024 * 1024
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


def _mtime(request: Request) -> float | None:
    text = request.headers.get("x-glia-mtime")
    if text is None:
        return None
    try:
        mtime = float(text)
    except ValueError:
        mtime = -1.0
    if not 0 <= mtime < 1e11:
        raise BadInput(
            "X-Glia-Mtime must be seconds since the epoch", fields={"mtime": "not a time"}
        )
    return mtime


def _checksum(request: Request) -> DeclaredChecksum | None:
    """``X-Glia-Checksum: xxh3-128=HEX`` (or ``sha256=HEX``; ``ALGORITHM=trailer`` when the
    digest ends the body), or ``X-Glia-Sha256: HEX``."""
    declared = request.headers.get("x-glia-checksum")
    if declared is not None:
        return declared_checksum(declared)
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
        length = int(declared) if declared is not None and declared.isdigit() else None
        checksum = _checksum(request)
        body: AsyncIterator[bytes] = request.stream()
        if isinstance(checksum, ChecksumTrailer):
            # Content-Length counts the digest too: the file's bytes are before it.
            length = None if length is None else length - checksum.digits
            body = checksum.split(body, length)
        if length is not None and offset + length > limit:
            raise PayloadTooLarge(f"a file may hold at most {limit} bytes")
        try:
            entry = await current.storage.upload(
                user,
                location,
                body,
                offset=offset,
                checksum=checksum,
                mtime=_mtime(request),
                executable=request.headers.get("x-glia-executable") == "1",
                length=length,
            )
        except ClientDisconnect:
            # Nobody is left to answer; the bytes that came are kept for `?offset=`.
            return Response(status_code=400)
        return JSONResponse({"entry": entry.to_wire()}, status_code=201)

    @expected_errors
    async def upload_archive(request: Request) -> Response:
        current = platform()
        user = await authenticated_user(request, current)
        location = _location(request)
        try:
            result = await current.storage.upload_archive(user, location, request.stream())
        except ClientDisconnect:
            return Response(status_code=400)
        return JSONResponse(result.to_wire(), status_code=201)

    @expected_errors
    async def download_archive(request: Request) -> Response:
        current = platform()
        user = await authenticated_user(request, current)
        location = _location(request)
        paths = _archive_paths(await _bounded_body(request, ARCHIVE_REQUEST_BYTES))
        pieces = await current.storage.download_archive(user, location, paths)
        return StreamingResponse(
            pieces,
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
            media_type="application/x-tar",
        )

    path = PREFIX + "/{cluster}/{org}/{project}"
    archive = ARCHIVE_PREFIX + "/{cluster}/{org}/{project}"
    return [
        Route(path + "/{path:path}", download, methods=["GET"]),
        Route(path + "/{path:path}", upload, methods=["PUT"]),
        Route(path, download, methods=["GET"]),
        Route(archive + "/{path:path}", upload_archive, methods=["PUT"]),
        Route(archive, upload_archive, methods=["PUT"]),
        Route(archive + "/{path:path}", download_archive, methods=["POST"]),
        Route(archive, download_archive, methods=["POST"]),
    ]


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request may hold at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the request may hold at most {limit} bytes")
    return bytes(body)


def _archive_paths(body: bytes) -> list[tuple[str, ...]] | None:
    """``{"paths": ["a/b.csv", …]}``: each checked as a storage path, none empty; an empty
    body asks for none; ``{"all": true}`` for every file (None)."""
    if not body.strip():
        return []
    try:
        data = json.loads(body)
    except ValueError:
        raise BadInput(
            'the body must be JSON: {"paths": [...]}', fields={"paths": "not JSON"}
        ) from None
    if isinstance(data, dict) and "all" in data:
        if data["all"] is not True or "paths" in data:
            raise BadInput(
                'ask for {"all": true} or for {"paths": [...]}, not both',
                fields={"all": "true, without paths"},
            )
        return None
    paths = data.get("paths") if isinstance(data, dict) else None
    if not isinstance(paths, list) or len(paths) > ARCHIVE_MAX_PATHS:
        raise BadInput(
            f'the body must be {{"paths": [...]}} with at most {ARCHIVE_MAX_PATHS} paths',
            fields={"paths": "a list of paths"},
        )
    found = [archive_member_path(path, "paths") if isinstance(path, str) else () for path in paths]
    if not all(found):
        raise BadInput("every path names a file below the directory", fields={"paths": "empty"})
    return found
