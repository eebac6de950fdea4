"""`glia gateway serve`'s application: the subgraph at ``/graphql`` and the byte routes,
every one behind the control plane's signed claim (``cluster_gateway/trust.py``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from cluster_gateway.blobs.base import BlobStore
from cluster_gateway.disks import LocalDisks
from cluster_gateway.gateway import Gateway
from cluster_gateway.runtimes.base import Runtime
from cluster_gateway.server.blobs import blob_routes
from cluster_gateway.server.routes import CLAIM_SCOPE_KEY, routes
from cluster_gateway.server.schema import GatewayContext, create_schema
from cluster_gateway.server.storage import storage_routes
from cluster_gateway.storage import Storage
from cluster_gateway.trust import bearer, verify_claim
from cluster_gateway.wire import error_to_wire
from glia.disks import DiskStore
from glia.errors import Unauthenticated

logger = logging.getLogger(__name__)

# Subscriptions one connection (the control plane's one WebSocket) may hold at once: every
# watch, log follower and telemetry reader of this cluster's jobs shares it.
MAX_SUBSCRIPTIONS = 10_000
# HS256 wants a key at least as long as its hash (RFC 7518, 3.2).
MIN_SECRET_BYTES = 32


class ClaimCheck:
    """Refuses every HTTP request and WebSocket without a valid claim in ``Authorization``
    (401, the same answer whatever is wrong with it), before any route runs."""

    def __init__(self, app: ASGIApp, *, secret: str, cluster: str) -> None:
        self.app = app
        self._secret = secret
        self._cluster = cluster

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
        token = bearer(header)
        try:
            if token is None:
                raise Unauthenticated("no valid claim of this cluster's control plane")
            claim = verify_claim(token, self._secret, self._cluster)
        except Unauthenticated as error:
            refusal = JSONResponse(error_to_wire(error), status_code=401)
            if scope["type"] == "http":
                await refusal(scope, receive, send)
            else:
                await WebSocket(scope, receive, send).send_denial_response(refusal)
            return
        await self.app({**scope, CLAIM_SCOPE_KEY: claim}, receive, send)


class _DenialIsAnAnswer(logging.Filter):
    """uvicorn's WebSocket protocol logs an ERROR for every WebSocket the app answers with a
    denial response (its handshake is not "complete"), although the caller got its 401 or
    404: every refused or misdirected call would log an error (a port scan, a flood of them).
    Every WebSocket route of this app accepts or denies, so that line says nothing here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


_DENIALS = _DenialIsAnAnswer()


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    def __init__(self, gateway: Gateway, *, secret: str) -> None:
        super().__init__(
            create_schema(),
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
        )
        self._gateway = gateway
        self._secret = secret

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> GatewayContext:
        return GatewayContext(gateway=self._gateway, request=request, response=response)

    async def on_ws_connect(self, context: GatewayContext) -> UnsetType | None | dict[str, Any]:
        # The upgrade carried a valid claim (ClaimCheck); the graphql-transport-ws handshake
        # must carry one too, so that a connection is never opened on a header alone.
        params = context.connection_params or {}
        token = params.get("claim") if isinstance(params, dict) else None
        try:
            if not isinstance(token, str):
                raise Unauthenticated("no valid claim of this cluster's control plane")
            verify_claim(token, self._secret, self._gateway.name)
        except Unauthenticated as error:
            raise ConnectionRejectionError(error_to_wire(error)) from None
        return None


def create_app(
    gateway: Gateway,
    *,
    secret: str,
    own_gateway: bool = False,
    storage: Storage | None = None,
    disks: DiskStore | None = None,
    blobs: BlobStore | None = None,
) -> Starlette:
    """The gateway's app over ``gateway``, and over the cluster's ``storage``, ``disks`` and
    ``blobs`` where given (``server/storage.py``'s and ``server/blobs.py``'s routes); with
    ``own_gateway`` its lifespan opens and closes the gateway (``glia gateway serve``), else
    its caller does (tests serving a harness's runtime)."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"a gateway's shared secret is at least {MIN_SECRET_BYTES} bytes")
    graphql = GatewayGraphQL(gateway, secret=secret)

    async def authorize(request: Request) -> None:
        # ClaimCheck let the request in; the storage routes ask again, on their own terms.
        token = bearer(request.headers.get("authorization"))
        if token is None:
            raise Unauthenticated("no valid claim of this cluster's control plane")
        verify_claim(token, secret, gateway.name)

    storing = [] if storage is None else storage_routes(storage, disks, authorize=authorize)
    if blobs is not None:
        storing += blob_routes(blobs, authorize=authorize)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logging.getLogger("uvicorn.error").addFilter(_DENIALS)  # after uvicorn's log config
        if own_gateway:
            await gateway.open()
        try:
            yield
        finally:
            if own_gateway:
                await gateway.close()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            WebSocketRoute("/graphql", graphql),
            *routes(gateway),
            *storing,
        ],
        lifespan=lifespan,
    )
    app.add_middleware(ClaimCheck, secret=secret, cluster=gateway.name)
    return app


def serve(
    *,
    name: str,
    data_dir: Path,
    host: str,
    port: int,
    secret: str,
    runtime_kind: str = "local",
    kubeconfig: Path | None = None,
    namespace_prefix: str = "glia-",
    pod_annotations: dict[str, str] | None = None,
    image: str | None = None,
    storage_claim: str | None = None,
    forward_auth_url: str | None = None,
) -> None:
    """Run a gateway for cluster ``name`` until stopped (SIGTERM or Ctrl-C): over a local
    runtime on ``data_dir``, or (``runtime_kind="kubernetes"``) over a Kubernetes cluster
    reached with ``kubeconfig`` or the in-cluster config, its pods in namespaces under
    ``namespace_prefix``. Its jobs outlive it, and a gateway started again finds them. Its
    storage and buckets are kept under ``data_dir`` whatever the runtime, its disks too but for
    a Kubernetes cluster's (its claims). Two gateways never share a ``data_dir`` (a lock says
    so)."""
    import asyncio
    import fcntl
    import gc

    import uvicorn

    from cluster_gateway.blobs.fs import FilesystemBlobStore
    from cluster_gateway.embedded import EmbeddedGateway
    from cluster_gateway.runtimes.local import LocalRuntime
    from cluster_gateway.storage import LocalStorage
    from glia.malloc import keep_freed_memory

    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"a gateway's shared secret is at least {MIN_SECRET_BYTES} bytes")
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    with (data_dir / "gateway.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another gateway is serving {data_dir}") from None
        storage = LocalStorage(data_dir / "storage")

        class _Opening(EmbeddedGateway):
            async def open(self) -> None:
                await storage.open()
                await super().open()
                # What start-up made lives as long as the process: keep the collector off
                # it, so that a full collection never lands in a live log's path.
                gc.collect()
                gc.freeze()

        local_disks = LocalDisks(data_dir / "disks")
        disks: DiskStore = local_disks
        runtime: Runtime
        if runtime_kind == "kubernetes":
            from cluster_gateway.runtimes.kubernetes import DEFAULT_IMAGE
            from cluster_gateway.runtimes.kubernetes_setup import (
                kubernetes_runtime,
                load_configuration,
            )

            configuration = asyncio.run(load_configuration(kubeconfig))
            pods = kubernetes_runtime(
                configuration,
                cluster=name,
                namespace_prefix=namespace_prefix,
                pod_annotations=pod_annotations,
                image=image or DEFAULT_IMAGE,
                storage_claim=storage_claim,
                forward_auth_url=forward_auth_url,
            )
            runtime, disks = pods, pods.disks  # disks are the cluster's claims
        elif runtime_kind == "local":
            runtime = LocalRuntime(data_dir / "runtime", storage=storage, disks=local_disks)
        else:
            raise ValueError(f"unknown runtime {runtime_kind!r}: local or kubernetes")
        app = create_app(
            _Opening(name, runtime),
            secret=secret,
            own_gateway=True,
            storage=storage,
            disks=disks,
            blobs=FilesystemBlobStore(data_dir / "blobs"),
        )
        logger.info(
            "cluster gateway %s (%s runtime) on http://%s:%d (data in %s)",
            name,
            runtime_kind,
            host,
            port,
            data_dir,
        )
        keep_freed_memory()
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
            timeout_graceful_shutdown=5,
        )
