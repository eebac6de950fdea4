"""A cluster gateway's app served in this test's process on a free port, for `RemoteGateway`
to reach over real HTTP and WebSockets (the resilience tests run it as its own process)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from cluster_gateway.gateway import Gateway
from cluster_gateway.server.app import create_app

SECRET = "test-gateway-secret-of-at-least-32-bytes"


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
