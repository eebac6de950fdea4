"""What the control plane does for job isolation: a uid per user, single-user mode where the
cluster cannot isolate jobs, and a data dir only the server may enter."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from cluster_gateway.gateway import JobIsolation
from cluster_gateway.runtimes.fake import FakeRuntime
from tests.factories import CREATE_USER, handed_over, make_settings, running_api


async def test_each_users_jobs_run_under_a_uid_of_their_own(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    settings = make_settings(tmp_path, job_uid_base=300_000)
    async with running_api(settings, runtime) as api:
        alice, bob = await api.user("alice"), await api.user("bob")
        jobs = [await api.submit_job(token) for token in (alice, alice, bob)]
        specs = [await handed_over(runtime, job["id"]) for job in jobs]
        uids = [spec.uid for spec in specs]
        assert uids[0] == uids[1] and uids[0] != uids[2]
        assert all(uid is not None and 300_000 <= uid < 300_000 + 65_536 for uid in uids)
        assert all(spec.gid == spec.uid for spec in specs)


async def test_without_isolation_glia_refuses_a_second_user(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = FakeRuntime(isolation=JobIsolation(own_uid=False, sandbox=False))
    with caplog.at_level(logging.WARNING):
        async with running_api(make_settings(tmp_path), runtime) as api:
            admin = await api.user("root", role="admin")
            body = await api.raw(CREATE_USER, {"input": {"name": "bob"}}, token=admin)
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert "single-user mode" in body["errors"][0]["message"]
    assert any("single-user mode" in record.getMessage() for record in caplog.records)


async def test_a_sandbox_alone_is_enough_for_several_users(tmp_path: Path) -> None:
    runtime = FakeRuntime(isolation=JobIsolation(own_uid=False, sandbox=True))
    async with running_api(make_settings(tmp_path), runtime) as api:
        admin = await api.user("root", role="admin")
        body = await api.raw(CREATE_USER, {"input": {"name": "bob"}}, token=admin)
    assert "errors" not in body


async def test_the_data_dir_and_the_database_are_the_servers_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    async with running_api(make_settings(tmp_path), FakeRuntime()):
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((data_dir / "glia.db").stat().st_mode) == 0o600
