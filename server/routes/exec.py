"""WebSocket routes into a running job: exec, attach and port-forward.

The frames, close codes and behaviour (terminal size, Ctrl-C, revocation) are documented in
one place, docs/api.md "Exec, attach and port-forward"; this module and ``sdk/exec.py`` are
its two ends.

- ``/api/jobs/{id}/exec?command=A&command=B[&tty=1&rows=R&cols=C]``: a command in the job;
- ``/api/jobs/{id}/attach``: the job's output from now on, and input for a ``glia run -t`` job;
- ``/api/jobs/{id}/port-forward?port=N``: one TCP connection to the job's port N per WebSocket.

Every route needs a bearer token and write on the job (the stranger's answer is NOT_FOUND,
as for a job that does not exist) and a running job; a failure before the WebSocket is
accepted is answered as HTTP in the API's error shape (the denial response of the ASGI
WebSocket spec), one after it as an error frame and close code 4000 + its status. An open
session ends when its token is revoked or expires, or its caller loses write on the job
(`_access_lost`). Nothing is buffered beyond one frame per direction and the gateway's bounded
queues: a slow client slows its own command or connection, never another. Closing the
WebSocket kills what the exec started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from cluster_gateway.exec_wire import (
    MAX_FRAME_BYTES,
    ClientGone,
    control_message,
    relay_tunnel,
    run_exec,
    terminal_size,
    until_first,
)
from cluster_gateway.gateway import Gateway
from cluster_gateway.trust import acting_user
from control_plane.platform import Platform
from control_plane.services.auth import Identity
from glia.clock import utcnow
from glia.errors import BadInput, Forbidden, GliaError, Unauthenticated
from glia.jobs import Job
from glia.monitoring import LogStream
from server.routes.base import authenticated_identity, error_response

logger = logging.getLogger(__name__)

# How often an open session checks that its caller still may write the job (a revoked or
# expired token ends it at once).
ACCESS_CHECK_S = 1.0


async def _open(websocket: WebSocket, platform: Platform) -> tuple[Identity, Job, Gateway] | None:
    """Authenticate and authorize, or answer the error; None when answered."""
    try:
        identity = await authenticated_identity(websocket, platform)
        job_id = websocket.path_params["job_id"]
        job, gateway = await platform.monitoring.running_job(identity.user, job_id)
        # The session's calls to a remote gateway carry whom they are for (the claim's
        # subject, which the gateway logs). This handler's task owns its context: the value
        # lasts for this connection only.
        acting_user.set(identity.user.name)
        return identity, job, gateway
    except GliaError as error:
        await websocket.send_denial_response(error_response(error))
        return None


async def _access_lost(
    websocket: WebSocket, platform: Platform, identity: Identity, job: Job
) -> None:
    """Wait while the caller may still use the session; raise when they may not: their token
    is revoked (logout, an admin, their user deleted or disabled; in any process: at once) or
    expires (Unauthenticated), or they lost write on the job (Forbidden); the last two are
    checked every `ACCESS_CHECK_S` (the ACL index is in memory, so a check is cheap)."""
    with platform.auth.revocation(identity.token_id) as revoked:
        # Revoked between the first check and now: the revocation evicted the cached identity.
        await authenticated_identity(websocket, platform)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ACCESS_CHECK_S):
                    await revoked.wait()
            if revoked.is_set():
                raise Unauthenticated("the token of this session was revoked: log in again")
            if identity.expires_at <= utcnow():
                raise Unauthenticated("the token of this session has expired: log in again")
            if not await platform.jobs.may_write(identity.user, job):
                raise Forbidden(f"you may no longer write job {job.id}: the session ends")


async def _fail(websocket: WebSocket, error: GliaError) -> None:
    body = {"message": error.message, "extensions": error.extensions}
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", "errors": [body]}))
        await websocket.close(4000 + error.http_status, error.code[:100])


def _int(websocket: WebSocket, name: str) -> int | None:
    value = websocket.query_params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadInput(f"{name} must be a whole number", fields={name: "not a number"}) from None


def routes(platform: Callable[[], Platform]) -> list[WebSocketRoute]:
    async def job_exec(websocket: WebSocket) -> None:
        current = platform()
        opened = await _open(websocket, current)
        if opened is None:
            return
        identity, job, gateway = opened
        try:
            command = websocket.query_params.getlist("command")
            tty = websocket.query_params.get("tty") in ("1", "true")
            rows, cols = _int(websocket, "rows"), _int(websocket, "cols")
            session = await gateway.exec(job.id, command, tty=tty, rows=rows, cols=cols)
        except GliaError as error:
            await websocket.send_denial_response(error_response(error))
            return
        await websocket.accept()
        try:
            await until_first(
                run_exec(websocket, session), _access_lost(websocket, current, identity, job)
            )
        except GliaError as error:
            await _fail(websocket, error)
        except (WebSocketDisconnect, ClientGone):
            pass
        finally:
            await session.close()

    async def job_attach(websocket: WebSocket) -> None:
        current = platform()
        opened = await _open(websocket, current)
        if opened is None:
            return
        identity, job, gateway = opened
        await websocket.accept()
        try:
            await until_first(
                _send_output(websocket, gateway, job),
                _feed_input(websocket, gateway, job),
                _access_lost(websocket, current, identity, job),
            )
        except GliaError as error:
            await _fail(websocket, error)
        except (WebSocketDisconnect, ClientGone):
            pass

    async def job_port_forward(websocket: WebSocket) -> None:
        current = platform()
        opened = await _open(websocket, current)
        if opened is None:
            return
        identity, job, gateway = opened
        try:
            port = _int(websocket, "port")
            if port is None:
                raise BadInput("give the job's port: ?port=N", fields={"port": "missing"})
            reader, writer = await gateway.connect(job.id, port)
        except GliaError as error:
            await websocket.send_denial_response(error_response(error))
            return
        await websocket.accept()
        try:
            await until_first(
                relay_tunnel(websocket, reader, writer),
                _access_lost(websocket, current, identity, job),
            )
        except GliaError as error:
            await _fail(websocket, error)
        except (WebSocketDisconnect, ClientGone):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await websocket.close()

    return [
        WebSocketRoute("/api/jobs/{job_id}/exec", job_exec),
        WebSocketRoute("/api/jobs/{job_id}/attach", job_attach),
        WebSocketRoute("/api/jobs/{job_id}/port-forward", job_port_forward),
    ]


async def _send_output(websocket: WebSocket, gateway: Gateway, job: Job) -> None:
    since = datetime.now(UTC)
    async for batch in gateway.logs(job.id, since=since, follow=True):
        for line in batch.lines():
            stream = 2 if line.stream is LogStream.STDERR else 1
            await websocket.send_bytes(bytes([stream]) + line.text.encode() + b"\n")
    await websocket.send_text(json.dumps({"type": "exit"}))
    await websocket.close()


async def _feed_input(websocket: WebSocket, gateway: Gateway, job: Job) -> None:
    """Binary frames to the job's terminal, resize frames to its size (``glia run -t``;
    CONFLICT for a job without)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if data := message.get("bytes"):
            if len(data) > MAX_FRAME_BYTES:
                raise BadInput(f"a frame is at most {MAX_FRAME_BYTES} bytes")
            await gateway.write_stdin(job.id, data)
        elif (text := message.get("text")) is not None:
            control = control_message(text)
            if control.get("type") == "resize":
                await gateway.resize_terminal(job.id, *terminal_size(control))
            elif control.get("type") == "eof":
                await gateway.write_stdin(job.id, b"\x04")  # the terminal's end of file
            else:
                raise BadInput(f"unknown message type {control.get('type')!r}")
