"""The ASGI application: GraphQL, byte routes, health, metrics; the lifespan that runs it."""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from cluster_gateway.runtimes.base import Runtime
from control_plane.platform import Platform
from control_plane.settings import Settings
from control_plane.workers import BackgroundTasks
from graph.context import Context
from graph.extensions import code_invalid_query
from graph.schema import create_schema
from graph.streams import StreamLimits
from server.limits import BodyLimit
from server.routes import monitoring
from server.websockets import GliaTransportWSHandler

logger = structlog.get_logger("server.app")

StartupHook = Callable[[Platform], Awaitable[None]]


@dataclass
class _Running:
    """The platform of a started app; None before the lifespan starts and after it ends."""

    platform: Platform | None = None

    def get(self) -> Platform:
        if self.platform is None:
            raise RuntimeError("the platform is not running")
        return self.platform


def _request_id(scope: Scope) -> str:
    if "glia.request_id" not in scope:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id" and 0 < len(value) <= 64:
                scope["glia.request_id"] = value.decode("latin-1")
                break
        else:
            scope["glia.request_id"] = uuid.uuid4().hex
    request_id: str = scope["glia.request_id"]
    return request_id


class RequestIdMiddleware:
    """Give every request an id, echo it in ``X-Request-ID`` and bind it to the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class GliaGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = GliaTransportWSHandler

    def __init__(self, running: _Running, settings: Settings) -> None:
        super().__init__(
            create_schema(
                max_depth=settings.max_query_depth,
                max_tokens=settings.max_query_tokens,
                max_cost=settings.max_query_cost,
            ),
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self._running = running
        self._limits = StreamLimits(
            connections_per_user=settings.max_connections_per_user,
            subscriptions_per_user=settings.max_subscriptions_per_user,
        )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # A document that does not parse, or is over the token limit, fails before the
        # extensions see a result: its errors get their code here.
        code_invalid_query(result.errors or [])
        return await super().process_result(request, result)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        return Context(
            platform=self._running.get(),
            request=request,
            response=response,
            request_id=_request_id(request.scope),
            limits=self._limits,
        )


def create_app(
    settings: Settings,
    *,
    on_startup: StartupHook | None = None,
    runtime: Runtime | None = None,
) -> Starlette:
    running = _Running()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        platform = await Platform.create(settings, runtime=runtime)
        running.platform = platform
        tasks = BackgroundTasks(platform)
        try:
            if settings.background_tasks:
                await tasks.start()
            if on_startup is not None:
                await on_startup(platform)
            # What start-up built (the schema, the models, the imported libraries) lives as
            # long as the process: move it out of the collector's reach, or every full
            # collection walks it again and stalls every request and stream for ~100 ms.
            gc.collect()
            gc.freeze()
            logger.info("glia is serving", url=settings.effective_public_url)
            yield
        finally:
            await tasks.stop()
            running.platform = None
            await platform.close()

    async def healthz(_request: Request) -> Response:
        platform = running.get()
        try:
            async with platform.db.session() as session:
                await session.execute(text("SELECT 1"))
        except Exception as exc:
            logger.warning("health check: the database does not answer", error=str(exc))
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics(_request: Request) -> Response:
        platform = running.get()
        async with platform.db.session() as session:
            counts = await platform.jobs.count_by_status(session)
        for status, count in counts.items():
            platform.metrics.jobs.labels(status=status.value).set(count)
        return Response(generate_latest(platform.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    graphql = GliaGraphQL(running, settings)
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *monitoring.routes(running.get),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(BodyLimit, max_bytes=settings.max_request_bytes, paths=("/graphql",)),
        ],
        lifespan=lifespan,
    )
