"""Exposed jobs through the control plane's own proxy, on a real server with the local runtime:
who gets through, the browser sign-in, what the job sees, streams and WebSockets, and
--pass-config's token.

The app behind a job's port is served by this test process (a job only holds the port's
exposure: the proxy goes to 127.0.0.1:PORT whoever listens there), so the test sees what
reaches it. Python does not resolve ``*.localhost``: requests go to 127.0.0.1 with the job's
``Host`` (docs: STACK.md, host names).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from control_plane.store.models import JobRow, TokenRow
from sdk import GliaClient, Job, JobStatus
from tests.factories import ServedApi, make_settings, serving_api
from tests.polling import eventually


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Upstream:
    """The app "in the job": echoes what reached it, streams, echoes WebSocket messages."""

    def __init__(self) -> None:
        self.port = free_port()
        self.release = threading.Event()

        async def headers(request: Request) -> Response:
            return JSONResponse(
                {
                    "headers": dict(request.headers),
                    "path": request.url.path,
                    "query": request.url.query,
                    "body": (await request.body()).decode(),
                }
            )

        async def stream(_request: Request) -> Response:
            async def chunks() -> AsyncIterator[bytes]:
                yield b"first\n"
                # The rest waits until the client has the first part: nothing is buffered.
                await asyncio.to_thread(self.release.wait, 10)
                yield b"second\n"

            return StreamingResponse(chunks(), media_type="text/plain")

        async def echo(websocket: WebSocket) -> None:
            await websocket.accept(subprotocol="echo.v1")
            async for text in websocket.iter_text():
                await websocket.send_text(f"echo: {text}")

        app = Starlette(
            routes=[
                Route("/stream", stream),
                WebSocketRoute("/ws", echo),
                Route("/{path:path}", headers, methods=["GET", "POST"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Upstream:
        self.thread.start()

        async def up() -> bool:
            return bool(self.server.started)

        asyncio.run(eventually(up, within=10))
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as served:
        yield served


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with serving_api(make_settings(tmp_path_factory.mktemp("http"))) as served:
        yield served


@pytest.fixture(scope="module")
def tokens(server: ServedApi) -> dict[str, str]:
    return {
        "alice": server.user("alice", password="alice-password"),
        "bob": server.user("bob", password="bob-password"),
    }


def _submit(server: ServedApi, token: str, port: int, **options: object) -> Job:
    async def submit() -> Job:
        async with GliaClient(server.url, token) as client:
            job = await client.jobs.submit(["sleep", "600"], http_port=port, **options)  # type: ignore[arg-type]

            async def running() -> Job | None:
                found = await client.jobs.get(job.id)
                return found if found.status is JobStatus.RUNNING else None

            started: Job = await eventually(running, within=30)
            return started

    return asyncio.run(submit())


def _kill(server: ServedApi, token: str, job: Job) -> None:
    async def kill() -> None:
        async with GliaClient(server.url, token) as client:
            await client.jobs.kill(job.id)

    asyncio.run(kill())


def _host(job: Job) -> str:
    assert job.http_url is not None
    return urlsplit(job.http_url).hostname or ""


def _get(server: ServedApi, host: str, path: str = "/", **headers: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        return http.get(path, headers={"Host": host, **headers})


@pytest.fixture(scope="module")
def exposed(server: ServedApi, tokens: dict[str, str], upstream: Upstream) -> Iterator[Job]:
    job = _submit(server, tokens["alice"], upstream.port, name="web")
    yield job
    _kill(server, tokens["alice"], job)


def exposed_port(job: Job) -> int | None:
    return urlsplit(job.http_url or "").port


def test_an_exposed_job_has_a_url_of_its_name_and_owner(server: ServedApi, exposed: Job) -> None:
    assert exposed_port(exposed) == urlsplit(server.url).port
    assert exposed.http_port is not None and exposed.http_auth
    assert _host(exposed) == "web--alice.jobs.localhost"
    assert exposed.http_url == f"http://web--alice.jobs.localhost:{exposed_port(exposed)}/"


def test_the_owner_gets_through_and_the_job_never_sees_glia_credentials(
    server: ServedApi, tokens: dict[str, str], exposed: Job
) -> None:
    answer = _get(
        server,
        _host(exposed),
        "/some/path?x=1",
        Authorization=f"Bearer {tokens['alice']}",
        Cookie="glia_session=stolen; theme=dark",
        **{"X-Glia-User": "mallory"},
    )
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert (seen["path"], seen["query"]) == ("/some/path", "x=1")
    headers = seen["headers"]
    assert headers["x-glia-user"] == "alice"
    assert "authorization" not in headers
    assert headers["cookie"] == "theme=dark"
    assert headers["host"] == _host(exposed)
    assert headers["x-forwarded-host"] == _host(exposed)


def test_anonymous_is_refused_and_a_browser_is_sent_to_sign_in(
    server: ServedApi, exposed: Job
) -> None:
    assert _get(server, _host(exposed)).status_code == 401
    browser = _get(server, _host(exposed), "/lab?x=1", Accept="text/html")
    assert browser.status_code == 302
    assert browser.headers["location"] == "/.glia/login?rd=%2Flab%3Fx%3D1"


def test_a_stranger_is_refused_as_for_a_job_that_does_not_exist(
    server: ServedApi, tokens: dict[str, str], exposed: Job
) -> None:
    bob = {"Authorization": f"Bearer {tokens['bob']}"}
    stranger = _get(server, _host(exposed), **bob)
    missing = _get(server, "nothing--alice.jobs.localhost", **bob)
    assert stranger.status_code == missing.status_code == 403
    assert stranger.text == missing.text
    assert _get(server, "nothing--alice.jobs.localhost").status_code == 401


def test_a_browser_signs_in_on_the_jobs_host_with_a_cookie_for_that_host_only(
    server: ServedApi, exposed: Job
) -> None:
    host = _host(exposed)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        form = http.get("/.glia/login?rd=/lab", headers={"Host": host})
        assert form.status_code == 200 and "<form" in form.text
        wrong = http.post(
            "/.glia/login",
            headers={"Host": host},
            data={"username": "alice", "password": "nope", "rd": "/lab"},
        )
        assert wrong.status_code == 401 and "glia_session" not in wrong.headers.get(
            "set-cookie", ""
        )
        signed_in = http.post(
            "/.glia/login",
            headers={"Host": host},
            data={"username": "alice", "password": "alice-password", "rd": "//evil.example/"},
        )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/"  # never to another site
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    session = signed_in.cookies["glia_session"]
    with_cookie = {"Cookie": f"glia_session={session}"}
    assert _get(server, host, **with_cookie).status_code == 200
    # Made for this host: nowhere else, and never for the API.
    assert _get(server, "other--alice.jobs.localhost", **with_cookie).status_code == 401
    with httpx.Client(base_url=server.url, timeout=10) as http:
        api = http.post(
            "/graphql",
            json={"query": "{ me { name } }"},
            headers={"Authorization": f"Bearer {session}"},
        ).json()
    assert api["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_responses_stream_through_unbuffered(
    server: ServedApi, tokens: dict[str, str], exposed: Job, upstream: Upstream
) -> None:
    upstream.release.clear()
    headers = {"Host": _host(exposed), "Authorization": f"Bearer {tokens['alice']}"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        with http.stream("GET", "/stream", headers=headers) as answer:
            lines = answer.iter_lines()
            assert next(lines) == "first"  # while the job still holds the rest
            upstream.release.set()
            assert next(lines) == "second"


def test_websockets_pass_through(server: ServedApi, tokens: dict[str, str], exposed: Job) -> None:
    port = urlsplit(server.url).port

    async def talk() -> list[str]:
        async with connect(
            f"ws://{_host(exposed)}:{port}/ws",
            host="127.0.0.1",
            port=port,
            additional_headers={"Authorization": f"Bearer {tokens['alice']}"},
            subprotocols=["echo.v1"],  # type: ignore[list-item]
            proxy=None,
        ) as ws:
            assert ws.subprotocol == "echo.v1"
            await ws.send("hello")
            first = str(await ws.recv())
            await ws.send("again")
            return [first, str(await ws.recv())]

    assert asyncio.run(talk()) == ["echo: hello", "echo: again"]

    async def refused() -> None:
        async with connect(
            f"ws://{_host(exposed)}:{port}/ws", host="127.0.0.1", port=port, proxy=None
        ) as ws:
            await ws.recv()

    with pytest.raises(Exception):  # noqa: B017  (the handshake is refused: 403)
        asyncio.run(refused())


def test_a_job_that_does_not_listen_gets_an_error_page(
    server: ServedApi, tokens: dict[str, str]
) -> None:
    job = _submit(server, tokens["alice"], free_port())
    try:
        answer = _get(server, _host(job), Authorization=f"Bearer {tokens['alice']}")
        assert answer.status_code == 502
        assert "nothing listens on its port" in answer.text
        assert _host(job) == f"{job.id}.jobs.localhost"  # no name: its id
    finally:
        _kill(server, tokens["alice"], job)


def test_no_http_auth_lets_anyone_through(
    server: ServedApi, tokens: dict[str, str], upstream: Upstream
) -> None:
    job = _submit(server, tokens["alice"], upstream.port, name="public", http_auth=False)
    try:
        answer = _get(server, _host(job))
        assert answer.status_code == 200
        assert "x-glia-user" not in answer.json()["headers"]
    finally:
        _kill(server, tokens["alice"], job)


PROBE = r"""
import json, os, urllib.request
print("url", os.environ["GLIA_JOB_URL"], "port", os.environ["GLIA_HTTP_PORT"])
request = urllib.request.Request(
    os.environ["GLIA_API_URL"] + "/graphql",
    data=json.dumps({"query": "{ me { name } }"}).encode(),
    headers={"Authorization": "Bearer " + os.environ["GLIA_TOKEN"],
             "Content-Type": "application/json"},
)
print("me", json.load(urllib.request.urlopen(request))["data"]["me"]["name"])
"""


def test_pass_config_gives_the_job_a_token_of_its_owner_revoked_when_it_ends(
    server: ServedApi, tokens: dict[str, str], tmp_path: Path
) -> None:
    async def run() -> tuple[Job, str]:
        async with GliaClient(server.url, tokens["alice"]) as client:
            job = await client.jobs.submit(
                ["/usr/bin/python3", "-c", PROBE], http_port=8123, pass_config=True
            )

            async def ended() -> Job | None:
                found = await client.jobs.get(job.id)
                return found if found.status.is_finished else None

            done: Job = await eventually(ended, within=30)
            output = "".join([chunk.text async for chunk in client.jobs.log_text(job.id)])
            return done, output

    job, output = asyncio.run(run())
    assert job.status is JobStatus.SUCCEEDED, output
    assert f"url {job.http_url} port 8123" in output
    assert "me alice" in output
    assert "GLIA_TOKEN" not in json.dumps(job.env)

    async def token_row() -> TokenRow | None:
        async with server.platform.db.session() as session:
            token_id = await session.scalar(
                select(JobRow.config_token_id).where(JobRow.id == job.id)
            )
            return await session.get(TokenRow, token_id) if token_id else None

    row = server.call(token_row())
    assert row is not None and row.revoked_at is not None


def test_forward_auth_finds_the_job_by_its_forwarded_host(
    server: ServedApi, tokens: dict[str, str], exposed: Job
) -> None:
    forwarded = {"X-Forwarded-Host": _host(exposed), "X-Forwarded-Uri": "/lab?x=1"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        owner = http.get(
            "/auth/forward",
            headers={**forwarded, "Authorization": f"Bearer {tokens['alice']}"},
        )
        assert owner.status_code == 200
        assert (owner.headers["x-glia-user"], owner.headers["x-glia-job"]) == ("alice", exposed.id)
        anonymous = http.get("/auth/forward", headers=forwarded)
        assert anonymous.status_code == 401
        assert anonymous.headers["x-glia-login"] == "/.glia/login?rd=%2Flab%3Fx%3D1"
        # Traefik passes a redirect on to the browser; nginx takes 401 only.
        browser = http.get("/auth/forward?redirect=1", headers={**forwarded, "Accept": "text/html"})
        assert (browser.status_code, browser.headers["location"]) == (
            302,
            "/.glia/login?rd=%2Flab%3Fx%3D1",
        )
        stranger = http.get(
            "/auth/forward", headers={**forwarded, "Authorization": f"Bearer {tokens['bob']}"}
        )
        assert stranger.status_code == 403


def test_the_apis_body_limit_is_not_the_jobs(
    server: ServedApi, tokens: dict[str, str], exposed: Job
) -> None:
    body = "x" * (2 * 1024 * 1024)  # over GLIA_MAX_REQUEST_BYTES, which is the API's own
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post(
            "/graphql",
            content=body,
            headers={"Host": _host(exposed), "Authorization": f"Bearer {tokens['alice']}"},
        )
    assert answer.status_code == 200
    assert len(answer.json()["body"]) == len(body)


def test_no_host_takes_the_api_past_its_body_limit(server: ServedApi) -> None:
    body = "x" * (2 * 1024 * 1024)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for host in ("WEB--ALICE.JOBS.LOCALHOST", "jobs.localhost", "127.0.0.1"):
            answer = http.post("/graphql", content=body, headers={"Host": host})
            assert answer.status_code in (401, 413), (host, answer.status_code)
            if answer.status_code == 413:
                continue
            # The proxy's refusal, not the API: the API would have answered 413.
            assert "text/html" in answer.headers["content-type"], host
