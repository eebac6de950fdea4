"""A cluster's buckets over HTTP: the routes a cluster gateway serves for the control plane
(`cluster_gateway.remote_blobs` is their client; `cluster_gateway.storage_wire` what both agree
on), over the cluster's own `BlobStore` (the filesystem one under the gateway's data dir).

As the storage routes (``server/storage.py``), they check one thing, first on every request:
that the caller is the control plane. Which user may touch which bucket the control plane has
decided before it calls; buckets here go by their physical name, never a project's.

- ``POST /blobs/<operation>``: `BlobStore`'s metadata operations, a JSON object each way, e.g.
  ``{"bucket", "prefix", "delimiter", "limit", "after"}`` for ``list``.
- ``GET /blobs/object?start=&end=``: the object's bytes ``[start, end)``, streamed; which
  object in the ``X-Glia-Blob`` header (``{"bucket", "key"}``).
- ``PUT /blobs/object``: the body, streamed into `BlobStore.put`; answers 201 with the object.
- ``PUT /blobs/part?uploadId=&number=``: one part of a multipart upload; answers 201 with it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cluster_gateway.blobs.base import BlobStore
from cluster_gateway.server.storage import (
    Authorize,
    arriving,
    flag,
    guard,
    json_object,
    known_operation,
    resumed,
)
from cluster_gateway.storage_wire import (
    BLOB_HEADER,
    BLOB_OPERATIONS,
    BLOBS_PREFIX,
    OBJECT_PATH,
    PART_PATH,
    blob_from_header,
    parse_count,
)
from glia.blobs import DELIMITER, MAX_OBJECT_PAGE, MAX_PARTS, UploadedPart
from glia.errors import BadInput
from glia.model import parse_input

# What a physical bucket name may be here: the control plane makes them (a hex id); anything
# else is refused before the store sees it.
_PHYSICAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# An upload id is the store's own; bounded so that a malformed one never reaches a path.
_UPLOAD_ID = re.compile(r"[A-Za-z0-9._~-]{1,256}")


def blob_routes(store: BlobStore, *, authorize: Authorize) -> list[BaseRoute]:
    """The routes of the module docstring over ``store``; ``authorize`` refuses a request not
    from the control plane by raising a `GliaError` (UNAUTHENTICATED), before anything of it
    is read."""

    async def create_bucket(body: dict[str, Any]) -> Any:
        await store.create_bucket(_bucket(body))
        return {}

    async def delete_bucket(body: dict[str, Any]) -> Any:
        await store.delete_bucket(_bucket(body), force=flag(body, "force"))
        return {}

    async def bucket_exists(body: dict[str, Any]) -> Any:
        return {"exists": await store.bucket_exists(_bucket(body))}

    async def list_objects(body: dict[str, Any]) -> Any:
        prefix = _text(body, "prefix") or ""
        delimiter = _text(body, "delimiter")
        if delimiter not in (None, DELIMITER):
            raise BadInput(f"the delimiter is {DELIMITER!r}", fields={"delimiter": "unsupported"})
        limit = body.get("limit", MAX_OBJECT_PAGE)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
            raise BadInput("limit must be 1 to 10,000", fields={"limit": "out of range"})
        page = await store.list(
            _bucket(body),
            prefix=prefix,
            delimiter=delimiter,
            limit=limit,
            after=_text(body, "after"),
        )
        return page.to_wire()

    async def stat(body: dict[str, Any]) -> Any:
        return (await store.stat(_bucket(body), _key(body))).to_wire()

    async def delete(body: dict[str, Any]) -> Any:
        return {"deleted": await store.delete(_bucket(body), _key(body))}

    async def create_upload(body: dict[str, Any]) -> Any:
        return (await store.create_upload(_bucket(body), _key(body))).to_wire()

    async def complete_upload(body: dict[str, Any]) -> Any:
        listed = body.get("parts")
        if not isinstance(listed, list) or len(listed) > MAX_PARTS:
            raise BadInput(
                f"parts must be a list of at most {MAX_PARTS} parts", fields={"parts": "bad"}
            )
        parts = [parse_input(UploadedPart, part) for part in listed]
        done = await store.complete_upload(_bucket(body), _key(body), _upload_id(body), parts)
        return done.to_wire()

    async def abort_upload(body: dict[str, Any]) -> Any:
        await store.abort_upload(_bucket(body), _key(body), _upload_id(body))
        return {}

    metadata: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
        "create-bucket": create_bucket,
        "delete-bucket": delete_bucket,
        "bucket-exists": bucket_exists,
        "list": list_objects,
        "stat": stat,
        "delete": delete,
        "create-upload": create_upload,
        "complete-upload": complete_upload,
        "abort-upload": abort_upload,
    }
    if set(metadata) != set(BLOB_OPERATIONS):  # one list of operations, and each served
        raise RuntimeError("the bucket routes and storage_wire.BLOB_OPERATIONS disagree")

    async def operation(request: Request) -> Response:
        run = metadata[request.path_params["operation"]]
        return JSONResponse(await run(await json_object(request)))

    def named_object(request: Request) -> tuple[str, str]:
        bucket, key = blob_from_header(request.headers.get(BLOB_HEADER))
        return _checked_bucket(bucket), key

    async def read_object(request: Request) -> Response:
        bucket, key = named_object(request)
        start = parse_count(request.query_params.get("start"), "start") or 0
        end = parse_count(request.query_params.get("end"), "end")
        chunks = aiter(store.get(bucket, key, start, end))
        # The first chunk is read before the answer starts: a missing object answers
        # NOT_FOUND, not a 200 cut short.
        try:
            first: bytes | None = await anext(chunks)
        except StopAsyncIteration:
            first = None
        return StreamingResponse(resumed(first, chunks), media_type="application/octet-stream")

    async def write_object(request: Request) -> Response:
        bucket, key = named_object(request)
        written = await store.put(bucket, key, arriving(request.stream()))
        return JSONResponse(written.to_wire(), status_code=201)

    async def write_part(request: Request) -> Response:
        bucket, key = named_object(request)
        number = parse_count(request.query_params.get("number"), "number")
        if number is None:
            raise BadInput("name the part's number", fields={"number": "missing"})
        upload_id = _checked_upload_id(request.query_params.get("uploadId"))
        part = await store.put_part(bucket, key, upload_id, number, arriving(request.stream()))
        return JSONResponse(part.to_wire(), status_code=201)

    return [
        Route(OBJECT_PATH, guard(authorize, read_object), methods=["GET"]),
        Route(OBJECT_PATH, guard(authorize, write_object), methods=["PUT"]),
        Route(PART_PATH, guard(authorize, write_part), methods=["PUT"]),
        Route(
            f"{BLOBS_PREFIX}/{{operation:str}}",
            guard(authorize, known_operation(operation, BLOB_OPERATIONS)),
            methods=["POST"],
        ),
    ]


def _checked_bucket(bucket: str) -> str:
    if not _PHYSICAL_NAME.fullmatch(bucket):
        raise BadInput(f"invalid bucket {bucket!r}", fields={"bucket": "not a bucket name"})
    return bucket


def _checked_upload_id(upload_id: str | None) -> str:
    if upload_id is None or not _UPLOAD_ID.fullmatch(upload_id):
        raise BadInput("uploadId must be an upload's id", fields={"uploadId": "not an id"})
    return upload_id


def _text(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{field} must be a string", fields={field: "not a string"})
    return value


def _bucket(body: dict[str, Any]) -> str:
    bucket = _text(body, "bucket")
    if bucket is None:
        raise BadInput("name the bucket", fields={"bucket": "missing"})
    return _checked_bucket(bucket)


def _key(body: dict[str, Any]) -> str:
    key = _text(body, "key")
    if key is None:
        raise BadInput("name the object's key", fields={"key": "missing"})
    return key


def _upload_id(body: dict[str, Any]) -> str:
    return _checked_upload_id(_text(body, "uploadId"))
