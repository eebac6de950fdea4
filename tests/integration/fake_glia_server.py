"""A TEST FAKE of the Glia GraphQL API, for the SDK and CLI tests only.

It implements just the slice of docs/api-contract.graphql those tests need (login, me,
clusters, submitJob, jobs, job, killJob, jobStatus and jobLogs over graphql-transport-ws) on
a tiny in-memory strawberry schema, so the client side can be tested before the real server
exists. It shares no code with the real server and must never be used as one.

A fake job "runs" by itself after submission: pending for a moment, then running, it prints
``FAKE_STDOUT`` lines (``|``-separated) to stdout and ``FAKE_STDERR`` lines to stderr, waits
``FAKE_SLEEP`` seconds, and exits with ``FAKE_EXIT`` (default 0) from its env.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import strawberry
import uvicorn
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.scalars import JSON
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import Info

PASSWORDS = {"alice": "wonderland", "admin": "admin-pass"}
ROLES = {"alice": "USER", "admin": "ADMIN"}


def _error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


@strawberry.enum
class UserRole(enum.Enum):
    ADMIN = "ADMIN"
    USER = "USER"


@strawberry.enum
class JobStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


@strawberry.enum
class LogStream(enum.Enum):
    STDOUT = "STDOUT"
    STDERR = "STDERR"


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    email: str | None
    role: UserRole
    created_at: datetime


@strawberry.type
class Preset:
    name: str
    cpu: float
    memory_mb: int
    gpu: int


@strawberry.type
class Cluster:
    id: strawberry.ID
    name: str
    status: str
    presets: list[Preset]


CLUSTER = Cluster(
    id=strawberry.ID("cluster-1"),
    name="default",
    status="ready",
    presets=[Preset(name="cpu-small", cpu=0.5, memory_mb=512, gpu=0)],
)


@strawberry.type
class JobStatusItem:
    status: JobStatus
    reason: str | None
    description: str | None
    exit_code: int | None
    at: datetime


@strawberry.type
class Job:
    id: strawberry.ID
    name: str | None
    uri: str
    owner: User
    cluster: Cluster
    org: str
    project: str
    preset: str
    cpu: float
    memory_mb: int
    gpu: int
    command: list[str]
    env: JSON
    working_dir: str | None
    tags: list[str]
    description: str | None
    life_span_seconds: float | None
    status: JobStatus
    reason: str | None
    status_description: str | None
    exit_code: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    history: list[JobStatusItem]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class JobEdge:
    cursor: str
    node: Job


@strawberry.type
class JobConnection:
    edges: list[JobEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class JobFilter:
    statuses: list[JobStatus] | None = None
    name: str | None = None
    tags: list[str] | None = None
    since: datetime | None = None
    cluster: str | None = None


@strawberry.input
class EnvVar:
    name: str
    value: str


@strawberry.input
class SubmitJobInput:
    command: list[str]
    cluster: str | None = None
    preset: str | None = None
    env: list[EnvVar] | None = None
    working_dir: str | None = None
    name: str | None = None
    tags: list[str] | None = None
    description: str | None = None
    life_span_seconds: float | None = None


@strawberry.input
class CreateUserInput:
    name: str
    email: str | None = None
    role: UserRole = UserRole.USER
    password: str | None = None


@strawberry.type
class LoginPayload:
    token: str
    user: User


@strawberry.type
class CreateUserPayload:
    user: User
    password: str | None


@strawberry.type
class LogLine:
    time: datetime
    stream: LogStream
    text: str


@strawberry.type
class LogChunk:
    lines: list[LogLine]


@dataclass
class FakeState:
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> user name
    jobs: dict[str, Job] = field(default_factory=dict)  # in submission order
    logs: dict[str, list[LogLine]] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def user(self, name: str) -> User:
        if name not in self.users:
            self.users[name] = User(
                id=strawberry.ID(f"user-{name}"),
                name=name,
                email=None,
                role=UserRole(ROLES.get(name, "USER")),
                created_at=datetime.now(UTC),
            )
        return self.users[name]

    def find(self, owner: User, id_or_name: str) -> Job:
        if id_or_name in self.jobs and self.jobs[id_or_name].owner.name == owner.name:
            return self.jobs[id_or_name]
        named = [
            j for j in self.jobs.values() if j.name == id_or_name and j.owner.name == owner.name
        ]
        if not named:
            raise _error("NOT_FOUND", f"no job {id_or_name!r}")
        return named[-1]


def _set_status(
    job: Job, status: JobStatus, reason: str | None, exit_code: int | None = None
) -> None:
    now = datetime.now(UTC)
    job.status, job.reason, job.exit_code = status, reason, exit_code
    if status is JobStatus.RUNNING:
        job.started_at = now
    if status in FINISHED:
        job.finished_at = now
    job.history.append(
        JobStatusItem(status=status, reason=reason, description=None, exit_code=exit_code, at=now)
    )


async def _run_fake_job(state: FakeState, job: Job) -> None:
    env = cast(dict[str, str], job.env)
    await asyncio.sleep(0.05)
    _set_status(job, JobStatus.RUNNING, None)
    for stream, key in ((LogStream.STDOUT, "FAKE_STDOUT"), (LogStream.STDERR, "FAKE_STDERR")):
        for text in filter(None, env.get(key, "").split("|")):
            state.logs[job.id].append(LogLine(time=datetime.now(UTC), stream=stream, text=text))
            await asyncio.sleep(0.01)
    await asyncio.sleep(float(env.get("FAKE_SLEEP", "0")))
    code = int(env.get("FAKE_EXIT", "0"))
    status = JobStatus.SUCCEEDED if code == 0 else JobStatus.FAILED
    _set_status(job, status, None if code == 0 else "Error", code)


def _caller(info: Info[Any, Any]) -> User:
    state: FakeState = info.context["state"]
    request = info.context["request"]
    token: str | None = None
    params = info.context.get("connection_params")
    if isinstance(params, dict):
        token = params.get("authToken")
    elif request.scope["type"] == "http":
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
    if token is None or token not in state.tokens:
        raise _error("UNAUTHENTICATED", "not logged in or the token is no longer valid")
    return state.user(state.tokens[token])


@strawberry.type
class Query:
    @strawberry.field
    def me(self, info: Info[Any, Any]) -> User:
        return _caller(info)

    @strawberry.field
    def clusters(self, info: Info[Any, Any]) -> list[Cluster]:
        _caller(info)
        return [CLUSTER]

    @strawberry.field
    def cluster(self, info: Info[Any, Any], name: str) -> Cluster | None:
        _caller(info)
        return CLUSTER if name == CLUSTER.name else None

    @strawberry.field
    def jobs(
        self,
        info: Info[Any, Any],
        filter: JobFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> JobConnection:
        user = _caller(info)
        state: FakeState = info.context["state"]
        f = filter or JobFilter()
        jobs = [
            j
            for j in reversed(state.jobs.values())
            if j.owner.name == user.name
            and (f.statuses is None or j.status in f.statuses)
            and (f.name is None or j.name == f.name)
            and all(t in j.tags for t in f.tags or ())
            and (f.since is None or j.created_at >= f.since)
        ]
        start = int(after) if after else 0
        page = jobs[start : start + first]
        edges = [JobEdge(cursor=str(start + i + 1), node=j) for i, j in enumerate(page)]
        return JobConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=start + first < len(jobs),
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=len(jobs),
        )

    @strawberry.field
    def job(self, info: Info[Any, Any], id: str) -> Job:
        return info.context["state"].find(_caller(info), id)


@strawberry.type
class Mutation:
    @strawberry.mutation
    def login(self, info: Info[Any, Any], username: str, password: str) -> LoginPayload:
        state: FakeState = info.context["state"]
        if PASSWORDS.get(username) != password:
            raise _error("UNAUTHENTICATED", "wrong username or password")
        token = f"tok-{uuid.uuid4().hex}"
        state.tokens[token] = username
        return LoginPayload(token=token, user=state.user(username))

    @strawberry.mutation
    def logout(self, info: Info[Any, Any]) -> bool:
        _caller(info)
        header = info.context["request"].headers["authorization"]
        info.context["state"].tokens.pop(header.removeprefix("Bearer "), None)
        return True

    @strawberry.mutation
    def create_user(self, info: Info[Any, Any], input: CreateUserInput) -> CreateUserPayload:
        if _caller(info).role is not UserRole.ADMIN:
            raise _error("FORBIDDEN", "only admins can create users")
        state: FakeState = info.context["state"]
        if input.name in state.users:
            raise _error("CONFLICT", f"user {input.name!r} already exists")
        user = state.user(input.name)
        user.email, user.role = input.email, input.role
        generated = None if input.password else "generated-secret"
        PASSWORDS[input.name] = input.password or "generated-secret"
        return CreateUserPayload(user=user, password=generated)

    @strawberry.mutation
    async def submit_job(self, info: Info[Any, Any], input: SubmitJobInput) -> Job:
        user = _caller(info)
        state: FakeState = info.context["state"]
        if not input.command:
            raise _error("BAD_INPUT", "command must not be empty")
        if input.preset not in (None, "cpu-small"):
            raise _error("BAD_INPUT", f"no preset {input.preset!r} on cluster default")
        job_id = f"job-{uuid.uuid4()}"
        job = Job(
            id=strawberry.ID(job_id),
            name=input.name,
            uri=f"job://default/org/proj/{job_id}",
            owner=user,
            cluster=CLUSTER,
            org="org",
            project="proj",
            preset="cpu-small",
            cpu=0.5,
            memory_mb=512,
            gpu=0,
            command=input.command,
            env=cast(JSON, {e.name: e.value for e in input.env or ()}),
            working_dir=input.working_dir,
            tags=input.tags or [],
            description=input.description,
            life_span_seconds=input.life_span_seconds,
            status=JobStatus.PENDING,
            reason="Creating",
            status_description=None,
            exit_code=None,
            created_at=datetime.now(UTC),
            started_at=None,
            finished_at=None,
            history=[],
        )
        _set_status(job, JobStatus.PENDING, "Creating")
        state.jobs[job_id] = job
        state.logs[job_id] = []
        state.tasks[job_id] = asyncio.create_task(_run_fake_job(state, job))
        return job

    @strawberry.mutation
    def kill_job(self, info: Info[Any, Any], id: str) -> Job:
        state: FakeState = info.context["state"]
        job = state.find(_caller(info), id)
        if job.status not in FINISHED:
            state.tasks[job.id].cancel()
            _set_status(job, JobStatus.CANCELLED, "UserRequested")
        return job


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def job_status(self, info: Info[Any, Any], id: str) -> AsyncGenerator[Job, None]:
        job = info.context["state"].find(_caller(info), id)
        seen = None
        while True:
            if job.status != seen:
                seen = job.status
                yield job
                if seen in FINISHED:
                    return
            await asyncio.sleep(0.01)

    @strawberry.subscription
    async def job_logs(
        self, info: Info[Any, Any], id: str, since: datetime | None = None, follow: bool = True
    ) -> AsyncGenerator[LogChunk, None]:
        state: FakeState = info.context["state"]
        job = state.find(_caller(info), id)
        lines = state.logs[job.id]
        sent = 0
        while True:
            finished = job.status in FINISHED
            new = [ln for ln in lines[sent:] if since is None or ln.time >= since]
            sent = len(lines)
            if new:
                yield LogChunk(lines=new)
            if finished or not follow:
                return
            await asyncio.sleep(0.01)


class _QuietSchema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """The tests expect these errors: do not log their tracebacks."""


class _FakeGraphQL(GraphQL[dict[str, Any], None]):
    def __init__(self, state: FakeState) -> None:
        schema = _QuietSchema(query=Query, mutation=Mutation, subscription=Subscription)
        super().__init__(schema, subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL])
        self.state = state

    async def get_context(self, request: Any, response: Any = None) -> dict[str, Any]:
        return {"request": request, "response": response, "state": self.state}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeServer:
    url: str
    state: FakeState

    def login_token(self, username: str = "alice") -> str:
        """A valid token for ``username`` without going through the login mutation."""
        token = f"tok-{uuid.uuid4().hex}"
        self.state.tokens[token] = username
        return token


@contextlib.contextmanager
def run_fake_server() -> Iterator[FakeServer]:
    """Serve the fake on a free port in a thread (its own event loop) until the block ends."""
    state = FakeState()
    graphql_app = _FakeGraphQL(state)
    app = Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
        ]
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, name="fake-glia-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake Glia server did not start")
        time.sleep(0.01)
    try:
        yield FakeServer(url=f"http://127.0.0.1:{port}", state=state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
