"""Factories shared by the tests: settings, an API client over a running app, users."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cluster_gateway.runtimes.base import Runtime
from glia.app import create_app
from glia.platform import Platform
from glia.settings import Settings, load_settings


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "secret_key": secrets.token_urlsafe(40),
        "reconcile_interval_s": 0.2,
        "kill_grace_s": 2.0,
    }
    values.update(overrides)
    return load_settings({}, **values)


async def eventually(check: Callable[[], Awaitable[Any]], *, within: float = 5.0) -> Any:
    """Poll an async check until it returns something truthy; fail after ``within`` seconds."""
    # Polling is the point here: the state lives in another task or process.
    async with asyncio.timeout(within):
        while True:
            if result := await check():
                return result
            await asyncio.sleep(0.02)


class GraphQLErrors(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"])
        self.errors = errors
        self.code = errors[0].get("extensions", {}).get("code")


@dataclass
class Api:
    """A running app, driven over HTTP in-process."""

    http: httpx.AsyncClient
    platform: Platform
    runtime: Runtime | None

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body: dict[str, Any] = response.json()
        return body

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        body = await self.raw(query, variables, token=token)
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def user(self, name: str, *, role: str = "user") -> str:
        """Create a user and return a token for it."""
        async with self.platform.db.session() as session:
            user, _ = await self.platform.auth.create_user(
                session, name=name, role=role, password="password-" + name
            )
            return await self.platform.auth.issue_token(session, user.id, description="test")


@asynccontextmanager
async def running_api(settings: Settings, runtime: Runtime | None = None) -> AsyncIterator[Api]:
    started: list[Platform] = []

    async def capture(platform: Platform) -> None:
        started.append(platform)

    app = create_app(settings, runtime=runtime, on_startup=capture)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://glia.test") as http:
            yield Api(http=http, platform=started[0], runtime=runtime)
