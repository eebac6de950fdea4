"""WebSocket clients: no acknowledged connection without a token, a bounded number of
connections per user, and a revoked token's subscriptions end at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from cluster_gateway.runtimes.fake import FakeRuntime
from sdk import GliaClient, Unauthenticated
from tests.factories import ServedApi, make_settings, serving_api

SUBPROTOCOL = "graphql-transport-ws"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServedApi]:
    settings = make_settings(tmp_path, max_connections_per_user=3)
    # Jobs stay pending: a status stream then has nothing to say until the test acts.
    with serving_api(settings, FakeRuntime(auto_run=False)) as server:
        yield server


def _ws_url(server: ServedApi) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


async def _init(server: ServedApi, payload: Any) -> websockets.ClientConnection:
    connection = await websockets.connect(_ws_url(server), subprotocols=[SUBPROTOCOL])
    await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
    return connection


async def _closed_with(connection: websockets.ClientConnection) -> int | None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async with asyncio.timeout(5):
            while True:
                message = json.loads(await connection.recv())
                assert message["type"] != "connection_ack", "acknowledged without a valid token"
    return connection.close_code


@pytest.mark.parametrize(
    "payload", [{}, {"authToken": "not-a-token"}, {"Authorization": "Bearer nope"}]
)
def test_connection_init_without_a_valid_token_is_closed_4401(
    server: ServedApi, payload: dict[str, str]
) -> None:
    async def attempt() -> int | None:
        return await _closed_with(await _init(server, payload))

    assert asyncio.run(attempt()) == 4401


def test_a_user_holds_a_bounded_number_of_connections(server: ServedApi) -> None:
    token = server.user("alice")

    async def attempt() -> tuple[list[str], int | None]:
        held = [await _init(server, {"authToken": token}) for _ in range(3)]
        acks = [json.loads(await c.recv())["type"] for c in held]
        extra = await _closed_with(await _init(server, {"authToken": token}))
        for connection in held:
            await connection.close()
        return acks, extra

    acks, extra = asyncio.run(attempt())
    assert acks == ["connection_ack"] * 3
    assert extra == 4429


def test_a_revoked_token_ends_its_subscriptions(server: ServedApi) -> None:
    token = server.user("alice")

    async def scenario() -> None:
        async with GliaClient(server.url, token) as watcher, GliaClient(server.url, token) as user:
            job = await user.jobs.submit(["sleep", "100"])
            updates = watcher.jobs.watch_status(job.id)
            first = await anext(updates)
            assert first.id == job.id
            waiting = asyncio.ensure_future(anext(updates))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await user.auth.logout()  # revokes the token both clients hold
            with pytest.raises(Unauthenticated, match="revoked"):
                async with asyncio.timeout(1.0):
                    await waiting
            await updates.aclose()

    asyncio.run(scenario())
