"""Jobs' telemetry through the API: samples recorded by the cluster's controller, folded into
one-minute points after an hour and removed after the retention; the history answers only
those who may read the job, within its bound on points."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cluster_gateway.gateway import ClusterCapacity
from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.store.telemetry import MINUTE, RAW, TelemetryRow
from glia.clock import utcnow
from glia.jobs import JobStatus
from glia.telemetry import GpuSample, TelemetrySample
from tests.conftest import REDIS_URL
from tests.factories import Api, GraphQLErrors, make_settings, running_api, serving_api
from tests.polling import eventually

HISTORY = """query($id: ID!, $since: DateTime, $until: DateTime, $step: Int) {
  jobTelemetryHistory(id: $id, since: $since, until: $until, step: $step) {
    stepSeconds points { time cpuPercent memoryBytes gpuPercent gpuMemoryBytes samples } } }"""
STATUS = "query($id: ID!) { job(id: $id) { status } }"
GIB = 1024**3


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    extra: dict[str, Any] = {"telemetry_flush_interval_s": 0.2}
    if database_url.startswith("postgresql"):
        extra |= {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    runtime = FakeRuntime(capacity=ClusterCapacity(cpu=64, memory_mb=1 << 20))
    async with running_api(make_settings(tmp_path, database_url, **extra), runtime) as api:
        yield api


def fake(api: Api) -> FakeRuntime:
    assert isinstance(api.runtime, FakeRuntime)
    return api.runtime


async def running_job(api: Api, token: str) -> str:
    job = await api.submit_job(token, command=["sleep", "1000"])

    async def running() -> bool:
        found = await api.gql(STATUS, {"id": job["id"]}, token=token)
        return bool(found["job"]["status"] == "RUNNING")

    await eventually(running)
    return str(job["id"])


async def history(api: Api, token: str, job_id: str, **args: Any) -> dict[str, Any]:
    variables = {"id": job_id} | {
        k: v.isoformat() if isinstance(v, datetime) else v for k, v in args.items()
    }
    data = await api.gql(HISTORY, variables, token=token)
    found: dict[str, Any] = data["jobTelemetryHistory"]
    return found


def sample(
    job_id: str, at: datetime, cpu: float, memory: int, gpu: float | None = None
) -> TelemetrySample:
    gpus = (GpuSample(device="0", utilization_percent=gpu, memory_bytes=GIB),) if gpu else ()
    return TelemetrySample(job_id=job_id, time=at, cpu_percent=cpu, memory_bytes=memory, gpus=gpus)


async def rows(api: Api, span_s: int) -> int:
    async with api.platform.db.session() as session:
        query = select(func.count()).select_from(TelemetryRow).where(TelemetryRow.span_s == span_s)
        return int(await session.scalar(query) or 0)


async def test_live_samples_are_recorded_and_answered(api: Api) -> None:
    alice = await api.user("alice")
    job_id = await running_job(api, alice)
    start = utcnow()
    for n in range(3):  # one a second, as a cluster samples
        fake(api).emit_telemetry(job_id, 50.0 + n, (n + 1) * GIB, time=start + timedelta(seconds=n))
    # Too soon after the one before: one sample a second at most is kept.
    fake(api).emit_telemetry(job_id, 99.0, GIB, time=start + timedelta(seconds=2.5))

    async def recorded() -> dict[str, Any] | None:
        found = await history(api, alice, job_id, step=1)
        return found if len(found["points"]) == 3 else None

    found = await eventually(recorded)
    assert found["stepSeconds"] == 1
    assert [p["cpuPercent"] for p in found["points"]] == [50.0, 51.0, 52.0]
    assert [p["memoryBytes"] for p in found["points"]] == [GIB, 2 * GIB, 3 * GIB]
    assert {p["gpuPercent"] for p in found["points"]} == {None}
    # One step over all of them: the mean CPU, the most memory.
    whole = await history(
        api, alice, job_id, since=start, until=start + timedelta(seconds=10), step=10
    )
    (point,) = whole["points"]
    assert datetime.fromisoformat(point.pop("time")) == start.replace(
        microsecond=start.microsecond // 1000 * 1000
    )
    assert [point] == [
        {
            "cpuPercent": 51.0,
            "memoryBytes": 3 * GIB,
            "gpuPercent": None,
            "gpuMemoryBytes": None,
            "samples": 3,
        }
    ]


async def test_history_after_downsampling_and_retention(api: Api) -> None:
    alice = await api.user("alice")
    job_id = await running_job(api, alice)
    telemetry = api.platform.telemetry
    now = (utcnow() - timedelta(minutes=1)).replace(second=30, microsecond=0)
    two_hours_ago = now - timedelta(hours=2)
    base = two_hours_ago.replace(second=0)
    old = [  # two whole minutes, two hours ago: 60 samples each
        sample(
            job_id,
            base + timedelta(seconds=s),
            cpu=10.0 if s < 60 else 30.0,
            memory=GIB + s,
            gpu=40.0,
        )
        for s in range(120)
    ]
    recent = [sample(job_id, now - timedelta(seconds=s), cpu=80.0, memory=GIB) for s in range(1, 6)]
    await telemetry.store("default", old + recent)
    assert await rows(api, RAW) == 125

    folded, removed = await telemetry.compact("default", now=now)
    assert (folded, removed) == (120, 0)
    assert await rows(api, RAW) == 5  # the last hour's stay raw
    assert await rows(api, MINUTE) == 2
    assert await telemetry.compact("default", now=now) == (0, 0)  # nothing twice

    found = await history(
        api, alice, job_id, since=base, until=base + timedelta(minutes=2), step=60
    )
    assert found["stepSeconds"] == 60
    assert [(p["cpuPercent"], p["samples"]) for p in found["points"]] == [(10.0, 60), (30.0, 60)]
    assert [p["memoryBytes"] for p in found["points"]] == [GIB + 59, GIB + 119]
    assert {(p["gpuPercent"], p["gpuMemoryBytes"]) for p in found["points"]} == {(40.0, GIB)}
    # A range reaching back past the last hour is answered a minute a point at least.
    found = await history(api, alice, job_id, since=base, step=1)
    assert found["stepSeconds"] == 60
    assert sum(p["samples"] for p in found["points"]) == 125
    # Samples that come late for a folded minute merge with its point.
    await telemetry.store(
        "default",
        [sample(job_id, base + timedelta(seconds=59, milliseconds=500), cpu=70.0, memory=0)],
    )
    await telemetry.compact("default", now=now)
    found = await history(
        api, alice, job_id, since=base, until=base + timedelta(minutes=1), step=60
    )
    assert [(p["cpuPercent"], p["samples"]) for p in found["points"]] == [(round(670 / 61, 2), 61)]

    # Past the retention (30 days by default) points are removed.
    later = now + timedelta(days=30) - timedelta(hours=1)
    folded, removed = await telemetry.compact("default", now=later)
    assert (folded, removed) == (5, 2)  # the two old minutes go
    assert await rows(api, RAW) + await rows(api, MINUTE) == 1  # the recent samples' minute


async def test_an_answer_has_at_most_a_thousand_points(api: Api) -> None:
    alice = await api.user("alice")
    job_id = await running_job(api, alice)
    now = utcnow()
    await api.platform.telemetry.store(
        "default", [sample(job_id, now - timedelta(seconds=s), 5.0, GIB) for s in range(1, 3001)]
    )
    found = await history(
        api, alice, job_id, since=now - timedelta(seconds=3000), until=now, step=1
    )
    assert found["stepSeconds"] == 3
    assert len(found["points"]) == 1000
    assert sum(p["samples"] for p in found["points"]) == 3000


async def test_strangers_and_bad_arguments(api: Api) -> None:
    alice, mallory = await api.user("alice"), await api.user("mallory")
    job_id = await running_job(api, alice)
    with pytest.raises(GraphQLErrors) as stranger:
        await history(api, mallory, job_id)
    assert stranger.value.code == "NOT_FOUND"
    now = utcnow()
    for args, field in (
        ({"step": 0}, "step"),
        ({"since": now, "until": now - timedelta(seconds=1)}, "until"),
    ):
        with pytest.raises(GraphQLErrors) as bad:
            await history(api, alice, job_id, **args)
        assert bad.value.code == "BAD_USER_INPUT", field
    with pytest.raises(GraphQLErrors) as naive:
        await api.gql(HISTORY, {"id": job_id, "since": "2026-01-01T00:00:00"}, token=alice)
    assert naive.value.code == "BAD_USER_INPUT"


def test_a_follower_waits_while_the_job_is_pending_and_ends_with_it(tmp_path: Path) -> None:
    from sdk import GliaClient

    runtime = FakeRuntime(auto_run=False)
    with serving_api(make_settings(tmp_path), runtime) as server:
        alice = server.user("alice")

        def on_server(call: Callable[[], object]) -> None:
            server.loop.call_soon_threadsafe(call)

        async def follow() -> list[float]:
            async with GliaClient(server.url, alice) as client:
                job = await client.jobs.submit(["sleep", "1000"])

                async def collect() -> list[float]:
                    return [s.cpu_percent async for s in client.telemetry.follow(job.id)]

                follower = asyncio.create_task(collect())
                await asyncio.sleep(1.0)
                assert not follower.done()  # pending: it waits
                on_server(lambda: runtime.run(job.id))

                async def running() -> bool:
                    return (await client.jobs.get(job.id)).status is JobStatus.RUNNING

                await eventually(running)
                start = utcnow()
                for n in range(20):  # until the follower has subscribed at the cluster
                    at = start + timedelta(seconds=n)
                    on_server(lambda n=n, at=at: runtime.emit_telemetry(job.id, n, GIB, time=at))
                    await asyncio.sleep(0.2)
                on_server(lambda: runtime.finish(job.id, 0))
                async with asyncio.timeout(10):
                    return await follower  # ends with the job

        samples = asyncio.run(follow())
        assert samples and samples == sorted(samples)  # each once, in order
