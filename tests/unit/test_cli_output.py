"""What the CLI prints, without a server: short ids, the job table's width, the API's JSON
form, help that needs no SDK, and plain words for pydantic's."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cli import formatting
from cli.errors import plain
from cli.options import JOB_STATUSES, USER_ROLES, OutputFormat
from sdk import Job, JobStatus, UserRole

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def job(job_id: str, **fields: Any) -> Job:
    data: dict[str, Any] = {
        "id": job_id,
        "uri": f"job://default/alice/alice/{job_id}",
        "owner": {"id": "u1", "name": "alice", "role": "user", "createdAt": NOW},
        "clusterName": "default",
        "org": "default",
        "project": "alice",
        "preset": "cpu-medium",
        "resources": {"cpu": 1, "memoryMb": 1024},
        "command": ["python", "train.py"],
        "status": "running",
        "createdAt": NOW - timedelta(minutes=3),
    }
    data.update(fields)
    return Job.model_validate(data)


def test_short_ids_are_the_shortest_unique_prefix_of_at_least_8_characters() -> None:
    ids = [
        "job-0a1b2c3d-aaaa-4000-8000-000000000001",
        "job-0a1b2c3d-aaab-4000-8000-000000000002",
        "job-ffff0000-1111-4000-8000-000000000003",
    ]
    assert formatting.short_ids(ids) == {
        ids[0]: "job-0a1b2c3d-aaaa",
        ids[1]: "job-0a1b2c3d-aaab",
        ids[2]: "job-ffff0000",
    }
    # Sharing exactly the first 8 characters: the dash is never the last one shown.
    pair = ["job-12345678-9abc", "job-12345678-8abc"]
    assert formatting.short_ids(pair) == {pair[0]: "job-12345678-9", pair[1]: "job-12345678-8"}


def test_ps_table_fits_80_columns_cutting_only_name_and_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    jobs = [
        job(
            "job-0a1b2c3d-aaaa-4000-8000-000000000001",
            name="a-rather-long-job-name-for-a-table",
            command=["sh", "-c", "for i in 1 2 3\ndo echo $i; done " + "x" * 80],
        ),
        job("job-9f8e7d6c-aaaa-4000-8000-000000000002", preset="cpu-large", status="pending"),
    ]

    formatting.print_jobs(jobs, now=NOW)

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # a header and one line per job: the command's newline is gone
    assert all(len(line.rstrip()) <= 80 for line in lines), lines
    assert lines[1].startswith("job-0a1b2c3d  a-rather")
    assert "cpu-medium" in lines[1] and "cpu-large" in lines[2]  # presets whole
    assert "…" in lines[1] and "3m" in lines[1]


def test_format_picks_columns_and_rejects_unknown_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert formatting.parse_columns("{id} {status}") == ["id", "status"]
    assert formatting.parse_columns("id,status, command") == ["id", "status", "command"]
    with pytest.raises(Exception, match="unknown column 'colour'; columns: id, name"):
        formatting.parse_columns("id colour")

    formatting.print_jobs([job("job-0a1b2c3d-aaaa")], ["id", "status"], now=NOW)
    assert capsys.readouterr().out.split() == ["ID", "STATUS", "job-0a1b2c3d", "running"]


def test_json_and_yaml_use_the_api_field_names_and_enum_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    formatting.print_data([job("job-1", exit_code=None)], OutputFormat.JSON)
    (shown,) = json.loads(out.getvalue())
    assert shown["status"] == "RUNNING" and shown["owner"]["role"] == "USER"
    assert shown["clusterName"] == "default" and shown["resources"]["memoryMb"] == 1024
    assert shown["createdAt"] == "2026-11-27T11:57:00+00:00"

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    formatting.print_data({"user": job("job-2").owner, "password": None}, OutputFormat.YAML)
    assert "  role: USER\n" in out.getvalue() and "password: null" in out.getvalue()


def test_option_choices_match_the_kernel() -> None:
    assert JOB_STATUSES == tuple(status.value for status in JobStatus)
    assert set(USER_ROLES) == {role.value for role in UserRole}


def test_pydantic_wording_is_rewritten() -> None:
    assert plain("name: String should match pattern '[a-z]+'") == "name: must match '[a-z]+'"
    assert plain("first: Input should be less than or equal to 100") == "first: must be at most 100"
    assert plain("email: Field required") == "email: is required"


def test_memory_figures_are_round() -> None:
    assert [formatting.memory(m) for m in (512, 1024, 1536, 5120, 1000)] == [
        "512 MiB", "1 GiB", "1.5 GiB", "5 GiB", "1000 MiB"
    ]  # fmt: skip
