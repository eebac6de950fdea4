"""A cluster's file storage and disks over HTTP: the routes a cluster gateway serves for the
control plane (`cluster_gateway.remote_storage` is their client; `cluster_gateway.storage_wire`
what both agree on).

Only the control plane calls them: a user's request is checked there (their token, the ACL on
the full URI) and its bytes proxied here, so these routes check one thing, first on every
request: that the caller is the control plane (``authorize``, the gateway's trust check).

- ``POST /storage/<operation>``: every metadata operation of `Storage`, a JSON object each
  way; a location is ``{"cluster", "org", "project", "path": [names]}``.
- ``GET /storage/file?offset=&length=``: a file's bytes, streamed; the location in the
  ``X-Glia-Location`` header (JSON). The range is asked as `Storage.read` asks it, not with an
  HTTP ``Range`` header: ``length=0`` (an empty file's download) has no ``Range`` form.
- ``PUT /storage/file?offset=``: the body, streamed into `Storage.write`, with
  ``X-Glia-Checksum`` (``ALGORITHM=HEX``), ``X-Glia-Max-Bytes``, ``X-Glia-Mtime`` and
  ``X-Glia-Executable: 1``; answers 201 with the file's status.
- ``PUT /storage/archive``: a tar stream into `Storage.write_archive`; ``POST
  /storage/archive`` with ``{"location", "paths": [[names]]}``: a tar stream of those files
  (``"paths": null``: every file below the location).
- ``POST /disks/create|delete|used-bytes`` with ``{"diskId", "sizeBytes"}``: the cluster's
  `DiskStore` (`LocalDisks`, or the kubernetes runtime's claims).

An expected failure answers ``{"code", "message", "fields", "details"}`` with its HTTP status
(the client raises the same `glia.errors` class); anything else is logged here and answered
500 without its details.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cluster_gateway import storage_archive
from cluster_gateway.storage import Storage
from cluster_gateway.storage_wire import (
    ARCHIVE_PATH,
    CHECKSUM_HEADER,
    DISK_OPERATIONS,
    DISKS_PREFIX,
    EXECUTABLE_HEADER,
    FILE_PATH,
    LENGTH_HEADER,
    LOCATION_HEADER,
    MAX_BYTES_HEADER,
    MAX_JSON_BYTES,
    MTIME_HEADER,
    OPERATIONS,
    STORAGE_PREFIX,
    error_to_wire,
    location_from_header,
    location_from_wire,
    parse_count,
    parse_mtime,
)
from glia.disks import DiskStore, is_disk_id
from glia.errors import BadInput, Conflict, GliaError, PayloadTooLarge, Unavailable
from glia.model import parse_input
from glia.storage import (
    ARCHIVE_MAX_PATHS,
    ChecksumTrailer,
    StorageLocation,
    SyncFile,
    check_name,
    declared_checksum,
)

logger = logging.getLogger(__name__)

Authorize = Callable[[Request], Awaitable[None]]
Handler = Callable[[Request], Awaitable[Response]]

# How long a write or a resume's `partial_size` waits for an earlier write of the same file to
# end (see `_WritesInFlight`).
SETTLE_S = 10.0
# A written file's next chunk must come within this many seconds (as an archive's must,
# `storage_archive.IDLE_S`), or the transfer counts as broken: a connection cut without a
# word (a half-open TCP connection) must not hold its write, and its file, for ever.
BODY_IDLE_S = storage_archive.IDLE_S


def storage_routes(
    storage: Storage,
    disks: DiskStore | None,
    *,
    authorize: Authorize,
) -> list[BaseRoute]:
    """The routes of the module docstring over ``storage`` and ``disks`` (None: this cluster
    has none, and says so); ``authorize`` refuses a request not from the control plane by
    raising a `GliaError` (UNAUTHENTICATED), before anything of it is read."""
    writes = _WritesInFlight()

    # -- metadata --

    async def stat(body: dict[str, Any]) -> Any:
        follow = flag(body, "follow")
        return (await storage.stat(_location(body), follow=follow)).to_wire()

    async def list_directory(body: dict[str, Any]) -> Any:
        after = body.get("after")
        if after is not None and not isinstance(after, str):
            raise BadInput("after must be a name", fields={"after": "not a string"})
        limit = _count(body, "limit")
        entries, more, total = await storage.list(_location(body), after=after, limit=limit)
        return {"entries": [entry.to_wire() for entry in entries], "more": more, "total": total}

    async def mkdir(body: dict[str, Any]) -> Any:
        parents = flag(body, "parents", default=True)
        return (await storage.mkdir(_location(body), parents=parents)).to_wire()

    async def remove(body: dict[str, Any]) -> Any:
        recursive = flag(body, "recursive")
        return {"removed": await storage.remove(_location(body), recursive=recursive)}

    async def move(body: dict[str, Any]) -> Any:
        source, target = _location(body, "source"), _location(body, "target")
        return (await storage.move(source, target)).to_wire()

    async def copy(body: dict[str, Any]) -> Any:
        source, target = _location(body, "source"), _location(body, "target")
        return (await storage.copy(source, target)).to_wire()

    async def glob(body: dict[str, Any]) -> Any:
        pattern = body.get("pattern")
        if not isinstance(pattern, str):
            raise BadInput("pattern must be a string", fields={"pattern": "not a string"})
        limit = _count(body, "limit")
        return (await storage.glob(_location(body), pattern, limit=limit)).to_wire()

    async def usage(body: dict[str, Any]) -> Any:
        time_limit_s = body.get("timeLimitS")
        if not isinstance(time_limit_s, int | float) or not 0 <= time_limit_s <= 3600:
            raise BadInput(
                "timeLimitS must be seconds, at most an hour", fields={"timeLimitS": "bad"}
            )
        return (await storage.usage(_location(body), time_limit_s=time_limit_s)).to_wire()

    async def disk(body: dict[str, Any]) -> Any:
        cluster = body.get("cluster")
        if not isinstance(cluster, str):
            raise BadInput("cluster must be a name", fields={"cluster": "not a string"})
        return (await storage.disk(cluster)).to_wire()

    async def partial_size(body: dict[str, Any]) -> Any:
        location = _location(body)
        # A resume asks this right after its transfer broke: the write it broke may not have
        # noticed yet, and keeps its bytes only once it does.
        async with writes.settled(location, refuse_busy=False):
            return {"size": await storage.partial_size(location)}

    async def sync_plan(body: dict[str, Any]) -> Any:
        files = body.get("files")
        if not isinstance(files, list):
            raise BadInput("files must be a list", fields={"files": "not a list"})
        wanted = [parse_input(SyncFile, file) for file in files]
        return (await storage.sync_plan(_location(body), wanted)).to_wire()

    metadata: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
        "stat": stat,
        "list": list_directory,
        "mkdir": mkdir,
        "remove": remove,
        "move": move,
        "copy": copy,
        "glob": glob,
        "usage": usage,
        "disk": disk,
        "partial-size": partial_size,
        "sync-plan": sync_plan,
    }

    if set(metadata) != set(OPERATIONS):  # one list of operations, and each served
        raise RuntimeError("the storage routes and storage_wire.OPERATIONS disagree")

    async def operation(request: Request) -> Response:
        run = metadata[request.path_params["operation"]]
        return JSONResponse(await run(await json_object(request)))

    # -- bytes --

    async def read_file(request: Request) -> Response:
        location = location_from_header(request.headers.get(LOCATION_HEADER))
        offset = parse_count(request.query_params.get("offset"), "offset") or 0
        length = parse_count(request.query_params.get("length"), "length")
        chunks = aiter(storage.read(location, offset=offset, length=length))
        # The first chunk is read before the answer starts, so that a missing file or a
        # directory answers its error, not a 200 cut short.
        try:
            first: bytes | None = await anext(chunks)
        except StopAsyncIteration:
            first = None
        return StreamingResponse(resumed(first, chunks), media_type="application/octet-stream")

    async def write_file(request: Request) -> Response:
        location = location_from_header(request.headers.get(LOCATION_HEADER))
        offset = parse_count(request.query_params.get("offset"), "offset") or 0
        declared = request.headers.get(CHECKSUM_HEADER)
        checksum = declared_checksum(declared) if declared is not None else None
        max_bytes = parse_count(request.headers.get(MAX_BYTES_HEADER), "maxBytes")
        mtime = parse_mtime(request.headers.get(MTIME_HEADER))
        executable = request.headers.get(EXECUTABLE_HEADER) == "1"
        length = parse_count(request.headers.get(LENGTH_HEADER), "length")
        body = arriving(request.stream())
        if isinstance(checksum, ChecksumTrailer):
            # The length header counts the file's bytes alone: the digest follows them.
            body = checksum.split(body, length)
        async with writes.settled(location, refuse_busy=True):
            status = await storage.write(
                location,
                body,
                offset=offset,
                checksum=checksum,
                max_bytes=max_bytes,
                mtime=mtime,
                executable=executable,
                length=length,
            )
        return JSONResponse(status.to_wire(), status_code=201)

    async def write_archive(request: Request) -> Response:
        location = location_from_header(request.headers.get(LOCATION_HEADER))
        max_bytes = parse_count(request.headers.get(MAX_BYTES_HEADER), "maxBytes")
        result = await storage.write_archive(location, request.stream(), max_bytes=max_bytes)
        return JSONResponse(result.to_wire(), status_code=201)

    async def read_archive(request: Request) -> Response:
        body = await json_object(request)
        location = _location(body)
        listed = body.get("paths")
        if listed is not None and (not isinstance(listed, list) or len(listed) > ARCHIVE_MAX_PATHS):
            raise BadInput(
                f"paths must be a list of at most {ARCHIVE_MAX_PATHS} paths, or null",
                fields={"paths": "a list of paths"},
            )
        paths = None if listed is None else [_archive_path(path) for path in listed]
        pieces = await storage.read_archive(location, paths)
        return StreamingResponse(pieces, media_type="application/x-tar")

    # -- disks --

    def local_disks() -> DiskStore:
        if disks is None:
            raise Unavailable("this cluster has no disks")
        return disks

    async def disk_operation(request: Request) -> Response:
        store = local_disks()
        body = await json_object(request)
        disk_id = body.get("diskId")
        if not isinstance(disk_id, str) or not is_disk_id(disk_id):
            raise BadInput("diskId must be a disk's id", fields={"diskId": "not a disk id"})
        match request.path_params["operation"]:
            case "create":
                size = body.get("sizeBytes")
                if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                    raise BadInput(
                        "sizeBytes must be a positive number of bytes",
                        fields={"sizeBytes": "not a size"},
                    )
                await store.create(disk_id, size)
                return JSONResponse({}, status_code=201)
            case "delete":
                await store.delete(disk_id)
                return JSONResponse({})
            case _:
                return JSONResponse({"usedBytes": await store.used_bytes(disk_id)})

    operations = "{operation:str}"
    return [
        Route(FILE_PATH, guard(authorize, read_file), methods=["GET"]),
        Route(FILE_PATH, guard(authorize, write_file), methods=["PUT"]),
        Route(ARCHIVE_PATH, guard(authorize, write_archive), methods=["PUT"]),
        Route(ARCHIVE_PATH, guard(authorize, read_archive), methods=["POST"]),
        Route(
            f"{STORAGE_PREFIX}/{operations}",
            guard(authorize, known_operation(operation, OPERATIONS)),
            methods=["POST"],
        ),
        Route(
            f"{DISKS_PREFIX}/{operations}",
            guard(authorize, known_operation(disk_operation, DISK_OPERATIONS)),
            methods=["POST"],
        ),
    ]


def guard(authorize: Authorize, handler: Handler) -> Handler:
    """``handler`` behind the trust check, its expected failures answered as the wire's
    errors and the rest logged and answered 500 without their details."""

    async def guarded_handler(request: Request) -> Response:
        try:
            await authorize(request)
            return await handler(request)
        except GliaError as error:
            return JSONResponse(error_to_wire(error), status_code=error.http_status)
        except ClientDisconnect:
            # Nobody is left to answer; a write kept what came for a resume.
            return Response(status_code=400)
        except Exception:
            logger.exception("cluster gateway route %s failed", request.url.path)
            return JSONResponse(
                {"code": "INTERNAL_SERVER_ERROR", "message": "the cluster gateway failed"},
                status_code=500,
            )

    guarded_handler.__name__ = handler.__name__
    return guarded_handler


def known_operation(handler: Handler, names: Any) -> Handler:
    """``handler`` for the operations in ``names``; 404 for another, as for any unknown path."""

    async def known(request: Request) -> Response:
        if request.path_params["operation"] not in names:
            return JSONResponse(
                {"code": "NOT_FOUND", "message": f"no operation {request.url.path}"},
                status_code=404,
            )
        return await handler(request)

    known.__name__ = handler.__name__
    return known


class _WritesInFlight:
    """One write at a time per file on this gateway, and a resume that waits for the write it
    resumes.

    When the control plane's transfer of a file breaks, the control plane learns it at once
    and the gateway only when its end of the connection closes: for a moment the write that
    broke still runs here, and its partial file is not what it will keep. A write of the same
    file, or the resume's `partial_size`, waits for it (at most `SETTLE_S`); a write that still
    finds it running then is refused (CONFLICT) rather than writing the same partial file at
    once."""

    def __init__(self) -> None:
        self._locks: dict[StorageLocation, asyncio.Lock] = {}
        self._users: dict[StorageLocation, int] = {}

    @contextlib.asynccontextmanager
    async def settled(self, location: StorageLocation, *, refuse_busy: bool) -> AsyncIterator[None]:
        lock = self._locks.setdefault(location, asyncio.Lock())
        self._users[location] = self._users.get(location, 0) + 1
        try:
            try:
                async with asyncio.timeout(SETTLE_S):
                    await lock.acquire()
                held = True
            except TimeoutError:
                if refuse_busy:
                    raise Conflict(
                        f"{location.uri} is being written by another upload: try again later"
                    ) from None
                held = False
            try:
                yield
            finally:
                if held:
                    lock.release()
        finally:
            self._users[location] -= 1
            if not self._users[location]:
                del self._users[location]
                del self._locks[location]


async def arriving(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks``, each within `BODY_IDLE_S` of the one before; a caller gone silent is a
    caller gone (what was written is kept for a resume, as for any broken transfer)."""
    iterator = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(BODY_IDLE_S):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ClientDisconnect() from None
        yield chunk


async def resumed(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is None:
        return
    yield first
    async for chunk in rest:
        yield chunk


async def json_object(request: Request) -> dict[str, Any]:
    declared = parse_count(request.headers.get("content-length"), "content-length")
    if declared is not None and declared > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"a request may hold at most {MAX_JSON_BYTES} bytes of JSON")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"a request may hold at most {MAX_JSON_BYTES} bytes of JSON")
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        raise BadInput("the body must be a JSON object", fields={"body": "not JSON"}) from None
    if not isinstance(data, dict):
        raise BadInput("the body must be a JSON object", fields={"body": "not an object"})
    return data


def _location(body: dict[str, Any], field: str = "location") -> StorageLocation:
    return location_from_wire(body.get(field), field)


def flag(body: dict[str, Any], field: str, *, default: bool = False) -> bool:
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise BadInput(f"{field} must be true or false", fields={field: "not a boolean"})
    return value


def _count(body: dict[str, Any], field: str) -> int:
    value = body.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadInput(f"{field} must be a whole number", fields={field: "not a count"})
    return value


def _archive_path(path: Any) -> tuple[str, ...]:
    if not isinstance(path, list) or not path or not all(isinstance(n, str) for n in path):
        raise BadInput("each path is a list of names", fields={"paths": "not a path"})
    return tuple(check_name(name, "paths") for name in path)
