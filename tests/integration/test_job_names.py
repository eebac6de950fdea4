"""Job names (unique among an owner's unfinished jobs, decided by the database) and the
listing's filters on tags and description (in SQL), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from cluster_gateway.runtimes.fake import FakeRuntime
from glia.jobs import JobReason
from tests.conftest import REDIS_URL
from tests.factories import SUBMIT_JOB, Api, make_settings, running_api
from tests.polling import eventually

JOB_BY_NAME = "query($name: String!) { job(name: $name) { id name status } }"
JOBS = """
query($filter: JobFilter, $first: Int, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id name tags description } }
  }
}
"""


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    extra: dict[str, Any] = {}
    if database_url.startswith("postgresql"):
        extra = {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    async with running_api(make_settings(tmp_path, database_url, **extra), FakeRuntime()) as api:
        yield api


async def _finish(api: Api, token: str, job_id: str) -> None:
    assert isinstance(api.runtime, FakeRuntime)
    query = "query($id: ID!) { job(id: $id) { status } }"

    async def running() -> bool:
        return (await api.gql(query, {"id": job_id}, token=token))["job"]["status"] == "RUNNING"

    await eventually(running)
    api.runtime.finish(job_id, exit_code=0, reason=JobReason.COMPLETED)

    async def succeeded() -> bool:
        status = (await api.gql(query, {"id": job_id}, token=token))["job"]["status"]
        return bool(status == "SUCCEEDED")

    await eventually(succeeded)


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 41, "-abc", "abc-", "ab--cd", "Abc", "1abc", "ab_c", "job-abc", "abc\n"],
)
async def test_bad_names_are_refused_with_the_field(api: Api, name: str) -> None:
    token = await api.user("alice")
    body = await api.raw(SUBMIT_JOB, {"input": {"command": ["true"], "name": name}}, token=token)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert [f["field"] for f in error["extensions"]["fields"]] == ["name"]


async def test_a_name_is_unique_among_the_owners_unfinished_jobs(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    first = await api.submit_job(alice, name="train", tags=["a"])
    body = await api.raw(SUBMIT_JOB, {"input": {"command": ["x"], "name": "train"}}, token=alice)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["fields"][0]["field"] == "name"
    assert first["id"] in error["message"]
    # Another owner's names are theirs; the longest name fits.
    assert (await api.submit_job(bob, name="train"))["name"] == "train"
    assert (await api.submit_job(alice, name="a" + "-b" * 19 + "c"))["name"]
    # The name resolves to the unfinished job; once it ends, the name is free again.
    assert (await api.gql(JOB_BY_NAME, {"name": "train"}, token=alice))["job"]["id"] == first["id"]
    await _finish(api, alice, first["id"])
    second = await api.submit_job(alice, name="train")
    assert second["id"] != first["id"]
    found = (await api.gql(JOB_BY_NAME, {"name": "train"}, token=alice))["job"]
    assert found == {"id": second["id"], "name": "train", "status": found["status"]}
    assert found["status"] in ("PENDING", "RUNNING")
    # The idempotency key still answers a retry with its job, name and all.
    keyed = await api.submit_job(alice, name="keyed", idempotencyKey="k-1")
    again = await api.submit_job(alice, name="keyed", idempotencyKey="k-1")
    assert again["id"] == keyed["id"]


async def test_twenty_racing_submissions_of_one_name_make_one_job(api: Api) -> None:
    token = await api.user("alice")
    bodies = await asyncio.gather(
        *(
            api.raw(SUBMIT_JOB, {"input": {"command": ["true"], "name": "race"}}, token=token)
            for _ in range(20)
        )
    )
    made = [b["data"]["submitJob"]["job"]["id"] for b in bodies if not b.get("errors")]
    codes = [b["errors"][0]["extensions"]["code"] for b in bodies if b.get("errors")]
    assert len(made) == 1, bodies
    assert codes == ["CONFLICT"] * 19
    runtime = api.runtime
    assert isinstance(runtime, FakeRuntime)

    async def started() -> bool:  # workloads start after the answer
        return bool(runtime.specs)

    await eventually(started)
    assert list(runtime.specs) == made
    listed = (await api.gql(JOBS, {"filter": {"name": "race"}}, token=token))["jobs"]
    assert listed["totalCount"] == 1


async def test_tags_and_description_filter_in_sql(api: Api, database_url: str) -> None:
    token = await api.user("alice")
    other = await api.user("bob")
    specs = [
        (["sweep", "lr=0.1"], "Learning rate 10%"),
        (["sweep", "lr=0.01"], "learning RATE one percent"),
        (["sweep"], "baseline_run"),
        ([], None),
    ]
    ids = [(await api.submit_job(token, tags=tags, description=text))["id"] for tags, text in specs]
    await api.submit_job(other, tags=["sweep"], description="learning rate")  # not alice's

    async def listed(job_filter: dict[str, Any], first: int = 50) -> tuple[list[str], int]:
        page = (await api.gql(JOBS, {"filter": job_filter, "first": first}, token=token))["jobs"]
        return [e["node"]["id"] for e in page["edges"]], page["totalCount"]

    assert await listed({"tags": ["sweep"]}) == (ids[2::-1], 3)
    assert await listed({"tags": ["sweep", "lr=0.1"]}) == ([ids[0]], 1)
    assert await listed({"tags": ["sweep", "nope"]}) == ([], 0)
    assert await listed({"description": "learning rate"}) == ([ids[1], ids[0]], 2)
    assert await listed({"description": "10%"}) == ([ids[0]], 1)  # % is a character, not a wildcard
    assert await listed({"description": "e_r"}) == ([ids[2]], 1)  # so is _
    assert await listed({"description": "rate", "tags": ["lr=0.01"]}) == ([ids[1]], 1)
    # Pages of a filtered listing: each job once, the count of all of them on each page.
    page = (await api.gql(JOBS, {"filter": {"tags": ["sweep"]}, "first": 2}, token=token))["jobs"]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"]
    rest = await api.gql(
        JOBS,
        {"filter": {"tags": ["sweep"]}, "first": 2, "after": page["pageInfo"]["endCursor"]},
        token=token,
    )
    assert [e["node"]["id"] for e in rest["jobs"]["edges"]] == [ids[0]]
    body = await api.raw(JOBS, {"filter": {"description": "x" * 1001}}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    # The filter is one statement per page and one count, however many jobs it skips.
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "jobs" in statement:
            statements.append(statement)

    engine = api.platform.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        await listed({"tags": ["sweep"], "description": "rate"}, first=1)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # (The status machine's own reads of jobs may land meanwhile: they have no tags in them.)
    filtered = [s for s in statements if "job_tags" in s]
    assert len(filtered) == 2, statements
    assert "count(*)" in filtered[0]
