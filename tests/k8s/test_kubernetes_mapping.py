"""How the kubernetes runtime reads a pod (no cluster needed): phases, exit codes and reasons,
what a pending pod waits for, and the names it gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cluster_gateway.gateway import WorkloadPhase, WorkloadState
from cluster_gateway.runtimes.kubernetes import (
    JOB_ID,
    STOP_REASON,
    _precise,
    parse_cpu,
    parse_memory_mb,
    pod_name,
    state_of,
)
from glia.jobs import JobReason


def pod(
    phase: str,
    *,
    terminated: dict[str, Any] | None = None,
    waiting: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
    node: str | None = "n1",
    **status: Any,
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if terminated is not None:
        state["terminated"] = {"startedAt": "2026-01-01T00:00:00Z", **terminated}
    if waiting is not None:
        state["waiting"] = waiting
    meta: dict[str, Any] = {
        "name": "glia-job-1-x",
        "namespace": "ns",
        "annotations": {JOB_ID: "job-1", **(annotations or {})},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:09Z"
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "job", "state": state}],
            **status,
        },
    }


@pytest.mark.parametrize(
    ("manifest", "exit_code", "reason"),
    [
        (pod("Succeeded", terminated={"exitCode": 0}), 0, JobReason.COMPLETED),
        (pod("Failed", terminated={"exitCode": 3}), 3, JobReason.ERROR),
        (pod("Failed", terminated={"exitCode": 137, "reason": "OOMKilled"}), 137, "OOMKilled"),
        (pod("Failed", terminated={"exitCode": 137}), 137, JobReason.KILLED),
        (pod("Failed", reason="DeadlineExceeded"), None, JobReason.LIFE_SPAN_ENDED),
        (pod("Failed", reason="Evicted", message="low on memory"), None, JobReason.LOST),
        (
            pod(
                "Failed",
                terminated={"exitCode": 143},
                annotations={STOP_REASON: "UserRequested"},
                deleting=True,
            ),
            143,
            JobReason.USER_REQUESTED,
        ),
        (pod("Failed", terminated={"exitCode": 143}, deleting=True), 143, JobReason.LOST),
        (
            pod("Pending", node=None, deleting=True, annotations={STOP_REASON: "UserRequested"}),
            None,
            JobReason.USER_REQUESTED,
        ),
    ],
)
def test_an_ended_pod(manifest: dict[str, Any], exit_code: int | None, reason: str) -> None:
    state = state_of(manifest)
    assert (state.job_id, state.phase) == ("job-1", WorkloadPhase.EXITED)
    assert (state.exit_code, state.reason) == (exit_code, JobReason(reason))
    assert state.finished_at is not None


def test_a_pending_pod_says_what_it_waits_for() -> None:
    unschedulable = pod(
        "Pending",
        node=None,
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/2 nodes are available: 2 Insufficient cpu.",
            }
        ],
    )
    state = state_of(unschedulable)
    assert state.phase == WorkloadPhase.PENDING
    assert state.description == "Unschedulable: 0/2 nodes are available: 2 Insufficient cpu."
    pulling = state_of(pod("Pending", waiting={"reason": "ImagePullBackOff", "message": "nope"}))
    assert (pulling.phase, pulling.description) == (
        WorkloadPhase.PENDING,
        "ImagePullBackOff: nope",
    )


def test_a_running_pod() -> None:
    manifest = pod("Running")
    manifest["status"]["containerStatuses"][0]["state"] = {
        "running": {"startedAt": "2026-01-01T00:00:01Z"}
    }
    state = state_of(manifest)
    assert state.phase == WorkloadPhase.RUNNING
    assert state.started_at is not None and state.started_at.second == 1


def test_names() -> None:
    assert pod_name("job-1").startswith("glia-job-1-")
    assert pod_name("Job_1") != pod_name("job-1")
    assert len(pod_name("a" * 200)) <= 63
    assert all(c.isalnum() or c == "-" for c in pod_name("A.b_c"))
    assert parse_cpu("1500m") == 1.5 and parse_cpu("2") == 2
    assert parse_memory_mb("1Gi") == 1024 and parse_memory_mb("268435456") == 256


def test_an_end_seen_late_is_not_before_the_runtime_asked_for_it() -> None:
    """The API's times are whole seconds: an end seen more than a second late keeps its
    floored second, which may fall before the start seen to the microsecond. A workload this
    runtime ended (stop, life span) did not end before it asked."""
    started = datetime(2020, 1, 1, 0, 0, 48, 900_000, tzinfo=UTC)
    asked = started + timedelta(seconds=0.5)
    running = WorkloadState(job_id="j", phase=WorkloadPhase.RUNNING, started_at=started)
    exited = WorkloadState(
        job_id="j",
        phase=WorkloadPhase.EXITED,
        exit_code=143,
        started_at=datetime(2020, 1, 1, 0, 0, 48, tzinfo=UTC),
        finished_at=datetime(2020, 1, 1, 0, 0, 49, tzinfo=UTC),  # floored from 49.4
    )
    seen = _precise(exited, running, asked)
    assert seen.started_at == started
    assert seen.finished_at == asked
    # Not asked (it ended on its own): the floored second, never before its start.
    on_its_own = _precise(
        exited.model_copy(update={"finished_at": started.replace(microsecond=0)}), running
    )
    assert on_its_own.finished_at == started
