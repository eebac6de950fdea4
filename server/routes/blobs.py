"""``/api/blob/CLUSTER/ORG/PROJECT/BUCKET/KEY``: objects' bytes, streamed both ways.

- ``GET`` (and ``HEAD``): the object, with one ``Range: bytes=a-b`` answered 206.
- ``PUT``: write the object from the request body, streamed (never held whole); with
  ``?uploadId=U&partNumber=N``, one part of a multipart upload.
- ``POST ?uploads``: start a multipart upload (``{"uploadId", "key"}``); ``POST ?uploadId=U``
  with ``{"parts": [{"number", "etag"}]}``: join the parts into the object.
- ``DELETE``: delete the object (204, whether or not there was one, as S3); with
  ``?uploadId=U``, abort that upload.

Who calls: a bearer token (as the API), an access key (HTTP Basic ``ACCESS_KEY_ID:SECRET``,
`BlobsService.create_credentials`), a signed URL (``X-Glia-Expires`` and ``X-Glia-Signature``,
`BlobsService.sign_url`), or nobody, for the objects of a public bucket. Failures have the
API's error shape and status.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from collections.abc import AsyncIterator, Callable
from email.utils import format_datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from control_plane.platform import Platform
from control_plane.services.blobs import Accessor, BlobsService
from glia.blobs import BlobObject, UploadedPart, parse_blob_uri
from glia.errors import BadInput, PayloadTooLarge, Unauthenticated
from glia.model import parse_input
from server.routes.base import error_response, expected_errors
from server.routes.monitoring import parse_range

# A completion's list of parts: 10,000 of them fit with room to spare.
MAX_COMPLETION_BYTES = 1024 * 1024
PATH = "/api/blob/{cluster}/{org}/{project}/{bucket}/{key:path}"


def _uri(request: Request) -> str:
    params = request.path_params
    return "blob://" + "/".join(
        (params["cluster"], params["org"], params["project"], params["bucket"], params["key"])
    )


async def _accessor(request: Request, platform: Platform) -> Accessor:
    """Who calls, by the request's proof: a signed URL, an access key, a token, or none."""
    blobs = platform.blobs
    query = request.query_params
    if "X-Glia-Signature" in query:
        ref = parse_blob_uri(_uri(request), key=True)
        blobs.check_signature(
            request.method,
            BlobsService.object_path(ref),
            query.get("X-Glia-Expires", ""),
            query["X-Glia-Signature"],
        )
        return blobs.signed_accessor()
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed Basic credentials") from None
        access_key_id, _, secret = decoded.partition(":")
        return await blobs.accessor_for_key(access_key_id, secret)
    if scheme.lower() == "bearer" and credentials.strip():
        return Accessor.of((await platform.auth.identify(credentials.strip())).user)
    if scheme:
        raise Unauthenticated("send Authorization: Bearer <token> or Basic <access key>")
    return Accessor.of(None)


def _object_headers(found: BlobObject) -> dict[str, str]:
    return {
        "ETag": f'"{found.etag}"',
        "Last-Modified": format_datetime(found.modified_at, usegmt=True),
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
    }


def _object_json(found: BlobObject, status: int = 200) -> JSONResponse:
    return JSONResponse(found.to_wire(), status_code=status, headers={"ETag": f'"{found.etag}"'})


def _int(request: Request, name: str) -> int:
    try:
        return int(request.query_params[name])
    except (KeyError, ValueError):
        raise BadInput(f"{name} must be a whole number", fields={name: "not a number"}) from None


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def routes(platform: Callable[[], Platform]) -> list[Route]:
    @expected_errors
    async def read(request: Request) -> Response:
        current = platform()
        who = await _accessor(request, current)
        target, found = await current.blobs.open(who, _uri(request))
        headers = _object_headers(found)
        media_type = mimetypes.guess_type(found.key)[0] or "application/octet-stream"
        try:
            wanted = parse_range(request.headers.get("range"), found.size)
        except ValueError:
            return error_response(
                BadInput(f"the range is outside the object's {found.size} bytes"),
                status=416,
                headers={"Content-Range": f"bytes */{found.size}"},
            )
        status = 200
        start, end = 0, found.size
        if wanted is not None:
            start, end = wanted
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{found.size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media_type)
        key = parse_blob_uri(_uri(request), key=True).key
        assert key is not None
        return StreamingResponse(
            target.store.get(target.physical_name, key, start, end),
            status_code=status,
            headers=headers,
            media_type=media_type,
        )

    @expected_errors
    async def write(request: Request) -> Response:
        current = platform()
        who = await _accessor(request, current)
        uri = _uri(request)
        query = request.query_params
        if "uploadId" in query:
            part = await current.blobs.put_part(
                who, uri, query["uploadId"], _int(request, "partNumber"), _body(request)
            )
            return JSONResponse(part.to_wire(), headers={"ETag": f'"{part.etag}"'})
        return _object_json(await current.blobs.put(who, uri, _body(request)))

    @expected_errors
    async def upload(request: Request) -> Response:
        current = platform()
        who = await _accessor(request, current)
        uri = _uri(request)
        query = request.query_params
        if "uploads" in query:
            made = await current.blobs.create_upload(who, uri)
            return JSONResponse(made.to_wire())
        if "uploadId" not in query:
            raise BadInput("POST ?uploads starts an upload, POST ?uploadId=ID completes one")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_COMPLETION_BYTES:
                raise PayloadTooLarge("the list of parts is over 1 MiB")
        try:
            listed = json.loads(body or b"{}").get("parts")
        except (ValueError, AttributeError):
            raise BadInput('send {"parts": [{"number": 1, "etag": "…"}, …]}') from None
        if not isinstance(listed, list):
            raise BadInput('send {"parts": [{"number": 1, "etag": "…"}, …]}')
        parts = [parse_input(UploadedPart, item) for item in listed]
        done = await current.blobs.complete_upload(who, uri, query["uploadId"], parts)
        return _object_json(done)

    @expected_errors
    async def delete(request: Request) -> Response:
        current = platform()
        who = await _accessor(request, current)
        uri = _uri(request)
        if "uploadId" in request.query_params:
            await current.blobs.abort_upload(who, uri, request.query_params["uploadId"])
            return Response(status_code=204)
        async with current.db.session() as session:
            await current.blobs.delete_object(session, who, uri)
        return Response(status_code=204)

    return [
        Route(PATH, read, methods=["GET"]),
        Route(PATH, write, methods=["PUT"]),
        Route(PATH, upload, methods=["POST"]),
        Route(PATH, delete, methods=["DELETE"]),
    ]
