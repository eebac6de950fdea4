"""Factories shared by the tests: settings, a running app and its API, users and jobs."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.runtimes.base import Runtime
from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.platform import Platform
from control_plane.settings import Settings, load_settings
from glia.auth import NewUser, UserRole
from server.app import create_app
from tests.polling import eventually

T = TypeVar("T")


# The fields the API tests read back from jobs.
JOB_FIELDS = """
    id name uri status reason statusDescription exitCode workingDir tags env
    createdAt startedAt finishedAt preset resources { cpu memoryMb gpu }
    owner { name } cluster { name }
    history { status reason description exitCode at }
"""
SUBMIT_JOB = (
    f"mutation($input: SubmitJobInput!) {{ submitJob(input: $input) {{ job {{ {JOB_FIELDS} }} }} }}"
)
CREATE_USER = """
mutation($input: CreateUserInput!) { createUser(input: $input) { user { name role } password } }
"""


async def create_user(
    platform: Platform, name: str, *, role: str = "user", password: str | None = None
) -> str:
    """Create a user and return a token for it."""
    new = NewUser(name=name, role=UserRole(role), password=password or "password-" + name)
    async with platform.db.session() as session:
        user, _ = await platform.auth.create_user(session, new)
        return await platform.auth.issue_token(session, user.id, description="test")


async def handed_over(runtime: FakeRuntime, job_id: str) -> WorkloadSpec:
    """The spec the cluster got for the job: a submission returns once the job is stored,
    and the scheduler's pass hands it over just after."""

    async def spec() -> WorkloadSpec | None:
        return runtime.specs.get(job_id)

    found: WorkloadSpec = await eventually(spec)
    return found


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
        return await create_user(self.platform, name, role=role)

    async def submit_job(self, token: str, **fields: Any) -> dict[str, Any]:
        """Submit a job (``echo hi`` unless ``command`` is given) through the API."""
        data = await self.gql(
            SUBMIT_JOB, {"input": {"command": ["echo", "hi"], **fields}}, token=token
        )
        job: dict[str, Any] = data["submitJob"]["job"]
        return job


@dataclass
class ServedApi:
    """A real Glia server on a free port, its event loop in a thread of this process."""

    url: str
    platform: Platform
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (where its database engine lives)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def user(self, name: str, *, role: str = "user", password: str | None = None) -> str:
        """Create a user and return a token for it."""

        return self.call(create_user(self.platform, name, role=role, password=password))


@contextmanager
def serving_api(settings: Settings, runtime: Runtime | None = None) -> Iterator[ServedApi]:
    """Serve the real app over HTTP and WebSocket until the block ends, with the local runtime
    unless ``runtime`` is given; jobs left running are killed afterwards."""
    started: list[tuple[Platform, asyncio.AbstractEventLoop]] = []

    async def capture(platform: Platform) -> None:
        started.append((platform, asyncio.get_running_loop()))

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The URLs the server hands out (a job's API URL and its own) name the port it listens on.
    settings = settings.model_copy(update={"port": port})
    app = create_app(settings, on_startup=capture, runtime=runtime)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, name="glia-test-server", daemon=True)
    thread.start()

    async def started_up() -> bool:
        if not thread.is_alive():
            raise RuntimeError("the Glia test server did not start")
        return bool(server.started)

    asyncio.run(eventually(started_up, within=30))
    platform, loop = started[0]
    try:
        yield ServedApi(url=f"http://127.0.0.1:{port}", platform=platform, loop=loop)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        kill_leftover_jobs(settings.data_dir)


def kill_leftover_jobs(data_dir: Path) -> None:
    """Jobs outlive their server by design: a test must not leave them on the machine."""
    for record in data_dir.glob("clusters/*/jobs/*/*.json"):
        if record.name not in ("supervisor.json", "child.json"):
            continue
        try:
            os.killpg(json.loads(record.read_text())["pid"], signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass


@asynccontextmanager
async def running_api(
    settings: Settings,
    runtime: Runtime | None = None,
    *,
    local_runtime: Callable[[str, Path], Runtime] | None = None,
) -> AsyncIterator[Api]:
    started: list[Platform] = []

    async def capture(platform: Platform) -> None:
        started.append(platform)

    app = create_app(settings, runtime=runtime, local_runtime=local_runtime, on_startup=capture)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://glia.test") as http:
            yield Api(http=http, platform=started[0], runtime=runtime)
