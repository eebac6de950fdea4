from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import (
    ClusterCapacity,
    ExitReason,
    Gateway,
    LogStream,
    Resources,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
)
from cluster_gateway.runtimes.fake import FakeRuntime
from glia.clock import utcnow
from glia.errors import BadInput, Conflict, NotFound


def spec(job_id: str = "job-1") -> WorkloadSpec:
    return WorkloadSpec(job_id, ["python", "train.py"], Resources(cpu=1, memory_mb=512))


@pytest.fixture
async def runtime() -> AsyncIterator[FakeRuntime]:
    runtime = FakeRuntime()
    await runtime.open()
    yield runtime
    await runtime.close()


async def next_states(watch: AsyncIterator[WorkloadState], count: int) -> list[WorkloadState]:
    async with asyncio.timeout(1):
        return [await anext(watch) for _ in range(count)]


async def test_start_runs_and_finish_reports_the_exit(runtime: FakeRuntime) -> None:
    watch = runtime.watch()
    state = await runtime.start(spec())
    assert state.phase == WorkloadPhase.PENDING
    pending, running = await next_states(watch, 2)
    assert (pending.phase, running.phase) == (WorkloadPhase.PENDING, WorkloadPhase.RUNNING)
    assert running.started_at is not None

    runtime.finish("job-1", 3)
    (exited,) = await next_states(watch, 1)
    assert exited.phase == WorkloadPhase.EXITED
    assert (exited.exit_code, exited.reason) == (3, ExitReason.ERROR)
    assert exited.started_at == running.started_at
    assert await runtime.state("job-1") == exited


async def test_finish_of_a_pending_job_passes_through_running() -> None:
    runtime = FakeRuntime(auto_run=False)
    await runtime.open()
    watch = runtime.watch()
    await runtime.start(spec())
    runtime.finish("job-1", 0)
    phases = [s.phase for s in await next_states(watch, 3)]
    assert phases == [WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.EXITED]
    assert (await runtime.state("job-1")).reason == ExitReason.COMPLETED


async def test_start_is_idempotent(runtime: FakeRuntime) -> None:
    await runtime.start(spec())
    runtime.run("job-1")
    state = await runtime.start(WorkloadSpec("job-1", ["other"], Resources(cpu=2, memory_mb=1)))
    assert state.phase == WorkloadPhase.RUNNING
    assert runtime.specs["job-1"].command == ["python", "train.py"]


async def test_start_needs_open_and_a_valid_id() -> None:
    runtime = FakeRuntime()
    with pytest.raises(RuntimeError):
        await runtime.start(spec())
    await runtime.open()
    with pytest.raises(BadInput):
        await runtime.start(spec("../etc"))


async def test_stop_ends_with_user_requested(runtime: FakeRuntime) -> None:
    watch = runtime.watch()
    await runtime.start(spec())
    await next_states(watch, 2)
    await runtime.stop("job-1", grace_s=3)
    (exited,) = await next_states(watch, 1)
    assert (exited.reason, exited.exit_code) == (ExitReason.USER_REQUESTED, 143)
    assert runtime.stop_requests == [("job-1", 3)]
    await runtime.stop("job-1")  # ended: nothing happens
    with pytest.raises(NotFound):
        await runtime.stop("nope")


async def test_stop_left_to_the_test() -> None:
    runtime = FakeRuntime(honour_stop=False)
    await runtime.open()
    await runtime.start(spec())
    await runtime.stop("job-1")
    await asyncio.sleep(0)
    assert (await runtime.state("job-1")).phase == WorkloadPhase.RUNNING
    runtime.finish("job-1", 137, reason=ExitReason.USER_REQUESTED)
    assert (await runtime.state("job-1")).reason == ExitReason.USER_REQUESTED


async def test_logs_follow_until_the_end(runtime: FakeRuntime) -> None:
    await runtime.start(spec())
    runtime.emit_log("job-1", "one")
    received: list[tuple[LogStream, str]] = []

    async def follow() -> None:
        async for batch in runtime.logs("job-1", follow=True):
            received.extend((line.stream, line.text) for line in batch)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.01)
    assert received == [(LogStream.STDOUT, "one")]
    runtime.emit_log("job-1", "two\nthree", stream=LogStream.STDERR)
    await asyncio.sleep(0.01)
    assert len(received) == 3
    assert not task.done()
    runtime.finish("job-1")
    async with asyncio.timeout(1):
        await task
    assert received[1:] == [(LogStream.STDERR, "two"), (LogStream.STDERR, "three")]


async def test_logs_since_and_without_follow(runtime: FakeRuntime) -> None:
    await runtime.start(spec())
    now = utcnow()
    runtime.emit_log("job-1", "old", time=now - timedelta(seconds=10))
    runtime.emit_log("job-1", "new", time=now)
    batches = [b async for b in runtime.logs("job-1", since=now)]
    assert [line.text for b in batches for line in b] == ["new"]
    with pytest.raises(NotFound):
        async for _ in runtime.logs("nope"):
            pass


async def test_forget(runtime: FakeRuntime) -> None:
    await runtime.start(spec())
    with pytest.raises(Conflict):
        await runtime.forget("job-1")
    runtime.lose("job-1")
    assert (await runtime.state("job-1")).reason == ExitReason.LOST
    await runtime.forget("job-1")
    await runtime.forget("job-1")
    assert (await runtime.state("job-1")).phase == WorkloadPhase.MISSING
    assert await runtime.list_workloads() == []


async def test_watch_fans_out_and_ends_on_close() -> None:
    runtime = FakeRuntime(auto_run=False)
    await runtime.open()
    first, second = runtime.watch(), runtime.watch()
    await runtime.start(spec())
    assert (await next_states(first, 1))[0].job_id == "job-1"
    assert (await next_states(second, 1))[0].job_id == "job-1"
    await runtime.close()
    assert [s async for s in first] == []


async def test_embedded_gateway_delegates() -> None:
    runtime = FakeRuntime(capacity=ClusterCapacity(cpu=4, memory_mb=1024))
    gateway = EmbeddedGateway("local", runtime)
    assert isinstance(gateway, Gateway)
    await gateway.open()
    watch = gateway.watch()
    await gateway.start(spec())
    await next_states(watch, 2)
    runtime.emit_log("job-1", "hi")
    await gateway.stop("job-1", grace_s=1)
    await next_states(watch, 1)
    assert [b async for b in gateway.logs("job-1", follow=True)][0][0].text == "hi"
    assert (await gateway.capacity()).cpu == 4
    assert [s.job_id for s in await gateway.list_workloads()] == ["job-1"]
    await gateway.forget("job-1")
    assert (await gateway.state("job-1")).phase == WorkloadPhase.MISSING
    await gateway.close()
