"""A remote gateway's byte streams: an exec session and a port-forward's tunnel, each over a
WebSocket of its own to the gateway's byte routes (``server/routes.py``), so that one slow
terminal or tunnel never holds up another, nor the shared subscription WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import httpx
import websockets
from gql.transport.exceptions import TransportError
from websockets.asyncio.client import ClientConnection

from cluster_gateway.exec import CHUNK_BYTES, ExecStream
from cluster_gateway.gateway import GatewayUnreachable
from cluster_gateway.wire import error_from_wire
from glia.errors import GliaError

# What a lost connection looks like, from gql, httpx, websockets and the sockets below them.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    TransportError,
    httpx.TransportError,
    websockets.exceptions.WebSocketException,
    OSError,
    TimeoutError,
)
# What ends a tunnel without anyone to tell: the connection's loss, or a malformed frame.
TUNNEL_ENDS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, ValueError)


class RemoteExecSession:
    """An `ExecSession` over the gateway's exec WebSocket (the frames of server/routes.py);
    ``unreachable`` makes the error for a connection lost midway."""

    def __init__(
        self,
        websocket: ClientConnection,
        *,
        unreachable: Callable[[BaseException], GliaError],
    ) -> None:
        self._unreachable = unreachable
        self._ws = websocket
        self._code: int | None = None

    async def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        while self._code is None:
            try:
                message = await self._ws.recv()
            except websockets.exceptions.ConnectionClosed as closed:
                raise self._closed(closed) from None
            if isinstance(message, bytes):
                if message:
                    yield ExecStream(message[0]), message[1:]
                continue
            control = json.loads(message)
            if isinstance(control, dict) and control.get("type") == "exit":
                self._code = int(control.get("code", 1))

    async def write(self, data: bytes) -> None:
        for start in range(0, max(len(data), 1), CHUNK_BYTES):
            await self._send(data[start : start + CHUNK_BYTES])

    async def close_stdin(self) -> None:
        await self._send(json.dumps({"type": "eof"}))

    async def resize(self, rows: int, cols: int) -> None:
        await self._send(json.dumps({"type": "resize", "rows": rows, "cols": cols}))

    async def wait(self) -> int:
        async for _ in self.output():
            pass
        if self._code is None:  # output() returns only with the exit frame
            raise GatewayUnreachable("the exec ended without its exit code")
        return self._code

    async def close(self) -> None:
        await self._ws.close()

    async def _send(self, message: bytes | str) -> None:
        try:
            await self._ws.send(message)
        except websockets.exceptions.ConnectionClosed as closed:
            raise self._closed(closed) from None

    def _closed(self, closed: websockets.exceptions.ConnectionClosed) -> GliaError:
        if closed.rcvd is not None and closed.rcvd.code >= 4000:
            code = closed.rcvd.reason or "INTERNAL_SERVER_ERROR"
            return error_from_wire(
                {"message": f"the exec failed ({code})", "extensions": {"code": code}}
            )
        return self._unreachable(closed)


async def tunnel(
    websocket: ClientConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Relay the caller's end of a socket pair to the gateway's connect WebSocket."""
    ended = {"job": False, "caller": False}

    async def from_job() -> None:
        async for message in websocket:
            if isinstance(message, bytes):
                writer.write(message)
                await writer.drain()
            elif json.loads(message).get("type") == "eof":
                ended["job"] = True
                if writer.can_write_eof():
                    writer.write_eof()
                if ended["caller"]:
                    return

    async def from_caller() -> None:
        while chunk := await reader.read(CHUNK_BYTES):
            await websocket.send(chunk)
        ended["caller"] = True
        await websocket.send(json.dumps({"type": "eof"}))
        await asyncio.Future()  # from_job ends it

    try:
        tasks = [asyncio.ensure_future(from_job()), asyncio.ensure_future(from_caller())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    except TUNNEL_ENDS:
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await websocket.close()
