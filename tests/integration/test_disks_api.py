"""Disks through the API: created as real ext4 images on the local cluster, listed with their
usage, held by one job at a time, deleted on request or after their unused timeout; a
stranger learns nothing of them and a reader cannot change them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cluster_gateway.disks import LocalDisks
from cluster_gateway.runtimes.fake import FakeRuntime
from glia.clock import utcnow
from tests.conftest import REDIS_URL
from tests.factories import Api, GraphQLErrors, handed_over, make_settings, running_api

pytestmark = pytest.mark.skipif(
    LocalDisks(Path("/nonexistent")).problem() is not None,
    reason="making disks needs root, mkfs.ext4 and loop devices, as CI has",
)

CREATE = """
mutation($input: CreateDiskInput!) {
  createDisk(input: $input) { disk { id name uri status sizeBytes usedBytes org project owner
    timeoutUnusedSeconds usedBy } } }
"""
DISKS = "query($project: String) { disks(project: $project) { id name status usedBytes } }"
DISK = "query($disk: String!) { disk(disk: $disk) { id name status sizeBytes } }"
DELETE = "mutation($disk: String!) { deleteDisk(input: {disk: $disk}) { disk { id } } }"
MIB = 1024**2


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    extra: dict[str, Any] = {}
    if database_url.startswith("postgresql"):
        extra = {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    async with running_api(make_settings(tmp_path, database_url, **extra)) as api:
        yield api


async def create(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    data = await api.gql(CREATE, {"input": {"sizeBytes": 32 * MIB, **fields}}, token=token)
    disk: dict[str, Any] = data["createDisk"]["disk"]
    return disk


async def test_a_disk_is_made_listed_and_deleted(api: Api) -> None:
    alice = await api.user("alice")
    disk = await create(api, alice, name="data", timeoutUnusedSeconds=3600)
    assert disk["status"] == "READY" and disk["sizeBytes"] == 32 * MIB
    assert disk["uri"] == f"disk://default/alice/alice/{disk['id']}"
    assert (disk["owner"], disk["org"], disk["project"], disk["usedBy"]) == (
        "alice",
        "alice",
        "alice",
        None,
    )
    assert disk["usedBytes"] == 0
    image = api.platform.settings.runtime_dir / "disks" / f"{disk['id']}.img"
    assert image.stat().st_size == 32 * MIB
    assert image.stat().st_blocks * 512 < 16 * MIB  # sparse

    by_name = (await api.gql(DISK, {"disk": "data"}, token=alice))["disk"]
    assert by_name["id"] == disk["id"]
    listed = (await api.gql(DISKS, token=alice))["disks"]
    assert [d["id"] for d in listed] == [disk["id"]]

    with pytest.raises(GraphQLErrors) as taken:
        await create(api, alice, name="data")
    assert taken.value.code == "CONFLICT"

    await api.gql(DELETE, {"disk": "data"}, token=alice)
    assert not image.exists()
    assert (await api.gql(DISKS, token=alice))["disks"] == []


async def test_bad_disks_are_refused(api: Api) -> None:
    alice = await api.user("alice")
    for fields, field in (
        ({"sizeBytes": 1024}, "sizeBytes"),
        ({"sizeBytes": 10 * 1024**4}, "sizeBytes"),
        ({"name": "Bad_Name"}, "name"),
        ({"name": "disk-x"}, "name"),
        ({"timeoutUnusedSeconds": 1}, "timeoutUnusedSeconds"),
    ):
        with pytest.raises(GraphQLErrors) as refused:
            await create(api, alice, **fields)
        assert refused.value.code == "BAD_USER_INPUT", fields
        assert field in str(refused.value.errors[0]["extensions"]), fields


async def test_a_stranger_learns_nothing_and_a_reader_cannot_change_a_disk(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    disk = await create(api, alice)
    for query, variables in (
        (DISK, {"disk": disk["id"]}),
        (DELETE, {"disk": disk["id"]}),
    ):
        with pytest.raises(GraphQLErrors) as refused:
            await api.gql(query, variables, token=bob)
        assert refused.value.code == "NOT_FOUND"
    assert (await api.gql(DISKS, token=bob))["disks"] == []
    with pytest.raises(GraphQLErrors) as refused:
        await create(api, bob, org="alice", project="alice")
    assert refused.value.code == "NOT_FOUND"
    # Shared for reading, bob sees it and may not delete it.
    share = """mutation($uri: String!) { grant(input: {uri: $uri, subject: "bob",
      action: "read"}) { grant { uri } } }"""
    await api.gql(share, {"uri": disk["uri"]}, token=alice)
    assert (await api.gql(DISK, {"disk": disk["id"]}, token=bob))["disk"]["id"] == disk["id"]
    with pytest.raises(GraphQLErrors) as refused:
        await api.gql(DELETE, {"disk": disk["id"]}, token=bob)
    assert refused.value.code == "FORBIDDEN"


async def test_one_job_holds_a_disk_and_an_unused_one_goes_after_its_timeout(api: Api) -> None:
    alice = await api.user("alice")
    kept = await create(api, alice, name="kept")
    spare = await create(api, alice, name="spare", timeoutUnusedSeconds=60)
    disks = api.platform.disks
    async with api.platform.db.session() as session:
        assert await disks.hold(session, "job-a", [kept["id"]]) is None
        await session.commit()
        assert await disks.hold(session, "job-b", [kept["id"]]) == kept["id"]
        await session.rollback()
    with pytest.raises(GraphQLErrors) as busy:
        await api.gql(DELETE, {"disk": "kept"}, token=alice)
    assert busy.value.code == "CONFLICT" and "job-a" in str(busy.value)

    deleted = await disks.collect_unused("default", now=utcnow() + timedelta(seconds=61))
    assert deleted == [spare["id"]]  # the held one stays, whatever its timeout
    async with api.platform.db.session() as session:
        await disks.release(session, "job-a")
        await session.commit()
        assert await disks.hold(session, "job-b", [kept["id"]]) is None
        await session.commit()


async def test_a_jobs_spec_carries_its_disks_sizes(database_url: str, tmp_path: Path) -> None:
    """A cluster that makes a disk when a job first mounts it (Kubernetes: its claim) makes it
    as big as the disk's record says."""
    runtime = FakeRuntime()
    async with running_api(make_settings(tmp_path, database_url), runtime) as api:
        alice = await api.user("alice")
        data = await create(api, alice, name="data", sizeBytes=48 * MIB)
        job = await api.submit_job(
            alice,
            command=["true"],
            volumes=[{"kind": "DISK", "ref": "data", "mountPath": "/data"}],
        )
        spec = await handed_over(runtime, job["id"])
        assert spec.disk_sizes == {data["id"]: 48 * MIB}
        plain = await api.submit_job(alice, command=["true"])
        assert (await handed_over(runtime, plain["id"])).disk_sizes == {}
