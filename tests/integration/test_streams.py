"""Streams and waits: the log byte route, and no database connection held while waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster_gateway.runtimes.fake import FakeRuntime
from glia.jobs import JobStatus
from tests.factories import Api, make_settings, running_api
from tests.polling import eventually


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    # No periodic reconcile: its short sessions would be counted with the waits'.
    settings = make_settings(tmp_path, database_url, reconcile_interval_s=3600)
    async with running_api(settings, FakeRuntime()) as api:
        yield api


@pytest.fixture
def runtime(api: Api) -> FakeRuntime:
    assert isinstance(api.runtime, FakeRuntime)
    return api.runtime


async def _wait_for_status(api: Api, job_id: str, token: str, status: str) -> None:
    async def reached() -> bool:
        found = await api.gql(
            "query($id: ID!) { job(id: $id) { status } }", {"id": job_id}, token=token
        )
        return bool(found["job"]["status"] == status)

    await eventually(reached)


async def _running_job(api: Api, runtime: FakeRuntime, token: str) -> str:
    job_id: str = (await api.submit_job(token))["id"]
    await _wait_for_status(api, job_id, token, "RUNNING")
    return job_id


async def test_the_log_byte_route_serves_ranges_to_readers_only(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    bob = await api.user("bob")
    job_id = await _running_job(api, runtime, alice)
    runtime.emit_log(job_id, "first line\nsecond line")
    whole = b"first line\nsecond line\n"
    auth = {"Authorization": f"Bearer {alice}"}
    # While the job runs its log cap may drop old output mid-answer: no promised length.
    running = await api.http.get(f"/api/jobs/{job_id}/log", headers=auth)
    assert (running.status_code, running.content) == (200, whole)
    assert "content-length" not in running.headers
    runtime.finish(job_id, 0)
    await _wait_for_status(api, job_id, alice, "SUCCEEDED")
    url = (
        await api.gql("query($id: ID!) { job(id: $id) { logUrl } }", {"id": job_id}, token=alice)
    )["job"]["logUrl"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    assert path == f"api/jobs/{job_id}/log"

    full = await api.http.get(f"/{path}", headers=auth)
    assert (full.status_code, full.content) == (200, whole)
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-length"] == str(len(whole))

    resumed = await api.http.get(f"/{path}?offset=11", headers=auth)
    assert resumed.content == b"second line\n"

    part = await api.http.get(f"/{path}", headers={**auth, "Range": "bytes=6-9"})
    assert (part.status_code, part.content) == (206, b"line")
    assert part.headers["content-range"] == f"bytes 6-9/{len(whole)}"
    tail = await api.http.get(f"/{path}", headers={**auth, "Range": "bytes=-5"})
    assert tail.content == b"line\n"

    beyond = await api.http.get(f"/{path}", headers={**auth, "Range": "bytes=999-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(whole)}"

    anonymous = await api.http.get(f"/{path}")
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    other = await api.http.get(f"/{path}", headers={"Authorization": f"Bearer {bob}"})
    assert other.status_code == 404  # as for a job that does not exist
    assert other.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    missing = await api.http.get("/api/jobs/job-nope/log", headers=auth)
    assert missing.status_code == 404
    bad = await api.http.get(f"/{path}?offset=-1", headers=auth)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    await runtime.forget(job_id)
    gone = await api.http.get(f"/{path}", headers=auth)
    assert gone.status_code == 404
    assert "no longer kept" in gone.json()["errors"][0]["message"]


async def test_a_kill_holds_no_connection_while_it_waits(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    job_id = await _running_job(api, runtime, token)
    runtime.honour_stop = False  # the workload takes its time to stop
    kill = asyncio.create_task(
        api.gql(
            "mutation($id: ID!) { killJob(input: {id: $id}) { job { status } } }",
            {"id": job_id},
            token=token,
        )
    )

    async def stop_asked() -> bool:
        return bool(runtime.stop_requests)

    await eventually(stop_asked)
    await asyncio.sleep(0.2)  # well into the wait
    assert api.platform.db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    runtime.finish(job_id, 143)
    assert (await kill)["killJob"]["job"]["status"] == "FAILED"


async def test_a_status_stream_holds_no_connection_between_changes(
    api: Api, runtime: FakeRuntime
) -> None:
    token = await api.user("alice")
    job_id = await _running_job(api, runtime, token)
    user = (await api.platform.auth.identify(token)).user
    stream = api.platform.jobs.status_changes(user, job_id)
    async with contextlib.aclosing(stream):
        first = await anext(stream)
        assert first.status is JobStatus.RUNNING
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        assert api.platform.db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        runtime.finish(job_id, 0)
        final = await asyncio.wait_for(waiting, 5)
        assert final.status is JobStatus.SUCCEEDED
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
