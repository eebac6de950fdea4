"""Preemption through the API: a high-priority job that does not fit suspends running
preemptible jobs of lower priority, which start again when room returns, keeping their
history; nothing else is ever preempted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster_gateway.gateway import ClusterCapacity, WorkloadPhase, WorkloadState
from cluster_gateway.runtimes.fake import FakeRuntime
from glia.clock import utcnow
from tests.conftest import REDIS_URL
from tests.factories import Api, make_settings, running_api
from tests.polling import eventually

ADD_PRESET = """
mutation($input: PresetInput!) { addPreset(input: $input) { preset { name } } }
"""
JOB = """
query($id: ID!) { job(id: $id) { id status reason statusDescription preemptible
  history { status reason description } } }
"""
KILL = """mutation($id: ID!) { killJob(input: {id: $id}) { job { status reason } } }"""


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """A cluster of 2 CPUs with 1-CPU presets `spot` (preemptible) and `unit` (not)."""
    extra: dict[str, Any] = {}
    if database_url.startswith("postgresql"):
        extra = {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    runtime = FakeRuntime(capacity=ClusterCapacity(cpu=2, memory_mb=4096))
    async with running_api(make_settings(tmp_path, database_url, **extra), runtime) as api:
        root = await api.user("root", role="admin")
        for name, preemptible in (("spot", True), ("unit", False)):
            preset = {
                "cluster": "default",
                "name": name,
                "cpu": 1,
                "memoryMb": 512,
                "preemptible": preemptible,
            }
            await api.gql(ADD_PRESET, {"input": preset}, token=root)
        yield api


@pytest.fixture
def runtime(api: Api) -> FakeRuntime:
    assert isinstance(api.runtime, FakeRuntime)
    return api.runtime


async def submit(api: Api, token: str, preset: str, priority: str = "NORMAL") -> str:
    job = await api.submit_job(token, preset=preset, priority=priority, command=["sleep", "100"])
    return str(job["id"])


async def job_of(api: Api, token: str, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await api.gql(JOB, {"id": job_id}, token=token))["job"]
    return job


async def becomes(api: Api, token: str, job_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = await job_of(api, token, job_id)
        return job if job["status"] == status else None

    found: dict[str, Any] = await eventually(check)
    return found


async def test_a_high_job_suspends_the_latest_preemptible_job_which_resumes_after(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    first = await submit(api, alice, "spot")
    await becomes(api, alice, first, "RUNNING")
    second = await submit(api, alice, "spot")
    await becomes(api, alice, second, "RUNNING")

    urgent = await submit(api, alice, "unit", "HIGH")
    # The latest started goes: it has the least work to do again.
    suspended = await becomes(api, alice, second, "SUSPENDED")
    assert suspended["reason"] == "PREEMPTED"
    assert f"preempted for {urgent}" in suspended["statusDescription"]
    assert second in [job_id for job_id, _ in runtime.stop_requests]
    await becomes(api, alice, urgent, "RUNNING")
    assert (await job_of(api, alice, first))["status"] == "RUNNING"
    # Suspended, it waits for room and keeps saying why.
    assert (await job_of(api, alice, second))["reason"] == "PREEMPTED"

    # What the cluster said of its stopped run, applied late (a reconcile read it before the
    # stop), moves it nowhere.
    stale = WorkloadState(job_id=second, phase=WorkloadPhase.RUNNING, started_at=utcnow())
    await api.platform.reconciler._apply("default", stale)
    late = await job_of(api, alice, second)
    assert (late["status"], late["reason"]) == ("SUSPENDED", "PREEMPTED")

    (stopped_run,) = await runtime.states([second])
    assert stopped_run.phase is WorkloadPhase.EXITED

    runtime.auto_run = False
    runtime.finish(urgent, exit_code=0)

    async def starting_again() -> dict[str, Any] | None:
        job = await job_of(api, alice, second)
        return job if job["reason"] == "CREATING" else None

    assert (await eventually(starting_again))["status"] == "SUSPENDED"
    # The end of its stopped run, applied late while it starts again, does not end it.
    await api.platform.reconciler._apply("default", stopped_run)
    assert (await job_of(api, alice, second))["status"] == "SUSPENDED"
    runtime.run(second)
    resumed = await becomes(api, alice, second, "RUNNING")
    steps = [(h["status"], h["reason"]) for h in resumed["history"]]
    assert steps[-3:] == [("RUNNING", None), ("SUSPENDED", "PREEMPTED"), ("RUNNING", None)]
    assert runtime.specs[second].command == ("sleep", "100")


async def test_only_preemptible_jobs_of_lower_priority_are_suspended_and_only_for_high(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    steady = [await submit(api, alice, "unit"), await submit(api, alice, "spot", "HIGH")]
    for job_id in steady:
        await becomes(api, alice, job_id, "RUNNING")
    # Neither a normal job nor a high one finds anything it may suspend: they wait.
    normal = await submit(api, alice, "unit")
    high = await submit(api, alice, "unit", "HIGH")
    for job_id in (normal, high):
        waiting = await job_of(api, alice, job_id)
        assert (waiting["status"], waiting["reason"]) in (
            ("PENDING", "SCHEDULING"),
            ("PENDING", "CREATING"),
        )
    await becomes(api, alice, high, "PENDING")
    assert runtime.stop_requests == []
    assert all([(await job_of(api, alice, j))["status"] == "RUNNING" for j in steady])


async def test_a_suspended_job_can_be_killed(api: Api, runtime: FakeRuntime) -> None:
    alice = await api.user("alice")
    victims = [await submit(api, alice, "spot"), await submit(api, alice, "spot")]
    for job_id in victims:
        await becomes(api, alice, job_id, "RUNNING")
    urgent = await submit(api, alice, "unit", "HIGH")
    await becomes(api, alice, urgent, "RUNNING")
    [suspended] = [j for j in victims if (await job_of(api, alice, j))["status"] == "SUSPENDED"]
    killed = (await api.gql(KILL, {"id": suspended}, token=alice))["killJob"]["job"]
    assert (killed["status"], killed["reason"]) == ("CANCELLED", "USER_REQUESTED")
    runtime.finish(urgent, exit_code=0)
    # It does not come back when room returns: the room goes to nobody.
    await becomes(api, alice, urgent, "SUCCEEDED")
    await asyncio.sleep(1.0)  # several scheduling passes (the reconcile interval is 0.2 s)
    assert (await job_of(api, alice, suspended))["status"] == "CANCELLED"
    assert runtime.specs[suspended].job_id == suspended
    assert (await runtime.states([suspended]))[0].phase is not WorkloadPhase.RUNNING
