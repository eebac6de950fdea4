from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from control_plane.services.jobs.status import status_for_exit
from glia.errors import BadInput
from glia.jobs import Job, JobReason, JobStatus, JobSubmission, can_transition
from glia.model import parse_input


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (JobStatus.PENDING, JobStatus.RUNNING, True),
        (JobStatus.PENDING, JobStatus.FAILED, True),
        (JobStatus.PENDING, JobStatus.CANCELLED, True),
        (JobStatus.RUNNING, JobStatus.SUCCEEDED, True),
        (JobStatus.RUNNING, JobStatus.SUSPENDED, True),
        (JobStatus.SUSPENDED, JobStatus.RUNNING, True),
        (JobStatus.RUNNING, JobStatus.PENDING, False),
        (JobStatus.RUNNING, JobStatus.RUNNING, False),
        (JobStatus.SUCCEEDED, JobStatus.RUNNING, False),
        (JobStatus.FAILED, JobStatus.SUCCEEDED, False),
        (JobStatus.CANCELLED, JobStatus.FAILED, False),
    ],
)
def test_transitions(old: JobStatus, new: JobStatus, allowed: bool) -> None:
    assert can_transition(old, new) is allowed


def test_finished_statuses_are_final() -> None:
    for finished in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        assert finished.is_finished
        assert not any(can_transition(finished, other) for other in JobStatus)
    assert not JobStatus.RUNNING.is_finished


@pytest.mark.parametrize(
    ("reason", "exit_code", "status"),
    [
        (JobReason.COMPLETED, 0, JobStatus.SUCCEEDED),
        (JobReason.ERROR, 3, JobStatus.FAILED),
        (JobReason.OOM_KILLED, 137, JobStatus.FAILED),
        (JobReason.KILLED, 137, JobStatus.FAILED),
        (JobReason.LOST, None, JobStatus.FAILED),
        (JobReason.START_FAILED, 127, JobStatus.FAILED),
        (JobReason.USER_REQUESTED, 143, JobStatus.CANCELLED),
        (JobReason.LIFE_SPAN_ENDED, 143, JobStatus.CANCELLED),
        (None, 0, JobStatus.SUCCEEDED),
        (None, 1, JobStatus.FAILED),
    ],
)
def test_exit_maps_to_status(
    reason: JobReason | None, exit_code: int | None, status: JobStatus
) -> None:
    assert status_for_exit(reason, exit_code) is status


def test_enums_parse_their_values_and_their_graphql_names() -> None:
    assert JobStatus("pending") is JobStatus("PENDING") is JobStatus.PENDING
    assert JobReason("OOMKilled") is JobReason("OOM_KILLED") is JobReason.OOM_KILLED
    assert str(JobReason.OOM_KILLED) == "OOMKilled"
    assert JobReason.OOM_KILLED.description.startswith("The job used more memory")
    with pytest.raises(ValueError):
        JobStatus("bogus")


@pytest.mark.parametrize(
    ("submission", "field", "message"),
    [
        ({"command": []}, "command", "non-empty"),
        ({"command": [""]}, "command", "empty string"),
        ({"command": "ls"}, "command", "valid tuple"),
        ({"command": ["x"], "env": [{"name": "1BAD", "value": "v"}]}, "env.0.name", "invalid"),
        (
            {"command": ["x"], "env": [{"name": "GLIA_JOB_ID", "value": "v"}]},
            "env.0.name",
            "set by the platform",
        ),
        (
            {"command": ["x"], "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
            "env",
            "given twice",
        ),
        ({"command": ["x"], "env": [{"name": "A", "value": "\0"}]}, "env.0.value", "NUL"),
        ({"command": ["x"], "name": "Bad Name"}, "name", "invalid job name"),
        ({"command": ["x"], "tags": ["has space"]}, "tags", "invalid tag"),
        ({"command": ["x"], "workingDir": "relative/dir"}, "workingDir", "absolute path"),
        ({"command": ["x"], "lifeSpanSeconds": 0}, "lifeSpanSeconds", "life span"),
        ({"command": ["x"], "lifeSpanSeconds": 10**9}, "lifeSpanSeconds", "life span"),
        ({"command": ["x" * 70000]}, "command", "longer than"),
    ],
)
def test_bad_submissions_name_the_field_at_fault(
    submission: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(BadInput, match=message) as raised:
        parse_input(JobSubmission, submission)
    assert field in raised.value.fields
    assert raised.value.code == "BAD_USER_INPUT"
    assert "Value error" not in raised.value.message


def test_a_valid_submission_passes_and_keeps_tags_once() -> None:
    submission = parse_input(
        JobSubmission,
        {
            "command": ["python", "-c", "print(1)"],
            "env": [{"name": "EPOCHS", "value": "3"}],
            "name": "train-1",
            "tags": ["exp:1", "exp:1", "b"],
            "working_dir": "/tmp",
            "life_span_s": 3600,
        },
    )
    assert submission.environment == {"EPOCHS": "3"}
    assert submission.tags == ("exp:1", "b")
    assert submission.life_span_s == 3600


def test_the_wire_form_speaks_the_api() -> None:
    submission = parse_input(JobSubmission, {"command": ["true"], "life_span_s": 5})
    wire = submission.to_wire()
    assert wire["lifeSpanSeconds"] == 5 and wire["workingDir"] is None
    job = Job.model_validate(
        {
            "id": "job-1",
            "uri": "job://c/o/p/job-1",
            "owner": {
                "id": "u",
                "name": "alice",
                "role": "USER",
                "createdAt": "2026-01-01T00:00:00Z",
            },
            "clusterName": "c",
            "org": "o",
            "project": "p",
            "preset": "cpu-small",
            "resources": {"cpu": 0.5, "memoryMb": 256, "gpu": 0},
            "command": ["true"],
            "status": "FAILED",
            "reason": "OOM_KILLED",
            "createdAt": "2026-01-01T00:00:00+00:00",
            "someFieldFromANewerServer": 1,
        }
    )
    assert job.status is JobStatus.FAILED and job.reason is JobReason.OOM_KILLED
    assert job.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert job.to_wire()["status"] == "FAILED"
    assert job.to_wire()["owner"]["createdAt"] == "2026-01-01T00:00:00+00:00"
