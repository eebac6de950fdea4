"""The jobs API over HTTP, on SQLite and PostgreSQL, with an in-memory runtime."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.events import InProcessBus, RedisBus
from glia.jobs import JobReason
from tests.conftest import REDIS_URL
from tests.factories import (
    CREATE_USER,
    SUBMIT_JOB,
    Api,
    GraphQLErrors,
    handed_over,
    make_settings,
    running_api,
)
from tests.polling import eventually

JOB = """
query($id: ID!) {
  job(id: $id) {
    id status reason exitCode statusDescription startedAt finishedAt
    history { status reason exitCode description at }
  }
}
"""
JOB_BY_NAME = "query($name: String!) { job(name: $name) { id } }"
JOBS = """
query($filter: JobFilter, $first: Int, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name status tags owner { name } cluster { name } } }
  }
}
"""
KILL = (
    "mutation($id: ID!) { killJob(input: {id: $id}) { alreadyFinished job { id status reason } } }"
)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The embedded default on SQLite; the production shape (PostgreSQL + Redis) otherwise."""
    extra: dict[str, Any] = {}
    if database_url.startswith("postgresql"):
        extra = {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    async with running_api(make_settings(tmp_path, database_url, **extra), FakeRuntime()) as api:
        yield api


@pytest.fixture
def runtime(api: Api) -> FakeRuntime:
    assert isinstance(api.runtime, FakeRuntime)
    return api.runtime


async def job_status(api: Api, token: str, job_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job: dict[str, Any] = (await api.gql(JOB, {"id": job_id}, token=token))["job"]
        return job if job["status"] == status else None

    result: dict[str, Any] = await eventually(check)
    return result


async def test_submit_runs_and_records_history(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    job = await api.submit_job(
        token, name="first", preset="cpu-small", env=[{"name": "A", "value": "1"}]
    )
    assert job["status"] in ("PENDING", "RUNNING")
    assert job["uri"] == f"job://default/alice/alice/{job['id']}"
    assert job["owner"]["name"] == "alice"
    assert job["preset"] == "cpu-small"
    spec = await handed_over(runtime, job["id"])
    assert spec.env["A"] == "1"
    assert spec.env["GLIA_JOB_ID"] == job["id"]
    assert spec.env["GLIA_JOB_NAME"] == "first"
    assert spec.env["GLIA_JOB_OWNER"] == "alice"
    assert spec.env["GLIA_CLUSTER"] == "default"
    assert spec.env["GLIA_PRESET"] == "cpu-small"
    assert spec.resources.memory_mb == job["resources"]["memoryMb"]

    await job_status(api, token, job["id"], "RUNNING")
    runtime.finish(job["id"], exit_code=3, reason=JobReason.ERROR)
    done = await job_status(api, token, job["id"], "FAILED")
    assert done["exitCode"] == 3
    assert done["reason"] == "ERROR"
    assert [h["status"] for h in done["history"]] == ["PENDING", "RUNNING", "FAILED"]
    assert done["history"][0]["reason"] == "CREATING"
    assert done["history"][-1]["exitCode"] == 3
    # the job can be found by name too
    by_name = (await api.gql(JOB_BY_NAME, {"name": "first"}, token=token))["job"]
    assert by_name["id"] == job["id"]
    # An id and a name cannot be confused: each goes to its own argument.
    with pytest.raises(GraphQLErrors) as as_id:
        await api.gql(JOB, {"id": "first"}, token=token)
    assert as_id.value.code == "NOT_FOUND"
    with pytest.raises(GraphQLErrors) as as_name:
        await api.gql(JOB_BY_NAME, {"name": job["id"]}, token=token)
    assert as_name.value.code == "BAD_USER_INPUT"
    both = await api.raw(
        "query($id: ID, $name: String) { job(id: $id, name: $name) { id } }",
        {"id": job["id"], "name": "first"},
        token=token,
    )
    assert both["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert {f["field"] for f in both["errors"][0]["extensions"]["fields"]} == {"id", "name"}


async def test_kill_cancels_with_user_requested(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    job = await api.submit_job(token)
    await job_status(api, token, job["id"], "RUNNING")
    payload = (await api.gql(KILL, {"id": job["id"]}, token=token))["killJob"]
    killed = payload["job"]
    assert payload["alreadyFinished"] is False
    assert killed["status"] == "CANCELLED"
    assert killed["reason"] == "USER_REQUESTED"
    assert runtime.stop_requests and runtime.stop_requests[0][0] == job["id"]
    # killing again is a no-op
    again = (await api.gql(KILL, {"id": job["id"]}, token=token))["killJob"]
    assert again["alreadyFinished"] is True
    assert again["job"]["status"] == "CANCELLED"


async def test_other_users_see_read_and_kill_nothing(api: Api) -> None:
    alice = await api.user("alice")
    bob = await api.user("bob")
    admin = await api.user("root", role="admin")
    job = await api.submit_job(alice)

    bob_jobs = (await api.gql(JOBS, token=bob))["jobs"]
    assert bob_jobs["totalCount"] == 0 and bob_jobs["edges"] == []
    for query in (JOB, KILL):  # exactly what a job that does not exist gets
        with pytest.raises(GraphQLErrors) as denied:
            await api.gql(query, {"id": job["id"]}, token=bob)
        assert denied.value.code == "NOT_FOUND"
        assert denied.value.errors[0]["message"] == f"job {job['id']!r} not found"
        assert "alice" not in str(denied.value.errors)
    # a name resolves among the caller's own jobs only
    with pytest.raises(GraphQLErrors) as missing:
        await api.gql(JOB_BY_NAME, {"name": "first"}, token=bob)
    assert missing.value.code == "NOT_FOUND"

    admin_jobs = (await api.gql(JOBS, token=admin))["jobs"]
    assert [e["node"]["id"] for e in admin_jobs["edges"]] == [job["id"]]
    alice_jobs = (await api.gql(JOBS, token=alice))["jobs"]
    assert alice_jobs["totalCount"] == 1


async def test_errors_carry_codes(api: Api) -> None:
    body = await api.raw("{ me { name } }")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await api.raw("{ me { name } }", token="not-a-token")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    token = await api.user("alice")
    cases = [
        ({"command": ["x"], "preset": "no-such-preset"}, "BAD_USER_INPUT"),
        ({"command": []}, "BAD_USER_INPUT"),
        ({"command": ["x"], "env": [{"name": "9X", "value": "1"}]}, "BAD_USER_INPUT"),
        ({"command": ["x"], "cluster": "elsewhere"}, "NOT_FOUND"),
    ]
    for job_input, code in cases:
        body = await api.raw(SUBMIT_JOB, {"input": job_input}, token=token)
        assert body["errors"][0]["extensions"]["code"] == code, (job_input, body)
        assert "Traceback" not in body["errors"][0]["message"]

    await api.submit_job(token, name="dup")
    body = await api.raw(SUBMIT_JOB, {"input": {"command": ["x"], "name": "dup"}}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"

    # Errors about the request itself: nothing ran, so there is no `data`.
    body = await api.raw("{ nope }", token=token)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "data" not in body
    body = await api.raw("{ me { name ", token=token)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "data" not in body
    body = await api.raw(JOB, {"id": ["not", "an", "id"]}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert "data" not in body
    deep = "{ jobs { edges { node { owner { name } cluster { presets { name } } } } } }"
    assert "errors" not in await api.raw(deep, token=token)
    many = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(40)) + " }"
    body = await api.raw(many, token=token)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_only_admins_create_users(api: Api) -> None:
    alice = await api.user("alice")
    admin = await api.user("root", role="admin")
    create = CREATE_USER
    body = await api.raw(create, {"input": {"name": "carol"}}, token=alice)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    created = (await api.gql(create, {"input": {"name": "carol"}}, token=admin))["createUser"]
    assert created["user"] == {"name": "carol", "role": "USER"}
    assert len(created["password"]) >= 16
    body = await api.raw(create, {"input": {"name": "carol"}}, token=admin)
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"

    login = """mutation($u: String!, $p: String!) {
        login(input: {username: $u, password: $p}) { token user { name } }
    }"""
    token = (await api.gql(login, {"u": "carol", "p": created["password"]}))["login"]["token"]
    assert (await api.gql("{ me { name } }", token=token))["me"]["name"] == "carol"
    body = await api.raw(login, {"u": "carol", "p": "wrong-password"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    logout = (await api.gql("mutation { logout { tokenId } }", token=token))["logout"]
    assert logout["tokenId"]
    body = await api.raw("{ me { name } }", token=token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_filters_and_pages(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    ids = []
    for i in range(7):
        job = await api.submit_job(token, name=f"job{i}", tags=["even"] if i % 2 == 0 else ["odd"])
        ids.append(job["id"])
    await job_status(api, token, ids[0], "RUNNING")
    runtime.finish(ids[0], exit_code=0, reason=JobReason.COMPLETED)
    await job_status(api, token, ids[0], "SUCCEEDED")

    seen: list[str] = []
    after = None
    while True:
        page = (await api.gql(JOBS, {"first": 3, "after": after}, token=token))["jobs"]
        assert page["totalCount"] == 7
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(ids))  # newest first, each once

    unfinished = (
        await api.gql(JOBS, {"filter": {"statuses": ["PENDING", "RUNNING"]}}, token=token)
    )["jobs"]
    assert ids[0] not in [e["node"]["id"] for e in unfinished["edges"]]
    assert unfinished["totalCount"] == 6
    even = (await api.gql(JOBS, {"filter": {"tags": ["even"]}}, token=token))["jobs"]
    assert sorted(e["node"]["id"] for e in even["edges"]) == sorted(ids[0::2])
    named = (await api.gql(JOBS, {"filter": {"name": "job3"}}, token=token))["jobs"]
    assert [e["node"]["id"] for e in named["edges"]] == [ids[3]]

    body = await api.raw(JOBS, {"after": "garbage!"}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await api.raw(JOBS, {"first": 100000}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_job_list_statement_count_is_bounded(database_url: str, tmp_path: Path) -> None:
    """A page of jobs with owners, clusters loads in a fixed number of statements."""
    # No periodic reconcile: its queries would be counted with the request's.
    settings = make_settings(tmp_path, database_url, reconcile_interval_s=3600)
    async with running_api(settings, FakeRuntime()) as api:
        await _count_list_statements(api)


async def _count_list_statements(api: Api) -> None:
    tokens = [await api.user(name) for name in ("u1", "u2", "u3")]
    admin = await api.user("root", role="admin")
    submitted = [await api.submit_job(token) for token in tokens for _ in range(5)]
    for job in submitted:
        await job_status(api, admin, job["id"], "RUNNING")
    statements: list[str] = []

    def count(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):
            statements.append(args[2])

    engine = api.platform.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        page = (await api.gql(JOBS, {"first": 50}, token=admin))["jobs"]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(page["edges"]) == 15
    # token check, count, page, owners (one batch), clusters (one batch)
    assert len(statements) <= 6, statements


async def test_reconcile_fails_lost_jobs_and_stops_orphans(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    job = await api.submit_job(token)
    await job_status(api, token, job["id"], "RUNNING")
    runtime.lose(job["id"])
    lost = await job_status(api, token, job["id"], "FAILED")
    assert lost["reason"] == "LOST"


async def test_status_changes_travel_on_the_configured_bus(api: Api, database_url: str) -> None:
    expected = RedisBus if database_url.startswith("postgresql") else InProcessBus
    assert isinstance(api.platform.bus, expected)
    token = await api.user("alice")
    job = await api.submit_job(token)
    async with api.platform.bus.subscribe(f"jobs.status.{job['id']}") as messages:
        await api.gql(KILL, {"id": job["id"]}, token=token)
        async with asyncio.timeout(5):
            async for message in messages:
                if message["status"] == "cancelled":
                    break


async def test_query_depth_and_size_limits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_query_depth=4, max_query_tokens=60)
    async with running_api(settings, FakeRuntime()) as api:
        token = await api.user("alice")
        assert "errors" not in await api.raw("{ jobs { edges { cursor } } }", token=token)
        deep = "{ jobs { edges { node { cluster { presets { name } } } } } }"
        body = await api.raw(deep, token=token)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "depth" in body["errors"][0]["message"]
        huge = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(20)) + " }"
        body = await api.raw(huge, token=token)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
        assert "token" in body["errors"][0]["message"].lower()


async def test_a_submission_with_a_used_idempotency_key_returns_the_first_job(
    api: Api, runtime: FakeRuntime
) -> None:
    token = await api.user("alice")
    first = await api.submit_job(token, command=["echo", "once"], idempotencyKey="retry-1")
    again = await api.submit_job(token, command=["echo", "once"], idempotencyKey="retry-1")
    assert again["id"] == first["id"]
    racing = await asyncio.gather(
        *(
            api.submit_job(token, command=["echo", "race"], idempotencyKey="race-1")
            for _ in range(5)
        )
    )
    assert len({job["id"] for job in racing}) == 1
    for job in (first, racing[0]):
        await handed_over(runtime, job["id"])
    assert set(runtime.specs) == {first["id"], racing[0]["id"]}  # one workload per key
    body = await api.raw(
        SUBMIT_JOB,
        {"input": {"command": ["echo", "other"], "idempotencyKey": "retry-1"}},
        token=token,
    )
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    other_user = await api.user("bob")  # keys are per user
    assert (await api.submit_job(other_user, idempotencyKey="retry-1"))["id"] != first["id"]


async def test_racing_transitions_move_a_job_once_and_log_nothing(
    api: Api, runtime: FakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    token = await api.user("alice")
    jobs = [await api.submit_job(token) for _ in range(12)]
    for job in jobs:
        await job_status(api, token, job["id"], "RUNNING")
    runtime.honour_stop = False
    with caplog.at_level(logging.ERROR):
        await asyncio.gather(
            *(api.gql(KILL, {"id": job["id"]}, token=token) for job in jobs),
            *(
                api.platform.job_status.apply(  # the watch's path, racing the kills
                    runtime.finish(job["id"], exit_code=143, reason=JobReason.USER_REQUESTED)
                )
                for job in jobs
            ),
            *(api.platform.reconciler.reconcile("default") for _ in range(3)),
        )
    for job in jobs:
        done = (await api.gql(JOB, {"id": job["id"]}, token=token))["job"]
        assert [h["status"] for h in done["history"]] == ["PENDING", "RUNNING", "CANCELLED"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_sibling_fields_share_the_operations_session_safely(api: Api) -> None:
    """GraphQL resolves sibling fields concurrently: they take the one session in turn."""
    token = await api.user("alice")
    job = await api.submit_job(token, name="sibling")
    query = """query($id: ID!) {
        a: job(id: $id) { id history { status } cluster { name } }
        b: jobs(first: 5) { totalCount edges { node { id history { status } cluster { name } } } }
        c: job(name: "sibling") { id }
        me { name }
    }"""
    for _ in range(10):
        body = await api.raw(query, {"id": job["id"]}, token=token)
        assert "errors" not in body, body
        assert body["data"]["a"]["id"] == body["data"]["c"]["id"] == job["id"]


async def test_a_user_may_hold_only_so_many_unfinished_jobs(
    database_url: str, tmp_path: Path
) -> None:
    runtime = FakeRuntime()
    settings = make_settings(tmp_path, database_url, max_unfinished_jobs_per_user=2)
    async with running_api(settings, runtime) as api:
        alice, bob = await api.user("alice"), await api.user("bob")
        first = await api.submit_job(alice)
        await api.submit_job(alice)
        body = await api.raw(SUBMIT_JOB, {"input": {"command": ["echo", "hi"]}}, token=alice)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "QUOTA_EXCEEDED"
        assert "2 unfinished jobs" in error["message"]
        await api.submit_job(bob)  # the bound is each user's own
        await job_status(api, alice, first["id"], "RUNNING")
        runtime.finish(first["id"], exit_code=0)
        await job_status(api, alice, first["id"], "SUCCEEDED")
        await api.submit_job(alice)  # a finished job holds no place
