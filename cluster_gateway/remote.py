"""The control plane's client for a cluster gateway in its own process (``glia gateway serve``).

`RemoteGateway` is a `Gateway` like the embedded one, and passes the same contract suite. It
speaks the gateway's subgraph with gql: queries and mutations over HTTP, every watch, log
reader and telemetry reader as a subscription on ONE shared WebSocket (graphql-transport-ws),
made again when it drops; bytes (``read_log``, exec, port-forward, a terminal's input) go to
the gateway's byte routes. Every call carries a claim signed with the cluster's secret
(``trust.py``), and the user the control plane acts for (`trust.acting_as`) as its subject.

Failure: a call that cannot reach the gateway, or gets no answer within ``timeout_s``, raises
`GatewayUnreachable` (an `Unavailable`). A watch outlives the connection: it subscribes again
from the cursor of the last event it received (with backoff, until the gateway answers or the
watch is closed), and the watcher sees nothing of it, unless the gateway restarted in
between, when the resumed watch raises `WatchExpired` and the watcher relists as the protocol
says. Log and telemetry readers end with `GatewayUnreachable` when the connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import websockets
from gql import Client, GraphQLRequest, gql
from gql.client import AsyncClientSession
from gql.transport.exceptions import (
    TransportQueryError,
    TransportServerError,
)
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import ClientConnection

from cluster_gateway.exec import ExecSession
from cluster_gateway.gateway import (
    ClusterCapacity,
    GatewayUnreachable,
    JobIsolation,
    WatchExpired,
    WorkloadEvent,
    WorkloadSpec,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.remote_blobs import RemoteBlobStore
from cluster_gateway.remote_bytes import CONNECTION_ERRORS, RemoteExecSession, tunnel
from cluster_gateway.remote_storage import RemoteDisks, RemoteStorage
from cluster_gateway.trust import claim_header, sign_claim
from cluster_gateway.wire import (
    batch_from_wire,
    error_from_wire,
    spec_to_wire,
    state_from_wire,
    tick_from_wire,
)
from glia.errors import GliaError, Unauthenticated
from glia.monitoring import LogBatch, check_log_start
from glia.telemetry import TelemetryTick

logger = logging.getLogger(__name__)

# A call gets no answer within this: the gateway is taken to be unreachable.
DEFAULT_TIMEOUT_S = 5.0
# Opening a connection (TCP, and the WebSocket's handshakes) takes at most this.
CONNECT_TIMEOUT_S = 3.0
# The shared WebSocket is pinged this often; one pong missing this long drops it (a stopped
# or cut-off gateway is noticed within their sum, and its watches start resuming).
PING_INTERVAL_S = 2.0
PING_TIMEOUT_S = 3.0
# A dropped watch subscribes again after these pauses (doubling up to the last).
RESUME_FIRST_S = 0.1
RESUME_MAX_S = 2.0
# Events a watcher may leave unread before its watch raises WatchExpired (as the feed's).
WATCH_QUEUE_LIMIT = 10_000
# Log batches (each at most 64 KiB of text) a log reader may leave unread: past these its
# subscription pauses, and resumes from where it was once the reader has caught up.
LOG_BATCHES = 16
# A log reader whose connection dropped gives up when the gateway is back within none of this.
LOG_RESUME_WITHIN_S = 30.0
# Frames each WebSocket holds for a slow reader before the gateway waits on it; a frame is
# at most a log batch (64 KiB of text) or an exec chunk.
WS_QUEUE_FRAMES = 16
WS_MAX_FRAME_BYTES = 4 * 1024 * 1024

_CAPACITY = gql("query Capacity { capacity }")
_ISOLATION = gql("query Isolation { isolation }")
_STATES = gql("query States($jobIds: [String!]!) { states(jobIds: $jobIds) }")
_ACTIVE = gql("query Active { activeWorkloads }")
_LOG_SIZE = gql("query LogSize($jobId: String!) { logSize(jobId: $jobId) }")
_START = gql("mutation Start($spec: JSON!) { start(spec: $spec) }")
_STOP = gql(
    "mutation Stop($jobId: String!, $grace: Float!) { stop(jobId: $jobId, graceSeconds: $grace) }"
)
_LIFE_SPAN = gql(
    "mutation LifeSpan($jobId: String!, $s: Float) "
    "{ setLifeSpan(jobId: $jobId, lifeSpanSeconds: $s) }"
)
_FORGET = gql("mutation Forget($jobId: String!) { forget(jobId: $jobId) }")
_RESIZE = gql(
    "mutation Resize($jobId: String!, $rows: Int!, $cols: Int!) "
    "{ resizeTerminal(jobId: $jobId, rows: $rows, cols: $cols) }"
)
_WATCH = gql("subscription Watch($after: String) { watch(after: $after) }")
_LOGS = gql(
    "subscription Logs($jobId: String!, $since: DateTime, $offset: Float, $tail: Int, "
    "$follow: Boolean!) "
    "{ logs(jobId: $jobId, since: $since, offset: $offset, tail: $tail, follow: $follow) }"
)
_TELEMETRY = gql("subscription Telemetry($jobId: String) { telemetry(jobId: $jobId) }")


class _ClaimAuth(httpx.Auth):
    """A fresh claim on every request (a claim lives for seconds, a client for days)."""

    def __init__(self, secret: str, cluster: str) -> None:
        self._secret = secret
        self._cluster = cluster

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {sign_claim(self._secret, self._cluster)}"
        yield request


class RemoteGateway:
    """``Gateway`` of cluster ``name`` whose ``glia gateway serve`` is at ``url``
    (``http://host:port``), trusted with the ``secret`` the two share."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        if not secret:
            raise ValueError(f"cluster {name}: a remote gateway needs its shared secret")
        self.name = name
        self.url = url.rstrip("/")
        self._secret = secret
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._ws_url = "ws" + self.url.removeprefix("http")
        self._http: httpx.AsyncClient | None = None
        self._gql_client: Client | None = None
        self._gql: AsyncClientSession | None = None
        self._channel = _Channel(self)
        self._watches: set[_RemoteWatch] = set()
        self._tunnels: set[asyncio.Task[None]] = set()
        self._opening = asyncio.Lock()
        self._closed = False
        # The cluster's files, disks and buckets, through the same gateway and claims: what
        # the control plane registers as the cluster's `Storage`, disk and bucket stores.
        claims = functools.partial(claim_header, secret, name)
        self.storage = RemoteStorage(self.url, headers=claims, cluster=name)
        self.disks = RemoteDisks(self.url, headers=claims, cluster=name)
        self.blobs = RemoteBlobStore(self.url, headers=claims, cluster=name)

    def __repr__(self) -> str:  # the secret stays out of every repr and log
        return f"RemoteGateway({self.name!r}, {self.url!r})"

    # -- life cycle

    async def open(self) -> None:
        async with self._opening:
            self._closed = False
            if self._gql is not None:
                return
            timeout = httpx.Timeout(self._timeout_s, connect=self._connect_timeout_s)
            auth = _ClaimAuth(self._secret, self.name)
            self._http = httpx.AsyncClient(base_url=self.url, auth=auth, timeout=timeout)
            transport = HTTPXAsyncTransport(url=f"{self.url}/graphql", auth=auth, timeout=timeout)
            client = Client(
                transport=transport,
                fetch_schema_from_transport=False,
                execute_timeout=self._timeout_s,
            )
            self._gql = await client.connect_async()
            self._gql_client = client

    async def close(self) -> None:
        """End every watch (after the events already received), tunnel and connection."""
        self._closed = True
        for watch in list(self._watches):
            await watch.close()
        for task in list(self._tunnels):
            task.cancel()
        await asyncio.gather(*self._tunnels, return_exceptions=True)
        await self._channel.close()
        if self._gql_client is not None:
            with contextlib.suppress(Exception):
                await self._gql_client.close_async()
        if self._http is not None:
            await self._http.aclose()
        self._gql = self._gql_client = self._http = None
        await self.storage.aclose()
        await self.disks.aclose()
        await self.blobs.close()

    # -- queries and mutations

    async def capacity(self) -> ClusterCapacity:
        return ClusterCapacity.model_validate((await self._call(_CAPACITY))["capacity"])

    async def isolation(self) -> JobIsolation:
        return JobIsolation.model_validate((await self._call(_ISOLATION))["isolation"])

    async def start(self, spec: WorkloadSpec) -> WorkloadState:
        return state_from_wire((await self._call(_START, spec=spec_to_wire(spec)))["start"])

    async def stop(self, job_id: str, *, grace_s: float = 10.0) -> None:
        await self._call(_STOP, jobId=job_id, grace=grace_s)

    async def set_life_span(self, job_id: str, life_span_s: float | None) -> None:
        await self._call(_LIFE_SPAN, jobId=job_id, s=life_span_s)

    async def states(self, job_ids: Sequence[str]) -> list[WorkloadState]:
        data = await self._call(_STATES, jobIds=list(job_ids))
        return [state_from_wire(item) for item in data["states"]]

    async def active_workloads(self) -> list[WorkloadState]:
        return [state_from_wire(item) for item in (await self._call(_ACTIVE))["activeWorkloads"]]

    async def log_size(self, job_id: str) -> int:
        return int((await self._call(_LOG_SIZE, jobId=job_id))["logSize"])

    async def forget(self, job_id: str) -> None:
        await self._call(_FORGET, jobId=job_id)

    # -- subscriptions

    def watch(self, *, after: str | None = None) -> AbstractAsyncContextManager[WorkloadWatch]:
        return self._watch(after)

    @contextlib.asynccontextmanager
    async def _watch(self, after: str | None) -> AsyncIterator[WorkloadWatch]:
        watch = _RemoteWatch(self, after)
        await watch.open()
        self._watches.add(watch)
        try:
            yield watch
        finally:
            self._watches.discard(watch)
            await watch.close()

    async def logs(
        self,
        job_id: str,
        *,
        since: datetime | None = None,
        offset: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogBatch]:
        check_log_start(since, offset, tail)
        reader = _LogReader(self, job_id, since=since, offset=offset, tail=tail, follow=follow)
        try:
            while (batch := await reader.next()) is not None:
                yield batch
        finally:
            await reader.close()

    async def telemetry(self, job_id: str | None = None) -> AsyncGenerator[TelemetryTick, None]:
        """One job's ticks end with `GatewayUnreachable` when the connection drops; the
        cluster's feed (no ``job_id``) subscribes again until this gateway is closed (the
        ticks of the cut are lost, as for any reader that falls behind)."""
        pause = RESUME_FIRST_S
        while True:
            try:
                async for data in self._subscribe(_TELEMETRY, {"jobId": job_id}):
                    pause = RESUME_FIRST_S
                    yield tick_from_wire(data["telemetry"])
                if job_id is not None:
                    return
            except GatewayUnreachable:
                if job_id is not None or self._closed:
                    raise
            if self._closed:
                return
            await asyncio.sleep(pause)
            pause = min(2 * pause, RESUME_MAX_S)

    # -- byte routes

    async def read_log(
        self, job_id: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        params: dict[str, int] = {"offset": offset}
        if length is not None:
            params["length"] = length
        http = await self._client()
        try:
            async with http.stream("GET", f"/jobs/{_segment(job_id)}/log", params=params) as got:
                if got.status_code != 200:
                    raise self._refused(got.status_code, await got.aread())
                async for chunk in got.aiter_bytes():
                    yield chunk
        except CONNECTION_ERRORS as error:
            raise self._unreachable(error) from None

    async def write_stdin(self, job_id: str, data: bytes) -> None:
        http = await self._client()
        try:
            got = await http.post(f"/jobs/{_segment(job_id)}/stdin", content=data)
        except CONNECTION_ERRORS as error:
            raise self._unreachable(error) from None
        if got.status_code != 204:
            raise self._refused(got.status_code, got.content)

    async def resize_terminal(self, job_id: str, rows: int, cols: int) -> None:
        await self._call(_RESIZE, jobId=job_id, rows=rows, cols=cols)

    async def exec(
        self,
        job_id: str,
        command: Sequence[str],
        *,
        tty: bool = False,
        rows: int | None = None,
        cols: int | None = None,
    ) -> ExecSession:
        query: list[tuple[str, str]] = [("command", part) for part in command]
        if tty:
            query.append(("tty", "1"))
        query += [(k, str(v)) for k, v in (("rows", rows), ("cols", cols)) if v is not None]
        websocket = await self._open_ws(f"/jobs/{_segment(job_id)}/exec", query)
        return RemoteExecSession(websocket, unreachable=self._unreachable)

    async def connect(
        self, job_id: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        websocket = await self._open_ws(f"/jobs/{_segment(job_id)}/connect", [("port", str(port))])
        # The caller gets a real stream pair (a socket pair), one end of which this gateway
        # relays to the WebSocket: the same shape as a local connection, flow control included.
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=theirs)
        local_reader, local_writer = await asyncio.open_connection(sock=ours)
        task = asyncio.create_task(tunnel(websocket, local_reader, local_writer))
        self._tunnels.add(task)
        task.add_done_callback(self._tunnels.discard)
        return reader, writer

    # -- the wire

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            await self.open()
        if self._http is None:
            raise GatewayUnreachable(f"cluster {self.name}'s gateway client is closed")
        return self._http

    async def _call(self, document: Any, **variables: Any) -> dict[str, Any]:
        if self._gql is None:
            await self.open()
        session = self._gql
        if session is None:
            raise GatewayUnreachable(f"cluster {self.name}'s gateway client is closed")
        try:
            result: dict[str, Any] = await session.execute(
                GraphQLRequest(document, variable_values=variables)
            )
        except TransportQueryError as error:
            raise _graphql_error(error) from None
        except TransportServerError as error:
            if error.code == 401:
                raise self._refused(401, b"") from None
            raise self._unreachable(error) from None
        except CONNECTION_ERRORS as error:
            raise self._unreachable(error) from None
        return result

    async def _subscribe(
        self, document: Any, variables: Mapping[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        session = await self._channel.session()
        request = GraphQLRequest(document, variable_values=dict(variables))
        try:
            # Closed explicitly, so that a reader that stops early ends the subscription on
            # the gateway at once (gql sends `complete`), not whenever it is collected.
            async with contextlib.aclosing(session.subscribe(request)) as results:
                async for data in results:
                    yield data
        except TransportQueryError as error:
            raise _graphql_error(error) from None
        except CONNECTION_ERRORS as error:
            await self._channel.dropped(session)
            raise self._unreachable(error) from None

    async def _open_ws(self, path: str, query: list[tuple[str, str]]) -> ClientConnection:
        url = f"{self._ws_url}{path}?{urlencode(query)}"
        claim = sign_claim(self._secret, self.name)
        try:
            return await websockets.connect(
                url,
                additional_headers={"Authorization": f"Bearer {claim}"},
                open_timeout=self._connect_timeout_s,
                ping_interval=PING_INTERVAL_S,
                ping_timeout=PING_TIMEOUT_S,
                max_queue=WS_QUEUE_FRAMES,
                max_size=WS_MAX_FRAME_BYTES,
            )
        except websockets.exceptions.InvalidStatus as refused:
            raise self._refused(refused.response.status_code, refused.response.body) from None
        except CONNECTION_ERRORS as error:
            raise self._unreachable(error) from None

    def _unreachable(self, error: BaseException) -> GatewayUnreachable:
        """What a failed connection means to the caller: GatewayUnreachable, unless the
        caller's task is being cancelled. gql turns a cancellation that lands while it
        connects into a connection error; a caller that retries on GatewayUnreachable (a
        feed that resubscribes) would then never end, and a TaskGroup waiting for it hangs."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError from error
        reason = type(error).__name__ if not str(error) else f"{type(error).__name__}: {error}"
        return GatewayUnreachable(
            f"cluster {self.name}'s gateway at {self.url} did not answer ({reason[:200]})"
        )

    def _refused(self, status: int, body: bytes | bytearray | None) -> GliaError:
        if status == 401:
            # The gateway does not take this control plane's claims: a wrong or rotated
            # secret, or another cluster behind that address.
            return Unauthenticated(
                f"cluster {self.name}'s gateway at {self.url} refused the control plane's "
                "claim: check the secret it was registered with"
            )
        try:
            wire = json.loads(body or b"")
        except ValueError:
            wire = None
        if not isinstance(wire, dict):
            return self._unreachable(RuntimeError(f"HTTP {status}"))
        return error_from_wire(wire)


def _segment(job_id: str) -> str:
    return quote(job_id, safe="")


def _graphql_error(error: TransportQueryError) -> GliaError:
    errors = error.errors or []
    return error_from_wire(errors[0] if errors else {"message": str(error)})


class _Channel:
    """The one WebSocket that carries every subscription to a gateway, made on first use and
    again after it dropped; a dropped one ends the subscriptions it carried."""

    def __init__(self, gateway: RemoteGateway) -> None:
        self._gateway = gateway
        self._client: Client | None = None
        self._session: AsyncClientSession | None = None
        self._transport: WebsocketsTransport | None = None
        self._lock = asyncio.Lock()

    async def session(self) -> AsyncClientSession:
        async with self._lock:
            if self._session is not None:
                # A connection that failed while nothing listened on it (gql records why it
                # closed) is made again here rather than failing the next subscriber.
                if self._transport is not None and self._transport.close_exception is None:
                    return self._session
                await self._close_locked()
            gateway = self._gateway
            claim = sign_claim(gateway._secret, gateway.name)
            transport = WebsocketsTransport(
                url=f"{gateway._ws_url}/graphql",
                headers={"Authorization": f"Bearer {claim}"},
                init_payload={"claim": claim},
                subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
                connect_timeout=gateway._connect_timeout_s,
                ack_timeout=gateway._connect_timeout_s,
                close_timeout=1,
                connect_args={
                    "ping_interval": PING_INTERVAL_S,
                    "ping_timeout": PING_TIMEOUT_S,
                    "max_queue": WS_QUEUE_FRAMES,
                    "max_size": WS_MAX_FRAME_BYTES,
                },
            )
            client = Client(transport=transport, fetch_schema_from_transport=False)
            try:
                async with asyncio.timeout(2 * gateway._connect_timeout_s):
                    session = await client.connect_async()
            except TransportServerError as error:
                if error.code == 401:
                    raise gateway._refused(401, b"") from None
                raise gateway._unreachable(error) from None
            except CONNECTION_ERRORS as error:
                with contextlib.suppress(Exception):
                    await client.close_async()
                refused = error.__cause__  # gql wraps the handshake's answer
                if isinstance(refused, websockets.exceptions.InvalidStatus):
                    status = refused.response.status_code
                    raise gateway._refused(status, refused.response.body) from None
                raise gateway._unreachable(error) from None
            self._client, self._session, self._transport = client, session, transport
            return session

    async def dropped(self, session: AsyncClientSession) -> None:
        """``session`` failed: the next subscription opens a new connection."""
        async with self._lock:
            if session is self._session:
                await self._close_locked()

    async def close(self) -> None:
        async with self._lock:
            await self._close_locked()

    async def _close_locked(self) -> None:
        client, self._client, self._session, self._transport = self._client, None, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close_async()


class _RemoteWatch:
    """A watch over the shared WebSocket that resumes from its last cursor when it drops."""

    def __init__(self, gateway: RemoteGateway, after: str | None) -> None:
        self._gateway = gateway
        self._cursor = after or ""
        self._resume = after  # where a new subscription starts: the last event's cursor
        self._events: deque[WorkloadEvent] = deque()
        self._wakeup = asyncio.Event()
        self._failure: GliaError | None = None
        self._ended = False
        self._task: asyncio.Task[None] | None = None

    @property
    def cursor(self) -> str:
        return self._cursor

    async def open(self) -> None:
        """Subscribe, and return once the gateway has entered its watch (the handshake)."""
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._pump(opened))
        try:
            async with asyncio.timeout(self._gateway._timeout_s):
                await asyncio.shield(opened)
        except TimeoutError:
            await self.close()
            raise GatewayUnreachable(
                f"cluster {self._gateway.name}'s gateway at {self._gateway.url} did not open "
                "a watch in time"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._ended = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def __aiter__(self) -> AsyncIterator[WorkloadEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[WorkloadEvent]:
        while True:
            if self._events:
                yield self._events.popleft()
                continue
            if self._failure is not None:
                raise self._failure
            if self._ended:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _pump(self, opened: asyncio.Future[None]) -> None:
        pause = RESUME_FIRST_S
        cut = False  # said once per cut, not once per try
        while not self._ended:
            try:
                async for data in self._gateway._subscribe(_WATCH, {"after": self._resume}):
                    message = data["watch"]
                    if "state" not in message:  # the gateway's watch is open
                        if not opened.done():
                            self._cursor = str(message["cursor"])
                            opened.set_result(None)
                        if self._resume is None:
                            self._resume = str(message["cursor"])
                        if cut:
                            logger.info("watch of cluster %s resumed", self._gateway.name)
                        pause, cut = RESUME_FIRST_S, False
                        continue
                    event = WorkloadEvent(
                        cursor=str(message["cursor"]), state=state_from_wire(message["state"])
                    )
                    self._resume = event.cursor
                    if not self._push(event):
                        return
                # The subscription completed: the gateway is shutting down. Resume.
            except GatewayUnreachable as error:
                if not opened.done():
                    opened.set_exception(error)
                    return
                if not cut:
                    logger.info("watch of cluster %s dropped; resuming", self._gateway.name)
                cut = True
            except GliaError as error:  # WatchExpired on resuming after a restart, or worse
                if not opened.done():
                    opened.set_exception(error)
                else:
                    self._fail(error)
                return
            except Exception as error:  # a malformed answer: the watcher relists
                logger.exception("watch of cluster %s failed", self._gateway.name)
                if not opened.done():
                    opened.set_exception(self._gateway._unreachable(error))
                else:
                    self._fail(WatchExpired("the gateway's watch failed: watch again"))
                return
            await asyncio.sleep(pause)
            pause = min(2 * pause, RESUME_MAX_S)

    def _push(self, event: WorkloadEvent) -> bool:
        if len(self._events) >= WATCH_QUEUE_LIMIT:
            self._events.clear()
            self._fail(
                WatchExpired(
                    f"the watcher fell more than {WATCH_QUEUE_LIMIT} changes behind: watch again"
                )
            )
            return False
        self._events.append(event)
        self._wakeup.set()
        return True

    def _fail(self, error: GliaError) -> None:
        self._failure = error
        self._wakeup.set()


class _LogReader:
    """A `logs` subscription that resumes from the offset after the last batch it received
    (no line lost or repeated): after the connection dropped (for up to
    `LOG_RESUME_WITHIN_S`), and after a pause for a slow reader, so that the control plane
    holds at most `LOG_BATCHES` batches for it."""

    def __init__(
        self,
        gateway: RemoteGateway,
        job_id: str,
        *,
        since: datetime | None,
        offset: int | None,
        tail: int | None,
        follow: bool,
    ) -> None:
        self._gateway = gateway
        self._job_id = job_id
        self._start: dict[str, Any] = {
            "since": since.isoformat() if since is not None else None,
            "offset": offset,
            "tail": tail,
        }
        self._follow = follow
        self._resume_at: int | None = None  # the end of the last batch received
        self._batches: asyncio.Queue[LogBatch | GliaError | None] = asyncio.Queue(LOG_BATCHES)
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def next(self) -> LogBatch | None:
        if self._task is None:
            self._task = asyncio.create_task(self._pump())
        item = await self._batches.get()
        if self._batches.qsize() <= LOG_BATCHES // 2:
            self._room.set()
        if isinstance(item, GliaError):
            raise item
        return item

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _variables(self) -> dict[str, Any]:
        start = self._start
        if self._resume_at is not None:
            start = {"since": None, "offset": self._resume_at, "tail": None}
        return {"jobId": self._job_id, "follow": self._follow, **start}

    def _advance(self, batch: LogBatch) -> None:
        if batch.end is not None:
            self._resume_at = batch.end

    async def _pump(self) -> None:
        pause = RESUME_FIRST_S
        cut_at: float | None = None  # when the connection dropped, while it is down
        while True:
            paused = False
            try:
                subscription = self._gateway._subscribe(_LOGS, self._variables())
                async with contextlib.aclosing(subscription) as results:
                    async for data in results:
                        cut_at, pause = None, RESUME_FIRST_S
                        wire = data["logs"]
                        if isinstance(wire, dict) and wire.get("end"):
                            await self._batches.put(None)
                            return
                        batch = batch_from_wire(wire)
                        self._advance(batch)
                        self._batches.put_nowait(batch)  # there is room: it pauses when full
                        if self._batches.full():
                            paused = True
                            break
            except GatewayUnreachable as error:
                now = time.monotonic()
                cut_at = cut_at if cut_at is not None else now
                if self._gateway._closed or now - cut_at > LOG_RESUME_WITHIN_S:
                    await self._batches.put(error)
                    return
            except GliaError as error:
                await self._batches.put(error)
                return
            if paused:  # the reader is behind: resume once it has caught up
                self._room.clear()
                if self._batches.full():
                    await self._room.wait()
                continue
            # Cut (or completed without its end: the gateway went away mid-stream): resume.
            await asyncio.sleep(pause)
            pause = min(2 * pause, RESUME_MAX_S)
