"""The gateway's byte routes: what is bytes, never GraphQL JSON (docs/federation.md).

- ``GET /jobs/{id}/log?offset=N[&length=N]``: ``read_log``'s bytes, streamed.
- ``POST /jobs/{id}/stdin``: the body to the terminal of a job started with ``tty``.
- ``WS /jobs/{id}/exec?command=A&command=B[&tty=1&rows=R&cols=C]``: a command inside the job,
  in the control plane's own exec frames (server/routes/exec.py): client to gateway, binary
  frames are stdin, text frames ``{"type": "resize", "rows", "cols"}`` and ``{"type":
  "eof"}``; gateway to client, binary frames whose first byte is the stream (1 stdout, 2
  stderr), then a text frame ``{"type": "exit", "code": N}`` and a close.
- ``WS /jobs/{id}/connect?port=N``: one TCP connection to the job's port: binary frames are
  its bytes each way, ``{"type": "eof"}`` a half-close, a close its end.

A failure before a WebSocket is accepted is answered as HTTP with the error's status and
``{"message", "extensions": {"code"}}`` (the ASGI denial response), so the caller raises the
same error the gateway did. The claim check is the app's middleware (``app.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Scope
from starlette.websockets import WebSocket, WebSocketDisconnect

from cluster_gateway.exec_wire import (
    MAX_FRAME_BYTES,
    ClientGone,
    relay_tunnel,
    run_exec,
)
from cluster_gateway.gateway import Gateway
from cluster_gateway.trust import Claim
from cluster_gateway.wire import error_to_wire
from glia.errors import BadInput, GliaError

logger = logging.getLogger(__name__)

# Where the claim checked for a request (`trust.Claim`) is in its ASGI scope.
CLAIM_SCOPE_KEY = "glia.claim"
# The largest stdin write, exec input frame or tunnel write a caller may send.


def _acting_for(scope: Scope) -> str:
    """Who the control plane says it acts for (the claim's subject), for the audit log."""
    claim = scope.get(CLAIM_SCOPE_KEY)
    subject = claim.subject if isinstance(claim, Claim) else None
    return subject or "the control plane"


def error_response(error: GliaError) -> JSONResponse:
    return JSONResponse(error_to_wire(error), status_code=error.http_status)


def _int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadInput(f"{name} must be a whole number", fields={name: "not a number"}) from None


def routes(gateway: Gateway) -> list[BaseRoute]:
    async def read_log(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        try:
            offset = _int(request.query_params.get("offset"), "offset") or 0
            length = _int(request.query_params.get("length"), "length")
            chunks = aiter(gateway.read_log(job_id, offset=offset, length=length))
            # The first chunk before the answer's status: an unknown job is a 404, not a
            # 200 that breaks off.
            first = await anext(chunks, b"")
        except GliaError as error:
            return error_response(error)

        async def body() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk

        return StreamingResponse(body(), media_type="application/octet-stream")

    async def write_stdin(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_FRAME_BYTES:
                return error_response(BadInput(f"a write is at most {MAX_FRAME_BYTES} bytes"))
        try:
            await gateway.write_stdin(job_id, bytes(data))
        except GliaError as error:
            return error_response(error)
        return Response(status_code=204)

    async def job_exec(websocket: WebSocket) -> None:
        job_id = websocket.path_params["job_id"]
        params = websocket.query_params
        try:
            session = await gateway.exec(
                job_id,
                params.getlist("command"),
                tty=params.get("tty") in ("1", "true"),
                rows=_int(params.get("rows"), "rows"),
                cols=_int(params.get("cols"), "cols"),
            )
        except GliaError as error:
            await websocket.send_denial_response(error_response(error))
            return
        logger.info("exec in job %s for %s", job_id, _acting_for(websocket.scope))
        await websocket.accept()
        try:
            await run_exec(websocket, session)
        except (WebSocketDisconnect, ClientGone):
            pass
        except GliaError as error:
            with contextlib.suppress(Exception):
                await websocket.close(4000 + error.http_status, error.code[:100])
        finally:
            await session.close()

    async def job_connect(websocket: WebSocket) -> None:
        job_id = websocket.path_params["job_id"]
        try:
            port = _int(websocket.query_params.get("port"), "port")
            if port is None:
                raise BadInput("give the job's port: ?port=N", fields={"port": "missing"})
            reader, writer = await gateway.connect(job_id, port)
        except GliaError as error:
            await websocket.send_denial_response(error_response(error))
            return
        logger.info("port %d of job %s for %s", port, job_id, _acting_for(websocket.scope))
        await websocket.accept()
        try:
            await relay_tunnel(websocket, reader, writer)
        except (WebSocketDisconnect, ClientGone, GliaError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await websocket.close()

    return [
        Route("/jobs/{job_id}/log", read_log, methods=["GET"]),
        Route("/jobs/{job_id}/stdin", write_stdin, methods=["POST"]),
        WebSocketRoute("/jobs/{job_id}/exec", job_exec),
        WebSocketRoute("/jobs/{job_id}/connect", job_connect),
    ]
