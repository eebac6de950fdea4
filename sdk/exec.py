"""Exec, attach and port-forward: the WebSocket routes the API hands out on a job
(``Job.execUrl``, ``attachUrl``, ``portForwardUrl``; frames in docs/api.md).

    async with client.exec.open("my-job", ["python", "-V"]) as session:
        async for stream, chunk in session.output(): ...
        code = session.exit_code

    async with client.exec.forward("my-job", {8080: 8888}) as tunnel:  # 127.0.0.1:8080
        await tunnel.serve_forever()

Port-forward opens one WebSocket per TCP connection accepted on the local port.
Imported on first use: a command that does not exec does not load websockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence  # noqa: F401
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sdk import documents
from sdk.errors import (
    BadInput,
    ConnectionFailed,
    Forbidden,
    GliaError,
    NotFound,
    Unauthenticated,
)
from sdk.resource import Resource

STDOUT = 1
STDERR = 2
# Frames waiting to be sent or read: websockets' own bounded queues, at most this large.
MAX_FRAME_BYTES = 1024 * 1024
READ_BYTES = 256 * 1024


class ExecSession:
    """A command running inside a job, over its WebSocket."""

    def __init__(self, websocket: ClientConnection) -> None:
        self._ws = websocket
        self.exit_code: int | None = None

    async def output(self) -> AsyncGenerator[tuple[int, bytes], None]:
        """``(stream, bytes)`` until the command ends (``exit_code`` is then set)."""
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    if message:
                        yield message[0], message[1:]
                    continue
                frame = json.loads(message)
                if frame.get("type") == "exit":
                    code = frame.get("code")
                    self.exit_code = code if isinstance(code, int) else None
                    return
                if frame.get("type") == "error":
                    from sdk.errors import error_from_graphql

                    raise error_from_graphql(frame.get("errors") or [])
        except ConnectionClosed as exc:
            raise ConnectionFailed(f"the exec connection closed: {exc}") from None

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), MAX_FRAME_BYTES):
            await self._ws.send(data[start : start + MAX_FRAME_BYTES])

    async def close_stdin(self) -> None:
        await self._ws.send(json.dumps({"type": "eof"}))

    async def resize(self, rows: int, cols: int) -> None:
        await self._ws.send(json.dumps({"type": "resize", "rows": rows, "cols": cols}))


class Tunnel:
    """Local listeners whose connections are carried to a job's ports."""

    def __init__(self, servers: list[asyncio.Server], ended: asyncio.Future[None]) -> None:
        self.servers = servers
        self._ended = ended

    @property
    def ports(self) -> list[int]:
        return [server.sockets[0].getsockname()[1] for server in self.servers]

    async def serve_forever(self) -> None:
        """Serve until cancelled, or raise the error that ends the whole tunnel: the token
        was revoked or expired, or the caller may no longer write the job (one connection's
        refusal or close said so; other failures end only that connection)."""
        serving: asyncio.Future[Any] = asyncio.gather(
            *(server.serve_forever() for server in self.servers)
        )
        try:
            await asyncio.wait([serving, self._ended], return_when=asyncio.FIRST_COMPLETED)
            if self._ended.done():
                self._ended.result()
            await serving
        finally:
            serving.cancel()
            with contextlib.suppress(BaseException):
                await serving


class ExecResource(Resource):
    async def _url(self, ref: str, field: str) -> str:
        data = await self._client.execute(
            documents.JOB_STREAM_URLS, {"id": await self._client.jobs.resolve(ref)}
        )
        url: str = data["job"][field]
        return url

    @contextlib.asynccontextmanager
    async def _connect(self, url: str) -> AsyncIterator[ClientConnection]:
        try:
            async with connect(
                url,
                additional_headers=self._client._headers(),
                max_size=2 * MAX_FRAME_BYTES,
                open_timeout=self._client.timeout,
                compression=None,
            ) as websocket:
                yield websocket
        except InvalidStatus as exc:
            from sdk.client import _byte_route_error

            body = bytes(exc.response.body or b"")
            raise _byte_route_error(exc.response.status_code, body) from None
        except (OSError, TimeoutError) as exc:
            raise ConnectionFailed(f"cannot reach {url}: {exc}") from None

    @contextlib.asynccontextmanager
    async def open(
        self,
        ref: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        rows: int | None = None,
        cols: int | None = None,
    ) -> AsyncIterator[ExecSession]:
        """Run ``command`` inside the running job ``ref`` (write on it); with ``tty``, under a
        terminal of ``rows`` x ``cols``. Leaving the block kills what it started."""
        if not command:
            raise BadInput("give a command to run", fields={"command": "empty"})
        query: list[tuple[str, Any]] = [("command", arg) for arg in command]
        if tty:
            query.append(("tty", "1"))
            if rows and cols:
                query += [("rows", rows), ("cols", cols)]
        url = await self._url(ref, "execUrl") + "?" + urlencode(query)
        async with self._connect(url) as websocket:
            yield ExecSession(websocket)

    @contextlib.asynccontextmanager
    async def attach(self, ref: str) -> AsyncIterator[ExecSession]:
        """The running job's output from now on (``session.output()``: ``(stream, bytes)``
        a line at a time, until it ends); ``session.write`` feeds the terminal of a job run
        with ``tty`` (Conflict for another)."""
        async with self._connect(await self._url(ref, "attachUrl")) as websocket:
            yield ExecSession(websocket)

    @contextlib.asynccontextmanager
    async def forward(
        self, ref: str, ports: Mapping[int, int], *, host: str = "127.0.0.1"
    ) -> AsyncIterator[Tunnel]:
        """Listen on ``host``'s local ports (keys; 0 for any free one) and carry each
        connection to the job's port (values), one WebSocket per connection."""
        url = await self._url(ref, "portForwardUrl")
        servers: list[asyncio.Server] = []
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            for local, remote in ports.items():
                target = f"{url}?port={remote}"

                async def handle(
                    reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter,
                    target: str = target,
                ) -> None:
                    await self._carry(target, reader, writer, ended)

                servers.append(await asyncio.start_server(handle, host, local))
            yield Tunnel(servers, ended)
        finally:
            for server in servers:
                server.close()
            if ended.done() and not ended.cancelled():
                ended.exception()  # retrieved: nobody served the tunnel to see it
            ended.cancel()

    async def _carry(
        self,
        url: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ended: asyncio.Future[None],
    ) -> None:
        try:
            async with self._connect(url) as websocket:
                await relay(websocket, reader, writer)
        except (Unauthenticated, Forbidden, NotFound) as exc:
            # No later connection would be let through either: the whole tunnel ends.
            if not ended.done():
                ended.set_exception(exc)
        except GliaError as exc:
            # The client of the local port sees its connection closed; say why once.
            import sys

            print(f"glia: port-forward: {exc.message}", file=sys.stderr)
        finally:
            writer.close()


async def relay(
    websocket: ClientConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Carry bytes between a local TCP connection and a port-forward WebSocket until both
    sides have ended (a half-close travels as ``{"type": "eof"}``)."""

    # Room for a few frames in the local socket's buffer: the next frame is read while this
    # one is being sent, rather than after (asyncio's default pauses at 64 KiB).
    writer.transport.set_write_buffer_limits(high=4 * MAX_FRAME_BYTES)

    async def up() -> None:
        while chunk := await reader.read(READ_BYTES):
            await websocket.send(chunk)
        await websocket.send('{"type": "eof"}')

    async def down() -> None:
        async for message in websocket:
            if isinstance(message, bytes):
                writer.write(message)
                await writer.drain()
                continue
            frame = json.loads(message)
            if frame.get("type") == "eof":
                if writer.can_write_eof():
                    writer.write_eof()
                return
            if frame.get("type") == "error":
                from sdk.errors import error_from_graphql

                raise error_from_graphql(frame.get("errors") or [])

    sending = asyncio.ensure_future(up())
    try:
        await down()  # the job's side ended (or the WebSocket closed)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(sending), 5)
    except ConnectionClosed:
        pass
    finally:
        sending.cancel()
        with contextlib.suppress(BaseException):
            await sending
