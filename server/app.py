"""The ASGI application: GraphQL, byte routes, health, metrics; the lifespan that runs it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Host, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cluster_gateway.runtimes.base import Runtime
from control_plane.platform import Platform
from control_plane.settings import Settings
from control_plane.workers import BackgroundTasks
from server import graphiql
from server.graphql_http import GliaGraphQL
from server.limits import BodyLimit
from server.proxy import JobProxy
from server.requests import Running, request_id
from server.routes import blobs, ingress, monitoring, secrets, storage
from server.routes import exec as exec_routes

logger = structlog.get_logger("server.app")

StartupHook = Callable[[Platform], Awaitable[None]]


class RequestIdMiddleware:
    """Give every request an id, echo it in ``X-Request-ID`` and bind it to the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=rid):
            await self.app(scope, receive, send_with_id)


def create_app(
    settings: Settings,
    *,
    on_startup: StartupHook | None = None,
    runtime: Runtime | None = None,
    local_runtime: Callable[[str, Path], Runtime] | None = None,
) -> Starlette:
    running = Running()
    proxy = JobProxy(running.get)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        platform = await Platform.create(settings, runtime=runtime, local_runtime=local_runtime)
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
            # Each follower of a stream holds a chain of awaitables that lives until its next
            # message: collecting the youngest objects every 700 allocations promoted them by
            # the thousand, and a full collection (~100 ms with 1,000 followers) followed
            # every 10 middle ones. Fewer young collections, and a full one at most every
            # 100 middle ones: 1,000 followers' collections cost half the CPU, 2 full ones
            # instead of 7 (bench/README.md, log fairness).
            gc.set_threshold(2000, 10, 100)
            logger.info("glia is serving", url=settings.effective_public_url)
            yield
        finally:
            await proxy.aclose()
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
            # Exposed jobs' hosts first: every path there is the job's.
            Host(f"{{label}}.{settings.jobs_domain}", proxy, name="jobs"),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *monitoring.routes(running.get),
            *exec_routes.routes(running.get),
            *ingress.routes(running.get),
            *storage.routes(running.get),
            *blobs.routes(running.get),
            *secrets.routes(running.get),
            *graphiql.routes(),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                BodyLimit,
                max_bytes=settings.max_request_bytes,
                paths=("/graphql",),
                other_hosts=f".{settings.jobs_domain}",
            ),
        ],
        lifespan=lifespan,
    )
