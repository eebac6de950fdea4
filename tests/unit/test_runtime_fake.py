"""The fake's own test hooks; what every runtime does is in tests/contract/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from cluster_gateway.gateway import (
    JobIsolation,
    WorkloadEvent,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadWatch,
)
from cluster_gateway.runtimes.fake import FakeRuntime
from cluster_gateway.runtimes.logfile import MAX_LINE
from glia.clock import utcnow
from glia.clusters import Resources
from glia.errors import NotFound
from glia.jobs import JobReason
from glia.monitoring import LogStream


def spec(job_id: str = "job-1") -> WorkloadSpec:
    return WorkloadSpec(
        job_id=job_id, command=("python", "train.py"), resources=Resources(cpu=1, memory_mb=512)
    )


@pytest.fixture
async def manual() -> AsyncIterator[FakeRuntime]:
    """A fake that leaves every transition to the test."""
    runtime = FakeRuntime(auto_run=False, honour_stop=False)
    await runtime.open()
    yield runtime
    await runtime.close()


async def take(watch: WorkloadWatch, count: int) -> list[WorkloadEvent]:
    async with asyncio.timeout(1):
        iterator = aiter(watch)
        return [await anext(iterator) for _ in range(count)]


async def test_without_auto_run_the_test_runs_the_job(manual: FakeRuntime) -> None:
    await manual.start(spec())
    await asyncio.sleep(0.01)
    assert (await manual.states(["job-1"]))[0].phase == WorkloadPhase.PENDING
    running = manual.run("job-1")
    assert running.phase == WorkloadPhase.RUNNING and running.started_at is not None
    with pytest.raises(RuntimeError):
        manual.run("job-1")
    with pytest.raises(NotFound):
        manual.run("ghost")


async def test_finish_of_a_pending_job_passes_through_running(manual: FakeRuntime) -> None:
    async with manual.watch() as watch:
        await manual.start(spec())
        manual.finish("job-1", 0)
        phases = [event.state.phase for event in await take(watch, 3)]
    assert phases == [WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.EXITED]
    (state,) = await manual.states(["job-1"])
    assert (state.exit_code, state.reason) == (0, JobReason.COMPLETED)
    with pytest.raises(RuntimeError):
        manual.finish("job-1", 1)


async def test_a_start_failure_skips_running(manual: FakeRuntime) -> None:
    async with manual.watch() as watch:
        await manual.start(spec())
        manual.finish("job-1", 127, reason=JobReason.START_FAILED, description="not found")
        events = await take(watch, 2)
    assert [e.state.phase for e in events] == [WorkloadPhase.PENDING, WorkloadPhase.EXITED]
    assert events[1].state.started_at is None
    assert events[1].state.description == "not found"


async def test_stop_left_to_the_test(manual: FakeRuntime) -> None:
    await manual.start(spec())
    manual.run("job-1")
    await manual.stop("job-1", grace_s=3)
    await asyncio.sleep(0.01)
    assert (await manual.states(["job-1"]))[0].phase == WorkloadPhase.RUNNING
    assert manual.stop_requests == [("job-1", 3)]
    manual.finish("job-1", 137, reason=JobReason.USER_REQUESTED)
    assert (await manual.states(["job-1"]))[0].reason == JobReason.USER_REQUESTED


async def test_a_stop_honoured_before_running_ends_without_running() -> None:
    runtime = FakeRuntime(auto_run=False)
    await runtime.open()
    async with runtime.watch() as watch:
        await runtime.start(spec())
        await runtime.stop("job-1")
        events = await take(watch, 2)
    end = events[1].state
    assert (end.phase, end.reason, end.exit_code) == (
        WorkloadPhase.EXITED,
        JobReason.USER_REQUESTED,
        None,
    )
    assert runtime.stop_requests == [("job-1", 10.0)]


async def test_emit_log_splits_lines_and_keeps_stream_and_time(manual: FakeRuntime) -> None:
    await manual.start(spec())
    manual.run("job-1")
    earlier = utcnow() - timedelta(seconds=10)
    manual.emit_log("job-1", "one\ntwo", stream=LogStream.STDERR, time=earlier)
    manual.emit_log("job-1", "three")
    lines = [line async for batch in manual.logs("job-1") for line in batch.lines()]
    assert [(line.stream, line.text) for line in lines] == [
        (LogStream.STDERR, "one"),
        (LogStream.STDERR, "two"),
        (LogStream.STDOUT, "three"),
    ]
    assert lines[0].time == lines[1].time == earlier < lines[2].time
    assert await manual.log_size("job-1") == len(b"one\ntwo\nthree\n")
    manual.finish("job-1")
    with pytest.raises(RuntimeError):
        manual.emit_log("job-1", "too late")


async def test_lose(manual: FakeRuntime) -> None:
    await manual.start(spec())
    state = manual.lose("job-1")
    assert (state.reason, state.exit_code, state.description) == (
        JobReason.LOST,
        None,
        "supervisor gone",
    )


async def test_specs_are_what_was_started(manual: FakeRuntime) -> None:
    await manual.start(spec("job-1"))
    await manual.start(spec("job-2").model_copy(update={"command": ("other",)}))
    assert manual.specs["job-1"] == spec("job-1")
    assert manual.specs["job-2"].command == ("other",)
    manual.finish("job-1")
    await manual.forget("job-1")
    assert set(manual.specs) == {"job-2"}


async def test_isolation_is_what_the_test_says() -> None:
    assert await FakeRuntime().isolation() == JobIsolation(own_uid=True, sandbox=True)
    single = JobIsolation(own_uid=False, sandbox=False)
    assert await FakeRuntime(isolation=single).isolation() == single


async def test_emit_log_cuts_long_lines_as_the_local_runtime_does(manual: FakeRuntime) -> None:
    await manual.start(spec())
    manual.run("job-1")
    manual.emit_log("job-1", "x" * (MAX_LINE + 10))
    lines = [line async for batch in manual.logs("job-1") for line in batch.lines()]
    assert [len(line.text) for line in lines] == [MAX_LINE, 10]


async def test_a_follower_of_a_forgotten_job_is_told(manual: FakeRuntime) -> None:
    await manual.start(spec())
    manual.run("job-1")
    manual.emit_log("job-1", "one")
    follower = manual.logs("job-1", follow=True)
    assert [line.text for line in (await anext(follower)).lines()] == ["one"]
    manual.finish("job-1")
    await manual.forget("job-1")
    async with asyncio.timeout(1):
        (last,) = (await anext(follower)).lines()
    assert last.stream == LogStream.SYSTEM and "removed" in last.text
    with pytest.raises(StopAsyncIteration):
        await anext(follower)
