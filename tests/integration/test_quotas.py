"""Quotas and credits through the API: seats at four levels, the tightest one applying,
atomic under concurrent submissions on both databases, waiting for a seat, spending credits
and cancelling at zero, and who may set them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster_gateway.gateway import ClusterCapacity
from cluster_gateway.runtimes.fake import FakeRuntime
from tests.conftest import REDIS_URL
from tests.factories import Api, GraphQLErrors, handed_over, make_settings, running_api
from tests.polling import eventually

ADD_PRESET = """
mutation($input: PresetInput!) { addPreset(input: $input) { preset { name } } }
"""
SET_QUOTA = """
mutation($input: SetQuotaInput!) {
  setQuota(input: $input) { quota { level org cluster user maxRunningJobs runningJobs credits } }
}
"""
ADD_CREDITS = """
mutation($input: AddCreditsInput!) { addCredits(input: $input) { quota { level credits } } }
"""
MY_QUOTAS = """
query($org: String) { myQuotas(org: $org) { level org cluster user maxRunningJobs runningJobs
  credits } }
"""
JOB = """
query($id: ID!) { job(id: $id) { id status reason statusDescription creditsSpent
  creditsPerHour history { status reason description } } }
"""
SUBMIT = """
mutation($input: SubmitJobInput!) { submitJob(input: $input) { job { id status reason } } }
"""
CREATE_ORG = """
mutation($input: CreateOrgInput!) { createOrg(input: $input) { org { name } } }
"""
SET_ORG_MEMBER = """
mutation($input: SetOrgMemberInput!) { setOrgMember(input: $input) { member { user role } } }
"""


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """A cluster of 200 CPUs with a 1-CPU preset `unit` (free) and `paid` (3,600 credits an
    hour: one a second); running jobs pay every 0.2 s."""
    extra: dict[str, Any] = {"credits_interval_s": 0.2}
    if database_url.startswith("postgresql"):
        extra |= {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    runtime = FakeRuntime(capacity=ClusterCapacity(cpu=200, memory_mb=200 * 1024))
    async with running_api(make_settings(tmp_path, database_url, **extra), runtime) as api:
        root = await api.user("root", role="admin")
        for name, price in (("unit", 0.0), ("paid", 3600.0)):
            preset = {
                "cluster": "default",
                "name": name,
                "cpu": 1,
                "memoryMb": 256,
                "creditsPerHour": price,
            }
            await api.gql(ADD_PRESET, {"input": preset}, token=root)
        yield api


@pytest.fixture
def runtime(api: Api) -> FakeRuntime:
    assert isinstance(api.runtime, FakeRuntime)
    return api.runtime


async def set_quota(api: Api, **fields: Any) -> dict[str, Any]:
    root = await api.user(f"admin-{uuid.uuid4().hex[:8]}", role="admin")
    data = await api.gql(SET_QUOTA, {"input": fields}, token=root)
    quota: dict[str, Any] = data["setQuota"]["quota"]
    return quota


async def submit(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    job = {"command": ["sleep", "100"], "preset": "unit", **fields}
    data = await api.gql(SUBMIT, {"input": job}, token=token)
    submitted: dict[str, Any] = data["submitJob"]["job"]
    return submitted


async def job_of(api: Api, token: str, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await api.gql(JOB, {"id": job_id}, token=token))["job"]
    return job


async def becomes(api: Api, token: str, job_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = await job_of(api, token, job_id)
        return job if job["status"] == status else None

    found: dict[str, Any] = await eventually(check)
    return found


async def test_over_a_quota_a_submission_is_refused_or_waits_for_a_seat(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    quota = await set_quota(api, cluster="default", user="alice", maxRunningJobs=2)
    assert quota["level"] == "CLUSTER_USER" and quota["maxRunningJobs"] == 2
    first = await submit(api, alice)
    await submit(api, alice)
    await becomes(api, alice, first["id"], "RUNNING")

    with pytest.raises(GraphQLErrors) as refused:
        await submit(api, alice)
    assert refused.value.code == "QUOTA_EXCEEDED"
    assert "alice on cluster default may have 2 running jobs and has 2" in str(refused.value)
    assert "--wait-for-seat" in str(refused.value)

    waiting = await submit(api, alice, waitForSeat=True)
    assert (waiting["status"], waiting["reason"]) == ("PENDING", "QUOTA_EXHAUSTED")
    job = await job_of(api, alice, waiting["id"])
    assert "waits for a seat" in job["statusDescription"]
    assert waiting["id"] not in runtime.specs  # it takes no room while it waits

    runtime.finish(first["id"], exit_code=0)
    await becomes(api, alice, waiting["id"], "RUNNING")
    quotas = (await api.gql(MY_QUOTAS, token=alice))["myQuotas"]
    mine = next(q for q in quotas if q["level"] == "CLUSTER_USER")
    assert (mine["maxRunningJobs"], mine["runningJobs"]) == (2, 2)
    # Another user is not held to alice's quota.
    bob = await api.user("bob")
    await submit(api, bob)


async def test_the_tightest_level_applies(api: Api) -> None:
    alice = await api.user("alice")
    await set_quota(api, cluster="default", user="alice", maxRunningJobs=5)
    await set_quota(api, org="alice", maxRunningJobs=1)
    await submit(api, alice)
    with pytest.raises(GraphQLErrors) as refused:
        await submit(api, alice)
    assert refused.value.code == "QUOTA_EXCEEDED"
    assert "org alice may have 1 running job and has 1" in str(refused.value)
    quotas = {q["level"]: q for q in (await api.gql(MY_QUOTAS, token=alice))["myQuotas"]}
    assert quotas["ORG"]["maxRunningJobs"] == 1 and quotas["ORG"]["runningJobs"] == 1
    assert quotas["ORG_CLUSTER"]["maxRunningJobs"] is None
    # Raised, the next submission gets in.
    await set_quota(api, org="alice", maxRunningJobs=2)
    await submit(api, alice)


async def test_100_concurrent_submissions_never_pass_a_quota_of_10(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    await set_quota(api, cluster="default", user="alice", maxRunningJobs=10)
    job = {"command": ["sleep", "100"], "preset": "unit"}
    answers = await asyncio.gather(
        *(api.raw(SUBMIT, {"input": job}, token=alice) for _ in range(100))
    )
    accepted = [a for a in answers if not a.get("errors")]
    codes = {a["errors"][0]["extensions"]["code"] for a in answers if a.get("errors")}
    assert len(accepted) == 10
    assert codes == {"QUOTA_EXCEEDED"}

    quotas = (await api.gql(MY_QUOTAS, token=alice))["myQuotas"]
    assert next(q for q in quotas if q["level"] == "CLUSTER_USER")["runningJobs"] == 10

    # The ten seats are taken at submission; the runtime gets each job a moment later, from
    # the scheduler's own task.
    async def all_started() -> bool:
        return len(runtime.specs) == 10

    await eventually(all_started, within=15)


async def test_concurrent_waiters_fill_freed_seats_one_for_one(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    await set_quota(api, org="alice", maxRunningJobs=3)
    job = {"command": ["sleep", "100"], "preset": "unit", "waitForSeat": True}
    answers = await asyncio.gather(
        *(api.gql(SUBMIT, {"input": job}, token=alice) for _ in range(12))
    )
    ids = [a["submitJob"]["job"]["id"] for a in answers]

    async def started(count: int) -> bool:
        return len(runtime.specs) == count

    await eventually(lambda: started(3))
    for job_id in list(runtime.specs)[:2]:
        runtime.finish(job_id, exit_code=0)
    await eventually(lambda: started(5))
    await asyncio.sleep(0.5)  # a few scheduling passes: no seat beyond the quota
    statuses = [(await job_of(api, alice, i))["status"] for i in ids]
    assert statuses.count("RUNNING") == 3
    assert statuses.count("SUCCEEDED") == 2
    assert statuses.count("PENDING") == 7


async def test_running_jobs_spend_credits_and_are_cancelled_at_zero(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    quota = await set_quota(api, org="alice", credits=1.5)
    assert quota["credits"] == 1.5
    job = await submit(api, alice, preset="paid")
    await becomes(api, alice, job["id"], "RUNNING")
    ended = await becomes(api, alice, job["id"], "CANCELLED")
    assert ended["reason"] == "QUOTA_EXHAUSTED"
    assert ended["statusDescription"] == "cancelled: the credits of org alice ran out"
    assert 1.4 <= ended["creditsSpent"] <= 3.0
    assert ended["creditsPerHour"] == 3600.0

    # The cancellation is recorded first, then the workload stopped: asked just after.
    async def stopped() -> bool:
        return bool(runtime.stop_requests)

    await eventually(stopped)
    assert [job_id for job_id, _ in runtime.stop_requests] == [job["id"]]

    quotas = {q["level"]: q for q in (await api.gql(MY_QUOTAS, token=alice))["myQuotas"]}
    assert quotas["ORG"]["credits"] <= 0
    assert quotas["ORG"]["credits"] == pytest.approx(1.5 - ended["creditsSpent"], abs=1e-6)
    with pytest.raises(GraphQLErrors) as refused:
        await submit(api, alice)
    assert refused.value.code == "QUOTA_EXCEEDED"
    assert "org alice has no credits left" in str(refused.value)

    root = await api.user("root2", role="admin")
    added = await api.gql(ADD_CREDITS, {"input": {"org": "alice", "amount": 100}}, token=root)
    assert added["addCredits"]["quota"]["credits"] > 98
    await submit(api, alice)


async def test_a_free_job_spends_nothing_and_a_paid_one_pays_its_run_time(
    api: Api, runtime: FakeRuntime
) -> None:
    alice = await api.user("alice")
    await set_quota(api, cluster="default", user="alice", credits=1000)
    free, paid = await submit(api, alice), await submit(api, alice, preset="paid")
    await becomes(api, alice, paid["id"], "RUNNING")
    await asyncio.sleep(1.0)
    runtime.finish(free["id"], exit_code=0)
    runtime.finish(paid["id"], exit_code=0)
    paid_job = await becomes(api, alice, paid["id"], "SUCCEEDED")
    free_job = await becomes(api, alice, free["id"], "SUCCEEDED")
    assert free_job["creditsSpent"] == 0
    assert 0.9 <= paid_job["creditsSpent"] <= 5
    quotas = {q["level"]: q for q in (await api.gql(MY_QUOTAS, token=alice))["myQuotas"]}
    assert quotas["CLUSTER_USER"]["credits"] == pytest.approx(
        1000 - paid_job["creditsSpent"], abs=1e-6
    )


async def test_who_may_set_quotas(api: Api) -> None:
    root = await api.user("root3", role="admin")
    alice, bob, carol = await api.user("alice"), await api.user("bob"), await api.user("carol")
    await api.gql(CREATE_ORG, {"input": {"name": "lab"}}, token=root)
    for user, role in (("alice", "ADMIN"), ("bob", "USER")):
        member = {"org": "lab", "user": user, "role": role}
        await api.gql(SET_ORG_MEMBER, {"input": member}, token=root)

    # The org's admin sets its members' quotas, not the org's own budget.
    done = await api.gql(
        SET_QUOTA, {"input": {"org": "lab", "user": "bob", "maxRunningJobs": 1}}, token=alice
    )
    assert done["setQuota"]["quota"]["level"] == "ORG_USER"
    for token, target, code in (
        (alice, {"org": "lab"}, "FORBIDDEN"),
        (bob, {"org": "lab", "user": "bob"}, "FORBIDDEN"),
        (alice, {"cluster": "default", "user": "bob"}, "FORBIDDEN"),
        # An org the caller cannot see is not found, as one that does not exist.
        (carol, {"org": "lab", "user": "carol"}, "NOT_FOUND"),
        (carol, {"org": "nosuch"}, "NOT_FOUND"),
        (root, {"org": "lab", "user": "nosuch"}, "NOT_FOUND"),
    ):
        with pytest.raises(GraphQLErrors) as refused:
            await api.gql(SET_QUOTA, {"input": {**target, "credits": 5}}, token=token)
        assert refused.value.code == code, target

    for bad in (
        {"org": "lab"},  # nothing to set
        {"org": "lab", "maxRunningJobs": -1},
        {"cluster": "default", "maxRunningJobs": 1},  # no such level
        {"org": "lab", "credits": 5, "unlimitedCredits": True},
    ):
        with pytest.raises(GraphQLErrors) as refused:
            await api.gql(SET_QUOTA, {"input": bad}, token=root)
        assert refused.value.code == "BAD_USER_INPUT", bad

    unlimited = await api.gql(
        SET_QUOTA,
        {"input": {"org": "lab", "user": "bob", "unlimitedRunningJobs": True}},
        token=root,
    )
    assert unlimited["setQuota"]["quota"]["maxRunningJobs"] is None


async def test_a_jobs_spec_carries_its_orgs_running_limit(api: Api, runtime: FakeRuntime) -> None:
    """What a cluster may mirror (Kubernetes: a ResourceQuota on the project's namespace):
    the tightest limit that holds whoever of the org runs the job; a user's own is not it."""
    alice = await api.user("alice")

    async def limit_of_a_new_job() -> int | None:
        job_id = (await submit(api, alice))["id"]
        return (await handed_over(runtime, job_id)).running_limit

    assert await limit_of_a_new_job() is None
    await set_quota(api, cluster="default", user="alice", maxRunningJobs=30)  # alice's alone
    assert await limit_of_a_new_job() is None
    await set_quota(api, org="alice", maxRunningJobs=9)
    assert await limit_of_a_new_job() == 9
    await set_quota(api, org="alice", cluster="default", maxRunningJobs=7)
    assert await limit_of_a_new_job() == 7
