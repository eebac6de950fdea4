"""No client can exhaust the server: bodies, query cost, metric labels, login floods.

Each test is an attack an ordinary (or anonymous) client could make against the foundation,
which answered it with unbounded work; each now gets a clear, coded refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster_gateway.runtimes.fake import FakeRuntime
from tests.factories import JOB_FIELDS, Api, make_settings, running_api

LOGIN = """mutation($u: String!, $p: String!) {
    login(input: {username: $u, password: $p}) { token }
}"""


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(tmp_path, max_request_bytes=64 * 1024, login_rate_per_user="5/minute")
    async with running_api(settings, FakeRuntime()) as api:
        yield api


async def test_an_oversized_body_is_refused_before_it_is_read(api: Api) -> None:
    big = {"query": "{ me { name } }", "variables": {"pad": "x" * 100_000}}
    declared = await api.http.post("/graphql", json=big)
    assert declared.status_code == 413
    assert declared.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"query": "{ me { name } }", "variables": {"pad": "'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}}'

    streamed = await api.http.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    small = await api.http.post("/graphql", json={"query": "{ me { name } }"})
    assert small.status_code == 200  # refused for the missing token, not for its size
    assert small.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_query_costing_too_much_is_refused_before_it_runs(api: Api) -> None:
    token = await api.user("alice")
    for _ in range(3):
        await api.submit_job(token)
    aliases = " ".join(f"a{i}: jobs(first: 500) {{ edges {{ node {{ id }} }} }}" for i in range(30))
    body = await api.raw(f"{{ {aliases} }}", token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "over the limit" in body["errors"][0]["message"]
    assert body.get("data") is None

    by_variable = "query($n: Int!) { " + aliases.replace("first: 500", "first: $n") + " }"
    body = await api.raw(by_variable, {"n": 500}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await api.raw(by_variable, {"n": 2}, token=token)
    assert "errors" not in body and len(body["data"]["a0"]["edges"]) == 2

    # What the SDK asks for, a full page of 500 with every field, stays allowed.
    page = f"{{ jobs(first: 500) {{ edges {{ cursor node {{ {JOB_FIELDS} }} }} }} }}"
    body = await api.raw(page, token=token)
    assert "errors" not in body, body


async def test_metric_labels_stay_bounded_whatever_names_clients_send(api: Api) -> None:
    for i in range(300):
        await api.raw(f"query Op{i} {{ __typename }}")
    await api.raw("query ThisNameIsFarTooLongToBeALabelAndKeepsGoingOnAndOnAndOnAndOnAndOn { x }")
    metrics = (await api.http.get("/metrics")).text
    names = {
        line.split('operation="', 1)[1].split('"', 1)[0]
        for line in metrics.splitlines()
        if line.startswith("glia_graphql_operations_total{")
    }
    assert "other" in names
    assert len(names) <= 201


async def test_a_login_flood_is_answered_429_and_the_server_keeps_serving(api: Api) -> None:
    await api.user("alice")

    async def attempt(i: int) -> tuple[int, str]:
        response = await api.http.post(
            "/graphql", json={"query": LOGIN, "variables": {"u": "alice", "p": f"wrong-{i}"}}
        )
        return response.status_code, response.json()["errors"][0]["extensions"]["code"]

    answers = await asyncio.gather(*(attempt(i) for i in range(20)))
    health = await asyncio.gather(*(api.http.get("/healthz") for _ in range(5)))
    assert [r.status_code for r in health] == [200] * 5
    assert sorted(answers).count((200, "UNAUTHENTICATED")) == 5  # the allowed attempts
    assert answers.count((429, "TOO_MANY_REQUESTS")) == 15

    refused = await api.http.post(
        "/graphql", json={"query": LOGIN, "variables": {"u": "alice", "p": "password-alice"}}
    )
    assert refused.status_code == 429  # the right password too, until the window passes
    assert int(refused.headers["Retry-After"]) >= 1
    other = await api.raw(LOGIN, {"u": "bob", "p": "whatever-pw"})
    assert other["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"  # bob is not limited


async def test_a_subscription_sent_as_a_query_gets_a_clear_error(api: Api) -> None:
    token = await api.user("alice")
    response = await api.http.post(
        "/graphql",
        json={"query": 'subscription { jobStatus(id: "job-x") { id } }'},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code < 500
    assert "Traceback" not in response.text
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
