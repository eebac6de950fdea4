"""The scheduler's decisions (`plan`): order, fit, the head's reservation, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane.services.jobs.scheduler import QueuedJob, RunningJob, plan
from glia.clusters import Resources, fit_count, shortfall

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOTAL = Resources(cpu=4, memory_mb=8192, gpu=2)


def job(
    name: str,
    *,
    cpu: float = 1,
    memory: int = 1024,
    gpu: int = 0,
    priority: int = 1,
    at: int = 0,
    timeout: float | None = None,
    may_wait: bool = True,
) -> QueuedJob:
    return QueuedJob(
        id=name,
        priority=priority,
        created_at=T0 + timedelta(seconds=at),
        need=Resources(cpu=cpu, memory_mb=memory, gpu=gpu),
        schedule_timeout_s=timeout,
        may_wait=may_wait,
    )


def started(queue: list[QueuedJob], free: Resources = TOTAL, **kwargs: object) -> list[str]:
    decided = plan(queue, free=free, total=TOTAL, gpu_model=None, now=T0, **kwargs)  # type: ignore[arg-type]
    return [j.id for j in decided.start]


def test_priority_first_then_submission_order() -> None:
    queue = [
        job("low", priority=0, at=0),
        job("normal-late", at=2),
        job("high", priority=2, at=3),
        job("normal-early", at=1),
    ]
    one_cpu = Resources(cpu=1, memory_mb=8192, gpu=2)
    assert started(queue, one_cpu) == ["high"]
    assert started(queue, Resources(cpu=3, memory_mb=8192)) == [
        "high",
        "normal-early",
        "normal-late",
    ]
    assert started(queue) == ["high", "normal-early", "normal-late", "low"]


def test_the_head_of_the_queue_keeps_its_room_from_smaller_jobs() -> None:
    """A big job first in line is not starved by a stream of small ones: what it needs is kept
    for it, and small jobs only use what is left beside it."""
    free = Resources(cpu=2, memory_mb=8192, gpu=2)
    queue = [job("big", cpu=3, at=0), *(job(f"small-{i}", cpu=1, at=1 + i) for i in range(5))]
    decided = plan(queue, free=free, total=TOTAL, gpu_model=None, now=T0)
    assert decided.start == []  # 3 CPUs kept for big; 2 free: nothing else fits
    assert "first in line" in decided.wait["big"]
    assert decided.wait["small-0"] == (
        "waits for 1 CPUs (0 free), beside the room kept for the first in line"
    )
    assert list(decided.wait) == ["big", *(f"small-{i}" for i in range(5))]  # queue order
    # As running jobs end, the room goes to big first.
    assert started(queue, Resources(cpu=3, memory_mb=8192)) == ["big"]
    assert started(queue, Resources(cpu=4, memory_mb=8192)) == ["big", "small-0"]


def test_small_jobs_backfill_what_the_head_does_not_need() -> None:
    free = Resources(cpu=4, memory_mb=8192, gpu=0)
    queue = [job("gpu-job", cpu=1, gpu=1, at=0), job("cpu-job", cpu=2, at=1)]
    # gpu-job waits for a GPU with 1 CPU kept for it; cpu-job runs on the other 3.
    assert started(queue, free) == ["cpu-job"]
    assert started([*queue, job("greedy", cpu=2, at=2)], free) == ["cpu-job"]


def test_a_job_bigger_than_the_cluster_waits_without_blocking_the_rest() -> None:
    queue = [job("huge", cpu=64, at=0), job("small", at=1)]
    decided = plan(queue, free=TOTAL, total=TOTAL, gpu_model=None, now=T0)
    assert [j.id for j in decided.start] == ["small"]
    assert decided.wait["huge"].startswith("needs more than the cluster has in all: 64 CPUs")


def test_gpu_model_must_match() -> None:
    a100 = QueuedJob(
        id="a100",
        priority=1,
        created_at=T0,
        need=Resources(cpu=1, memory_mb=1024, gpu=1, gpu_model="a100"),
    )
    assert [
        j.id
        for j in plan(
            [a100], free=TOTAL, total=TOTAL, gpu_model="NVIDIA A100-SXM4-80GB", now=T0
        ).start
    ] == ["a100"]
    decided = plan([a100], free=TOTAL, total=TOTAL, gpu_model="H100", now=T0)
    assert decided.start == [] and "a100 GPUs (the cluster has H100)" in decided.wait["a100"]


def test_schedule_timeout_and_presets_without_the_scheduler() -> None:
    full = Resources(cpu=0, memory_mb=0)
    queue = [
        job("patient", at=0),
        job("late", at=0, timeout=5),
        job("in-time", at=0, timeout=60),
        job("no-queue", at=0, may_wait=False),
    ]
    decided = plan(queue, free=full, total=TOTAL, gpu_model=None, now=T0 + timedelta(seconds=10))
    assert set(decided.timed_out) == {"late", "no-queue"}
    assert "schedule timeout of 5 s" in decided.timed_out["late"]
    assert set(decided.wait) == {"patient", "in-time"}
    assert decided.next_deadline == T0 + timedelta(seconds=60)


def test_fit_count_and_shortfall() -> None:
    need = Resources(cpu=1.5, memory_mb=2048, gpu=1)
    assert fit_count(need, Resources(cpu=4, memory_mb=8192, gpu=4)) == 2
    assert fit_count(need, Resources(cpu=4, memory_mb=8192, gpu=0)) == 0
    assert fit_count(Resources(cpu=0.1, memory_mb=1), Resources(cpu=0.3, memory_mb=10)) == 3
    assert shortfall(need, Resources(cpu=1, memory_mb=8192, gpu=0)) == [
        "1.5 CPUs (1 free)",
        "1 GPUs (0 free)",
    ]


def running(
    name: str, *, priority: int = 1, at: int = 0, cpu: float = 1, gpu: int = 0
) -> RunningJob:
    return RunningJob(
        id=name,
        priority=priority,
        started_at=T0 + timedelta(seconds=at),
        need=Resources(cpu=cpu, memory_mb=1024, gpu=gpu),
    )


FULL = Resources(cpu=0, memory_mb=4096, gpu=0)


def test_a_high_job_preempts_the_fewest_cheapest_lower_priority_jobs() -> None:
    spots = [
        running("old-normal", at=0),
        running("new-normal", at=5),
        running("low", priority=0, at=1),
        running("high", priority=2, at=9),
    ]
    decided = plan(
        [job("urgent", priority=2, cpu=2)],
        free=FULL,
        total=TOTAL,
        gpu_model=None,
        now=T0,
        preemptible=spots,
    )
    # Lowest priority first, then the latest started: two CPUs, two jobs.
    assert list(decided.preempt) == ["low", "new-normal"]
    assert decided.start == []
    assert "waits for 2 preempted jobs to stop" in decided.wait["urgent"]


def test_nothing_is_preempted_for_a_normal_job_or_when_it_would_not_make_room() -> None:
    spots = [running("spot")]
    normal = plan(
        [job("normal", cpu=1)], free=FULL, total=TOTAL, gpu_model=None, now=T0, preemptible=spots
    )
    assert normal.preempt == {}
    too_big = plan(
        [job("big", priority=2, cpu=2)],
        free=FULL,
        total=TOTAL,
        gpu_model=None,
        now=T0,
        preemptible=spots,
    )
    assert too_big.preempt == {}
    same = plan(
        [job("peer", priority=2)],
        free=FULL,
        total=TOTAL,
        gpu_model=None,
        now=T0,
        preemptible=[running("peer-running", priority=2)],
    )
    assert same.preempt == {}


def test_room_on_its_way_is_waited_for_not_taken_again() -> None:
    """While suspended jobs stop, the head waits for their room: no second preemption, and
    smaller jobs behind it do not take what it will need."""
    decided = plan(
        [job("urgent", priority=2), job("small", cpu=0.5, at=1)],
        free=Resources(cpu=0.5, memory_mb=4096),
        total=TOTAL,
        gpu_model=None,
        now=T0,
        preemptible=[running("spot")],
        stopping=Resources(cpu=1, memory_mb=1024),
    )
    assert decided.preempt == {}
    assert "waits for preempted jobs to stop" in decided.wait["urgent"]
    assert decided.start == []  # the half CPU free is kept for the head


def test_a_suspended_job_never_times_out_while_it_waits_to_start_again() -> None:
    suspended = QueuedJob(
        id="back",
        priority=1,
        created_at=T0,
        need=Resources(cpu=8, memory_mb=1024),
        schedule_timeout_s=1,
        suspended=True,
    )
    later = T0 + timedelta(hours=1)
    decided = plan([suspended], free=TOTAL, total=TOTAL, gpu_model=None, now=later)
    assert decided.timed_out == {}
