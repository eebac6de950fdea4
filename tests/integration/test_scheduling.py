"""Admission and scheduling through the API: jobs wait for room in order, time out, restart;
presets are their cluster's admins' to change; GPUs go to one job at a time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster_gateway.gateway import ClusterCapacity
from cluster_gateway.runtimes.fake import FakeRuntime
from tests.conftest import REDIS_URL
from tests.factories import Api, GraphQLErrors, kill_leftover_jobs, make_settings, running_api
from tests.polling import eventually

JOB = """
query($id: ID!) {
  job(id: $id) {
    id status reason statusDescription queuePosition priority restartCount restartPolicy
    lifeSpanSeconds history { status reason description exitCode }
  }
}
"""
LIST_QUEUE = """{ jobs(first: 50) { edges { node { id queuePosition } } } }"""
ADD_PRESET = """
mutation($input: PresetInput!) { addPreset(input: $input) { preset { name available } } }
"""
CLUSTER = """
query { cluster(name: "default") { name defaultLifeSpanSeconds
  presets { name available resources { cpu memoryMb gpu gpuModel } } } }
"""


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """A cluster of 2 CPUs, with a preset `unit` (1 CPU) added by an admin."""
    extra: dict[str, Any] = {}
    if database_url.startswith("postgresql"):
        extra = {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    runtime = FakeRuntime(capacity=ClusterCapacity(cpu=2, memory_mb=4096))
    async with running_api(make_settings(tmp_path, database_url, **extra), runtime) as api:
        admin = await api.user("root", role="admin")
        preset = {"cluster": "default", "name": "unit", "cpu": 1, "memoryMb": 512}
        await api.gql(ADD_PRESET, {"input": preset}, token=admin)
        yield api


@pytest.fixture
def runtime(api: Api) -> FakeRuntime:
    assert isinstance(api.runtime, FakeRuntime)
    return api.runtime


async def job_of(api: Api, token: str, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await api.gql(JOB, {"id": job_id}, token=token))["job"]
    return job


async def becomes(api: Api, token: str, job_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = await job_of(api, token, job_id)
        return job if job["status"] == status else None

    found: dict[str, Any] = await eventually(check)
    return found


async def submit(api: Api, token: str, **fields: Any) -> str:
    job = await api.submit_job(token, preset="unit", command=["sleep", "100"], **fields)
    return str(job["id"])


async def test_a_job_waits_for_room_with_its_place_and_starts_when_room_frees(
    api: Api, runtime: FakeRuntime
) -> None:
    token = await api.user("alice")
    first, second = await submit(api, token), await submit(api, token)
    await becomes(api, token, first, "RUNNING")
    await becomes(api, token, second, "RUNNING")
    third, fourth = await submit(api, token), await submit(api, token)
    waiting = await job_of(api, token, third)
    assert (waiting["status"], waiting["reason"]) == ("PENDING", "SCHEDULING")
    assert waiting["queuePosition"] == 1
    assert "1 CPUs (0 free)" in waiting["statusDescription"]
    assert (await job_of(api, token, fourth))["queuePosition"] == 2
    assert third not in runtime.specs
    runtime.finish(first, 0)
    started = await becomes(api, token, third, "RUNNING")
    assert [(h["status"], h["reason"]) for h in started["history"]] == [
        ("PENDING", "CREATING"),
        ("PENDING", "SCHEDULING"),
        ("RUNNING", None),
    ]
    assert started["queuePosition"] is None
    assert (await job_of(api, token, fourth))["queuePosition"] == 1


async def test_room_goes_by_priority_then_submission_order(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    running = [await submit(api, token) for _ in range(2)]
    for job_id in running:
        await becomes(api, token, job_id, "RUNNING")
    low = await submit(api, token, priority="LOW")
    normal_1 = await submit(api, token)
    high = await submit(api, token, priority="HIGH")
    normal_2 = await submit(api, token)
    assert [
        (await job_of(api, token, j))["queuePosition"] for j in (high, normal_1, normal_2, low)
    ] == [
        1,
        2,
        3,
        4,
    ]
    # A listing says the same, counted for the whole page at once.
    listed = await api.gql(LIST_QUEUE, token=token)
    places = {edge["node"]["id"]: edge["node"]["queuePosition"] for edge in listed["jobs"]["edges"]}
    assert [places[j] for j in (high, normal_1, normal_2, low, *running)] == [
        1, 2, 3, 4, None, None
    ]  # fmt: skip
    order = []
    for ending in [*running, high, normal_1, normal_2]:
        runtime.finish(ending, 0)

        async def next_started() -> str | None:
            for job_id in (high, normal_1, normal_2, low):
                if (
                    job_id not in order
                    and (await job_of(api, token, job_id))["status"] == "RUNNING"
                ):
                    return job_id
            return None

        if len(order) < 4:
            order.append(await eventually(next_started))
    assert order == [high, normal_1, normal_2, low]


async def test_a_job_that_cannot_start_in_time_fails(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    for job_id in [await submit(api, token) for _ in range(2)]:
        await becomes(api, token, job_id, "RUNNING")
    late = await submit(api, token, scheduleTimeoutSeconds=1)
    failed = await becomes(api, token, late, "FAILED")
    assert failed["reason"] == "SCHEDULING_TIMEOUT"
    assert "schedule timeout of 1 s" in failed["statusDescription"]
    assert late not in runtime.specs


async def test_a_killed_waiting_job_leaves_the_queue(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    for job_id in [await submit(api, token) for _ in range(2)]:
        await becomes(api, token, job_id, "RUNNING")
    waiting, behind = await submit(api, token), await submit(api, token)
    kill = "mutation($id: ID!) { killJob(input: {id: $id}) { job { status reason } } }"
    killed = (await api.gql(kill, {"id": waiting}, token=token))["killJob"]["job"]
    assert (killed["status"], killed["reason"]) == ("CANCELLED", "USER_REQUESTED")
    assert (await job_of(api, token, behind))["queuePosition"] == 1


async def test_restart_on_failure_counts_each_restart(api: Api, runtime: FakeRuntime) -> None:
    token = await api.user("alice")
    job_id = await submit(api, token, restartPolicy="ON_FAILURE")
    await becomes(api, token, job_id, "RUNNING")
    runtime.finish(job_id, 3)

    async def restarted() -> dict[str, Any] | None:
        job = await job_of(api, token, job_id)
        return job if job["restartCount"] == 1 and job_id in runtime.specs else None

    job = await eventually(restarted)
    assert (job["status"], job["reason"], job["restartPolicy"]) == (
        "RUNNING",
        "RESTARTED",
        "ON_FAILURE",
    )
    assert job["history"][-1]["reason"] == "RESTARTED"
    assert job["history"][-1]["exitCode"] == 3

    async def rerunning() -> bool:
        return runtime.specs.get(job_id) is not None and (
            (await runtime.states([job_id]))[0].phase.value == "running"
        )

    await eventually(rerunning)
    runtime.finish(job_id, 0)  # success: on-failure does not restart it
    done = await becomes(api, token, job_id, "SUCCEEDED")
    assert done["restartCount"] == 1


async def test_presets_are_the_cluster_admins_and_show_what_fits(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    preset = {"cluster": "default", "name": "tiny", "cpu": 0.5, "memoryMb": 256}
    with pytest.raises(GraphQLErrors) as refused:
        await api.gql(ADD_PRESET, {"input": preset}, token=alice)
    assert refused.value.code == "FORBIDDEN"
    with pytest.raises(GraphQLErrors) as hidden:
        await api.gql(ADD_PRESET, {"input": {**preset, "cluster": "nowhere"}}, token=alice)
    assert hidden.value.code == "NOT_FOUND"
    root = await api.user("admin2", role="admin")
    added = (await api.gql(ADD_PRESET, {"input": preset}, token=root))["addPreset"]["preset"]
    assert added == {"name": "tiny", "available": None}
    await becomes(api, alice, await submit(api, alice), "RUNNING")
    presets = {p["name"]: p for p in (await api.gql(CLUSTER, token=alice))["cluster"]["presets"]}
    assert presets["unit"]["available"] == 1
    assert presets["tiny"]["available"] == 2
    remove = """mutation { removePreset(input: {cluster: "default", name: "tiny"}) {
      preset { name } } }"""
    with pytest.raises(GraphQLErrors) as refused:
        await api.gql(remove, token=alice)
    assert refused.value.code == "FORBIDDEN"
    await api.gql(remove, token=root)
    assert "tiny" not in {
        p["name"] for p in (await api.gql(CLUSTER, token=alice))["cluster"]["presets"]
    }


async def test_life_span_defaults_to_the_clusters_and_can_be_bumped(
    api: Api, runtime: FakeRuntime
) -> None:
    root = await api.user("admin2", role="admin")
    settings = """mutation { updateClusterSettings(input: {cluster: "default",
      defaultLifeSpanSeconds: 600}) { cluster { defaultLifeSpanSeconds } } }"""
    answer = await api.gql(settings, token=root)
    assert answer["updateClusterSettings"]["cluster"]["defaultLifeSpanSeconds"] == 600
    alice = await api.user("alice")
    job_id = await submit(api, alice)
    await becomes(api, alice, job_id, "RUNNING")
    assert (await job_of(api, alice, job_id))["lifeSpanSeconds"] == 600
    bump = """mutation($id: ID!) { bumpJobLifeSpan(input: {id: $id, seconds: 3600}) {
      job { lifeSpanSeconds } } }"""
    bumped = await api.gql(bump, {"id": job_id}, token=alice)
    assert bumped["bumpJobLifeSpan"]["job"]["lifeSpanSeconds"] == 4200
    assert runtime.specs[job_id].life_span_s == 4200
    bob = await api.user("bob")
    with pytest.raises(GraphQLErrors) as hidden:
        await api.gql(bump, {"id": job_id}, token=bob)
    assert hidden.value.code == "NOT_FOUND"


async def test_local_gpus_are_assigned_one_job_each(tmp_path: Path) -> None:
    """The local runtime with a configured inventory (GLIA_LOCAL_GPUS): each GPU job sees its
    own GPU, a job without GPUs sees none, and a third GPU job waits for one to free."""
    settings = make_settings(tmp_path, local_gpus="2xA100")
    try:
        async with running_api(settings) as api:
            token = await api.user("alice")
            cluster = (await api.gql(CLUSTER, token=token))["cluster"]
            gpu_preset = next(p for p in cluster["presets"] if p["resources"]["gpu"] == 1)
            assert gpu_preset["resources"]["gpuModel"] is None
            root = await api.user("root", role="admin")
            one = {"cluster": "default", "name": "one-gpu", "cpu": 0.1, "memoryMb": 64, "gpu": 1}
            await api.gql(ADD_PRESET, {"input": one}, token=root)
            tiny = {"cluster": "default", "name": "tiny", "cpu": 0.1, "memoryMb": 64}
            await api.gql(ADD_PRESET, {"input": tiny}, token=root)
            show = ["sh", "-c", 'echo "[$CUDA_VISIBLE_DEVICES|$NVIDIA_VISIBLE_DEVICES]"; sleep 30']
            first = await api.submit_job(token, preset="one-gpu", command=show)
            second = await api.submit_job(token, preset="one-gpu", command=show)
            none = await api.submit_job(token, preset="tiny", command=show)
            third = await api.submit_job(token, preset="one-gpu", command=show)
            outputs = {}
            for job in (first, second, none):
                await becomes(api, token, job["id"], "RUNNING")

                async def printed(job_id: str = job["id"]) -> str | None:
                    response = await api.http.get(
                        f"/api/jobs/{job_id}/log", headers={"Authorization": f"Bearer {token}"}
                    )
                    return response.text.strip() or None

                outputs[job["id"]] = await eventually(printed, within=10)
            assert {outputs[first["id"]], outputs[second["id"]]} == {"[0|0]", "[1|1]"}
            assert outputs[none["id"]] == "[|void]"
            waiting = await job_of(api, token, third["id"])
            assert (
                waiting["reason"] == "SCHEDULING"
                and "GPUs (0 free)" in waiting["statusDescription"]
            )
            kill = "mutation($id: ID!) { killJob(input: {id: $id}) { job { status } } }"
            await api.gql(kill, {"id": first["id"]}, token=token)
            await becomes(api, token, third["id"], "RUNNING")
            for job in (second, none, third):
                await api.gql(kill, {"id": job["id"]}, token=token)
    finally:
        kill_leftover_jobs(settings.data_dir)
