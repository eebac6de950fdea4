"""A cluster gateway's app, or some of its routes, served in this test's process on a free
port, for `RemoteGateway`, `RemoteStorage` and `RemoteBlobStore` to reach over real HTTP and
WebSockets (the resilience tests run a gateway as its own process)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from cluster_gateway.gateway import Gateway
from cluster_gateway.server.app import create_app
from glia.errors import Unauthenticated
from tests.polling import eventually

SECRET = "test-gateway-secret-of-at-least-32-bytes"
TOKEN = "the-control-planes-claim"


@contextlib.asynccontextmanager
async def serving(gateway: Gateway, *, secret: str = SECRET) -> AsyncIterator[str]:
    """The URL of ``gateway``'s app, served until the block ends (the caller owns the
    gateway: the app neither opens nor closes it)."""
    config = uvicorn.Config(
        create_app(gateway, secret=secret),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


async def bearer(request: Request) -> None:
    """The route suites' stand-in for the gateway's trust check (tested on its own in
    tests/security/test_gateway_trust.py)."""
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        raise Unauthenticated("only the control plane may call a cluster gateway")


def signed() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


@contextlib.asynccontextmanager
async def serving_routes(routes: list[BaseRoute]) -> AsyncIterator[str]:
    """The routes served over HTTP by uvicorn on a free port of this host, on this loop."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=routes), lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))

    async def started() -> bool:
        if task.done():
            task.result()
        return server.started

    try:
        await eventually(started, within=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()
