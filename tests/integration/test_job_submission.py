"""The submission path: the owner's grant on a job commits with the job, in one transaction,
and is in the index of this process (and, through the signal, of the others) once it has."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.store.models import AclRuleRow, JobRow
from glia.acl import Action
from tests.conftest import REDIS_URL
from tests.factories import SUBMIT_JOB, Api, make_settings, running_api


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    extra: dict[str, Any] = {}
    if database_url.startswith("postgresql"):
        extra = {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    async with running_api(make_settings(tmp_path, database_url, **extra), FakeRuntime()) as api:
        yield api


async def test_the_owners_grant_commits_with_the_job(api: Api) -> None:
    alice, _ = await api.user("alice"), await api.user("bob")
    job = await api.submit_job(alice, share=["bob"])
    async with api.platform.db.session() as session:
        rules = (await session.scalars(select(AclRuleRow).where(AclRuleRow.v1 == job["uri"]))).all()
    assert sorted((r.ptype, r.v0, r.v2) for r in rules) == [
        ("p", "user:alice", "manage"),
        ("p", "user:bob", "read"),
    ]
    acl = api.platform.acl
    assert await acl.check("user:alice", job["uri"], Action.MANAGE)
    assert await acl.check("user:bob", job["uri"], Action.READ)
    assert not await acl.check("user:bob", job["uri"], Action.WRITE)

    # A submission refused at its insert (a name taken) leaves no grant behind.
    await api.submit_job(alice, name="taken")
    body = await api.raw(SUBMIT_JOB, {"input": {"command": ["x"], "name": "taken"}}, token=alice)
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    async with api.platform.db.session() as session:
        granted = await session.scalars(
            select(AclRuleRow.v1).where(AclRuleRow.v0 == "user:alice", AclRuleRow.v2 == "manage")
        )
        job_uris = set(await session.scalars(select(JobRow.uri)))
    assert {uri for uri in granted if uri.startswith("job://")} == job_uris
