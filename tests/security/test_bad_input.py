"""Bad input gets a clear BAD_USER_INPUT at the door, never a failed job later or a server error."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster_gateway.runtimes.fake import FakeRuntime
from tests.factories import CREATE_USER, SUBMIT_JOB, Api, make_settings, running_api

JOBS = """
query($filter: JobFilter, $after: String) { jobs(filter: $filter, after: $after) { totalCount } }
"""


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(make_settings(tmp_path), FakeRuntime()) as api:
        yield api


@pytest.mark.parametrize(
    ("job", "field"),
    [
        ({"command": ["x"], "name": "bob\n"}, "name"),
        ({"command": ["x"], "name": "job-x"}, "name"),
        ({"command": ["x"], "tags": ["ok\n"]}, "tags"),
        ({"command": ["echo", "a\x00b"]}, "command"),
        ({"command": ["x"], "workingDir": "/tmp/\x00x"}, "workingDir"),
        ({"command": ["x"], "env": [{"name": "A\n", "value": "1"}]}, "env.0.name"),
        ({"command": ["x"], "env": [{"name": "BIG", "value": "v" * 200_000}]}, "env.0.value"),
        ({"command": ["x"], "lifeSpanSeconds": 0.5}, "lifeSpanSeconds"),
        ({"command": ["x"], "idempotencyKey": "has space"}, "idempotencyKey"),
    ],
)
async def test_bad_submissions_are_refused_naming_the_field(
    api: Api, job: dict[str, Any], field: str
) -> None:
    token = await api.user("alice")
    body = await api.raw(SUBMIT_JOB, {"input": job}, token=token)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert field in [item["field"] for item in error["extensions"]["fields"]], error
    assert api.runtime is not None and not api.runtime.specs  # type: ignore[attr-defined]


async def test_a_user_name_is_matched_whole(api: Api) -> None:
    admin = await api.user("root", role="admin")
    body = await api.raw(CREATE_USER, {"input": {"name": "bob\n"}}, token=admin)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_times_without_a_zone_and_forged_cursors_are_bad_input(api: Api) -> None:
    token = await api.user("alice")
    body = await api.raw(JOBS, {"filter": {"since": "2026-01-01T00:00:00"}}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "time zone" in body["errors"][0]["message"]
    ok = await api.raw(JOBS, {"filter": {"since": "2026-01-01T00:00:00Z"}}, token=token)
    assert "errors" not in ok

    for forged in (
        base64.urlsafe_b64encode(b'["CREATED_AT", "2026-01-01T00:00:00", "job-x"]'),  # no zone
        base64.urlsafe_b64encode(b'["CREATED_AT", "not a time", "job-x"]'),
        base64.urlsafe_b64encode(b'["NAME", "2026-01-01T00:00:00Z", "job-x"]'),  # other order
        base64.urlsafe_b64encode(b'["CREATED_AT", 1, 2]'),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|job-x"),
        b"%%%",
    ):
        body = await api.raw(JOBS, {"after": forged.decode()}, token=token)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (forged, body)
        assert body["errors"][0]["extensions"]["fields"][0]["field"] == "after"
