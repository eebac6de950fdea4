"""The exec WebSocket's frames, served the same way at both ends that serve them: the control
plane's ``/api/jobs/{id}/exec`` and a gateway's ``/jobs/{id}/exec`` (docs/api.md, "Exec,
attach and port-forward", is the format). Written against the ASGI WebSocket's few methods
(`FrameSocket`), so that this module needs no web framework.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from cluster_gateway.exec import ExecSession
from glia.errors import BadInput

# The largest frame a client may send (a stdin chunk, a tunnel's write).
MAX_FRAME_BYTES = 1024 * 1024
# One read of a tunnelled connection: big reads keep the per-frame cost of a fast stream low
# (256 KiB measured best: bench/tunnel.py).
TUNNEL_READ_BYTES = 256 * 1024


class FrameSocket(Protocol):
    """What of a WebSocket (Starlette's) the pumps use."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def send_text(self, data: str) -> None: ...

    async def receive(self) -> Mapping[str, Any]: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class ClientGone(Exception):
    """The client closed the WebSocket."""


def control_message(text: str) -> dict[str, object]:
    """A text frame: a JSON object with a ``type`` (BadInput else)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise BadInput("a text frame is a JSON object with a type")
    return value


def terminal_size(control: Mapping[str, object]) -> tuple[int, int]:
    """The rows and columns of a ``resize`` frame."""
    rows, cols = control.get("rows"), control.get("cols")
    if not isinstance(rows, int) or not isinstance(cols, int):
        raise BadInput("resize needs whole rows and cols")
    return rows, cols


async def until_first(*tasks: Awaitable[None]) -> None:
    """Run the tasks until one ends (or fails), then cancel the others."""
    running = [asyncio.ensure_future(task) for task in tasks]
    try:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def run_exec(socket: FrameSocket, session: ExecSession) -> None:
    """Relay an exec session: its output as binary frames (the stream's byte, then the
    bytes), then its exit code as ``{"type": "exit", "code": N}``; binary frames in are its
    stdin, text frames ``eof`` and ``resize``. Raises ClientGone when the client leaves."""

    async def send_output() -> None:
        async for stream, chunk in session.output():
            await socket.send_bytes(bytes([stream]) + chunk)
        code = await session.wait()
        await socket.send_text(json.dumps({"type": "exit", "code": code}))
        await socket.close()

    async def take_input() -> None:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                raise ClientGone(message.get("code", 1000))
            if (data := message.get("bytes")) is not None:
                if len(data) > MAX_FRAME_BYTES:
                    raise BadInput(f"a frame is at most {MAX_FRAME_BYTES} bytes")
                await session.write(data)
            elif (text := message.get("text")) is not None:
                control = control_message(text)
                if control.get("type") == "eof":
                    await session.close_stdin()
                elif control.get("type") == "resize":
                    await session.resize(*terminal_size(control))
                else:
                    raise BadInput(f"unknown message type {control.get('type')!r}")

    await until_first(send_output(), take_input())


async def relay_tunnel(
    socket: FrameSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Relay a port-forward connection: the job's side as binary frames, then
    ``{"type": "eof"}`` when it closes; binary frames in are written to it, a text ``eof``
    half-closes it. Ends when the client leaves."""
    # A few frames may wait for the job to read them (bounded), so the next frame is taken
    # while one is written (asyncio's default pauses at 64 KiB).
    writer.transport.set_write_buffer_limits(high=4 * MAX_FRAME_BYTES)

    async def upstream() -> None:  # the job's side to the client
        while chunk := await reader.read(TUNNEL_READ_BYTES):
            await socket.send_bytes(chunk)
        await socket.send_text('{"type": "eof"}')
        await asyncio.Future()  # the client may still send: wait for its close

    async def downstream() -> None:  # the client's side to the job
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if (data := message.get("bytes")) is not None:
                if len(data) > MAX_FRAME_BYTES:
                    raise BadInput(f"a frame is at most {MAX_FRAME_BYTES} bytes")
                writer.write(data)
                await writer.drain()
            elif (text := message.get("text")) is not None:
                if control_message(text).get("type") == "eof" and writer.can_write_eof():
                    writer.write_eof()

    await until_first(upstream(), downstream())
