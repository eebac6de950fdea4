from __future__ import annotations

import pytest

from cluster_gateway.gateway import ExitReason
from glia.errors import BadInput
from glia.services.jobs import (
    JobStatus,
    SubmitRequest,
    can_transition,
    status_for_exit,
    validate_submit,
)


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
        (ExitReason.COMPLETED, 0, JobStatus.SUCCEEDED),
        (ExitReason.ERROR, 3, JobStatus.FAILED),
        (ExitReason.OOM_KILLED, 137, JobStatus.FAILED),
        (ExitReason.KILLED, 137, JobStatus.FAILED),
        (ExitReason.LOST, None, JobStatus.FAILED),
        (ExitReason.START_FAILED, 127, JobStatus.FAILED),
        (ExitReason.USER_REQUESTED, 143, JobStatus.CANCELLED),
        (ExitReason.LIFE_SPAN_ENDED, 143, JobStatus.CANCELLED),
        (None, 0, JobStatus.SUCCEEDED),
        (None, 1, JobStatus.FAILED),
    ],
)
def test_exit_maps_to_status(
    reason: ExitReason | None, exit_code: int | None, status: JobStatus
) -> None:
    assert status_for_exit(reason, exit_code) is status


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (SubmitRequest(command=[]), "non-empty"),
        (SubmitRequest(command=[""]), "empty string"),
        (SubmitRequest(command=["x"], env={"1BAD": "v"}), "invalid environment variable"),
        (SubmitRequest(command=["x"], env={"GLIA_JOB_ID": "v"}), "set by the platform"),
        (SubmitRequest(command=["x"], name="Bad Name"), "invalid job name"),
        (SubmitRequest(command=["x"], tags=["has space"]), "invalid tag"),
        (SubmitRequest(command=["x"], working_dir="relative/dir"), "absolute path"),
        (SubmitRequest(command=["x"], life_span_s=0), "life span"),
        (SubmitRequest(command=["x"], life_span_s=10**9), "life span"),
        (SubmitRequest(command=["x" * 70000]), "longer than"),
    ],
)
def test_submit_validation(request_: SubmitRequest, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        validate_submit(request_)


def test_valid_submit_passes() -> None:
    validate_submit(
        SubmitRequest(
            command=["python", "-c", "print(1)"],
            env={"EPOCHS": "3"},
            name="train-1",
            tags=["exp:1"],
            working_dir="/tmp",
            life_span_s=3600,
        )
    )
