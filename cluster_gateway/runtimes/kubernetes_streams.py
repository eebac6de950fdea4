"""Exec and port-forward into a job's pod, through the API server's streaming subresources.

Both are WebSockets to the API server (``pods/exec``, ``pods/portforward``), which carries
them on to the node's kubelet; every message is one channel byte and its payload.

- **exec** speaks ``v5.channel.k8s.io`` (``v4.channel.k8s.io`` from an older API server):
  channel 0 is stdin, 1 stdout, 2 stderr, 3 the end (a ``Status``: ``Success``, or
  ``Failure`` with reason ``NonZeroExitCode`` and the code as the ``ExitCode`` cause), 4 a
  terminal's size (``{"Width", "Height"}``), and with v5 255 closes a stream (``255 0``: end
  of stdin). On v4 stdin cannot be closed alone; `close_stdin` is then a no-op.
- **attach** (a terminal job's input and size: `glia run -t`) is the exec protocol on
  ``pods/attach``, one session per pod kept open for the job's writes and resizes; its output
  is read and dropped (the pod log carries it).
- **port-forward** speaks ``v4.channel.k8s.io`` for one port: channel 0 is the data and 1 the
  errors, each opened by the server with the port number (2 bytes, little-endian). A
  connection the pod refuses arrives as an error message, and the caller's stream ends.

The caller of `connect` gets a real stream pair (a socket pair, one end relayed to the
WebSocket), the shape a local connection has, flow control included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.stream import WsApiClient

from cluster_gateway.exec import CHUNK_BYTES, ExecStream
from glia.errors import Conflict, NotFound, Unavailable

logger = logging.getLogger(__name__)

EXEC_PROTOCOLS = "v5.channel.k8s.io,v4.channel.k8s.io"
PORT_FORWARD_PROTOCOL = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
# What one WebSocket message may hold (aiohttp's own default, said here): a kubelet sends
# its output in reads of at most 32 KiB.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# After the caller's end of a forwarded connection is closed for writing, the pod's answer
# still comes through until it has been silent this long (v4 has no half-close to pass on).
IDLE_AFTER_EOF_S = 30.0
# The Go error text a container runtime wraps when a command exits non-zero and the kubelet
# does not turn it into `NonZeroExitCode` (kwok's local exec, some CRI shims).
_GO_EXIT = re.compile(r"exit status (\d+)\s*$")


def exit_code_of(status: dict[str, Any]) -> int | None:
    """The exit code a ``Status`` on the error channel says; None when it names no code
    (a failure to run the command at all)."""
    if status.get("status") == "Success":
        return 0
    details = status.get("details") or {}
    for cause in details.get("causes") or ():
        if cause.get("reason") == "ExitCode":
            with contextlib.suppress(TypeError, ValueError):
                return int(cause.get("message"))
    found = _GO_EXIT.search(str(status.get("message") or ""))
    return int(found.group(1)) if found else None


class KubernetesStreams:
    """The WebSocket client of one runtime's API server (made on first use, closed with it)."""

    def __init__(self, configuration: client.Configuration) -> None:
        self._configuration = configuration
        self._ws_api: WsApiClient | None = None
        # Port relays in flight: held so that they are not collected mid-way, ended by close.
        self._relays: set[asyncio.Task[None]] = set()
        # Each terminal pod's attach session, and the task draining its output.
        self._terminals: dict[tuple[str, str], tuple[PodExecSession, asyncio.Task[None]]] = {}
        # Two writes at once to a terminal not attached yet attach it once.
        self._attaching = asyncio.Lock()

    @property
    def _api(self) -> Any:
        if self._ws_api is None:
            self._ws_api = WsApiClient(self._configuration)
        return client.CoreV1Api(self._ws_api)

    async def close(self) -> None:
        for namespace, pod in list(self._terminals):
            await self.detach(namespace, pod)
        for relay in list(self._relays):
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        api, self._ws_api = self._ws_api, None
        if api is not None:
            await api.close()

    async def exec(
        self,
        namespace: str,
        pod: str,
        command: Sequence[str],
        *,
        tty: bool,
        rows: int | None,
        cols: int | None,
    ) -> PodExecSession:
        if not command:
            raise Conflict("name the command to run")
        websocket = await self._connect(
            self._api.connect_get_namespaced_pod_exec(
                pod,
                namespace,
                command=list(command),
                stdin=True,
                stdout=True,
                stderr=not tty,  # a terminal's output is one stream
                tty=tty,
                _preload_content=False,
                _headers={"sec-websocket-protocol": EXEC_PROTOCOLS},
            ),
            f"pod {namespace}/{pod}",
        )
        session = PodExecSession(websocket)
        if tty and rows and cols:
            await session.resize(rows, cols)
        return session

    async def terminal(self, namespace: str, pod: str) -> PodExecSession:
        """The pod's terminal (its container's stdin and size), attached on first use and
        kept; one that ended is attached again."""
        key = (namespace, pod)
        async with self._attaching:
            held = self._terminals.get(key)
            if held is not None and not held[1].done():
                return held[0]
            return await self._attach(key)

    async def _attach(self, key: tuple[str, str]) -> PodExecSession:
        namespace, pod = key
        websocket = await self._connect(
            self._api.connect_get_namespaced_pod_attach(
                pod,
                namespace,
                stdin=True,
                stdout=True,
                tty=True,
                _preload_content=False,
                _headers={"sec-websocket-protocol": EXEC_PROTOCOLS},
            ),
            f"pod {namespace}/{pod}",
        )
        session = PodExecSession(websocket)

        async def drain() -> None:
            with contextlib.suppress(Exception):
                async for _ in session.output():
                    pass

        self._terminals[key] = (session, asyncio.create_task(drain()))
        return session

    async def detach(self, namespace: str, pod: str) -> None:
        held = self._terminals.pop((namespace, pod), None)
        if held is not None:
            session, drain = held
            await session.close()
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)

    async def connect(
        self, namespace: str, pod: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        websocket = await self._connect(
            self._api.connect_get_namespaced_pod_portforward(
                pod,
                namespace,
                ports=port,
                _preload_content=False,
                _headers={"sec-websocket-protocol": PORT_FORWARD_PROTOCOL},
            ),
            f"pod {namespace}/{pod}",
        )
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=theirs)
        local_reader, local_writer = await asyncio.open_connection(sock=ours)
        relay = asyncio.create_task(_relay_port(websocket, port, local_reader, local_writer))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)
        return reader, writer

    @staticmethod
    async def _connect(opening: Any, what: str) -> aiohttp.ClientWebSocketResponse:
        # The generated method is a coroutine answering aiohttp's connect manager.
        manager = await opening
        try:
            websocket: aiohttp.ClientWebSocketResponse = await manager
        except aiohttp.WSServerHandshakeError as error:
            if error.status == 404:
                raise NotFound(f"{what} not found") from None
            if error.status in (400, 409):  # e.g. the container is not running
                raise Conflict(f"{what}: {error.message}") from None
            raise Unavailable(f"the API server refused the stream into {what}: {error}") from None
        except aiohttp.ClientError as error:
            raise Unavailable(f"the API server cannot be reached: {error}") from None
        return websocket


class PodExecSession:
    """An `ExecSession` over an exec WebSocket."""

    def __init__(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = websocket
        self._v5 = websocket.protocol == "v5.channel.k8s.io" or _negotiated(websocket) == "v5"
        self._code: int | None = None
        self._failure: str | None = None
        self._ended = False

    async def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        while not self._ended:
            message = await self._ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                self._ended = True
                break
            if message.type is aiohttp.WSMsgType.ERROR:
                self._ended = True
                raise Unavailable(f"the exec stream broke: {self._ws.exception()}")
            data = message.data if isinstance(message.data, bytes) else message.data.encode()
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel in (STDOUT, STDERR) and payload:
                stream = ExecStream.STDOUT if channel == STDOUT else ExecStream.STDERR
                for start in range(0, len(payload), CHUNK_BYTES):
                    yield stream, payload[start : start + CHUNK_BYTES]
            elif channel == ERROR and payload:
                self._status(payload)
        if self._failure is not None:
            yield ExecStream.STDERR, self._failure.encode() + b"\n"
            self._failure = None

    def _status(self, payload: bytes) -> None:
        try:
            status = json.loads(payload)
        except ValueError:
            status = {"status": "Failure", "message": payload.decode(errors="replace")}
        code = exit_code_of(status) if isinstance(status, dict) else None
        if code is None:
            # The command never ran (not found, the container gone): said on stderr, and
            # the exit code a shell gives a command it cannot run.
            self._failure = str(status.get("message") if isinstance(status, dict) else status)
            code = 126
        self._code = code

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), CHUNK_BYTES):
            await self._send(bytes([STDIN]) + data[start : start + CHUNK_BYTES])

    async def close_stdin(self) -> None:
        if self._v5:
            await self._send(bytes([CLOSE, STDIN]))

    async def resize(self, rows: int, cols: int) -> None:
        size = json.dumps({"Width": cols, "Height": rows}).encode()
        await self._send(bytes([RESIZE]) + size)

    async def wait(self) -> int:
        async for _ in self.output():
            pass
        if self._code is None:
            raise Unavailable("the exec stream ended without the command's exit code")
        return self._code

    async def close(self) -> None:
        await self._ws.close()

    async def _send(self, message: bytes) -> None:
        if self._ws.closed:
            raise Conflict("the command has ended")
        try:
            await self._ws.send_bytes(message)
        except (ConnectionError, aiohttp.ClientError) as error:
            raise Unavailable(f"the exec stream broke: {error}") from None


def _negotiated(websocket: aiohttp.ClientWebSocketResponse) -> str | None:
    """The subprotocol the API server chose, from its handshake answer (aiohttp records it
    only when asked through ``protocols=``, which the generated client does not use)."""
    response = getattr(websocket, "_response", None)
    chosen = response.headers.get("Sec-WebSocket-Protocol", "") if response is not None else ""
    return "v5" if chosen.startswith("v5.") else ("v4" if chosen.startswith("v4.") else None)


async def _relay_port(
    websocket: aiohttp.ClientWebSocketResponse,
    port: int,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Relay the caller's end of a socket pair to a port-forward WebSocket, until the pod's
    side ends, or the caller's has and the pod has been silent for `IDLE_AFTER_EOF_S`."""
    opened: set[int] = set()  # the channels whose port-number frame came
    loop = asyncio.get_running_loop()
    heard = loop.time()

    async def from_pod() -> None:
        nonlocal heard
        async for message in websocket:
            heard = loop.time()
            if message.type is not aiohttp.WSMsgType.BINARY or not message.data:
                continue
            channel, payload = message.data[0], message.data[1:]
            if channel not in opened:
                opened.add(channel)
                payload = payload[2:]  # the port number, little-endian
            if not payload:
                continue
            if channel == 0:
                writer.write(payload)
                await writer.drain()
            else:
                logger.info("port-forward to port %d: %s", port, payload.decode(errors="replace"))
                return

    async def from_caller() -> None:
        while chunk := await reader.read(CHUNK_BYTES):
            await websocket.send_bytes(b"\x00" + chunk)
        # A deadline that moves while the pod talks: sleep to it, then look again.
        while (left := heard + IDLE_AFTER_EOF_S - loop.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)

    tasks = [asyncio.ensure_future(from_pod()), asyncio.ensure_future(from_caller())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        with contextlib.suppress(Exception):
            await websocket.close()
