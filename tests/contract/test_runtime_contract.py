"""The Runtime contract (``cluster_gateway.gateway.Gateway``'s docstring, plus ``Runtime``'s),
held against every implementation: FakeRuntime and LocalRuntime, through the Runtime API only."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from cluster_gateway.gateway import (
    JobIsolation,
    WatchExpired,
    WorkloadEvent,
    WorkloadPhase,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.runtimes.base import Runtime
from glia.clock import utcnow
from glia.clusters import Resources
from glia.errors import BadInput, Conflict, NotFound
from glia.jobs import JobReason
from glia.monitoring import LogLine, LogStream
from tests.contract.harness import (
    FOREVER,
    GPU_MODEL,
    GPUS,
    Harness,
    Out,
    Pause,
    Program,
    prints,
)
from tests.polling import eventually

PENDING, RUNNING, EXITED = WorkloadPhase.PENDING, WorkloadPhase.RUNNING, WorkloadPhase.EXITED
WITHIN = 10.0  # generous: these machines have two cores
# A logs() batch holds at most this many lines, and this many bytes of text.
BATCH_LINES = 1000
BATCH_BYTES = 64 * 1024
DROPPED = re.compile(r"\[glia: (\d+) bytes of older output were dropped\]")


async def events_until(
    watch: WorkloadWatch, job_id: str, phase: WorkloadPhase, *, within: float = WITHIN
) -> list[WorkloadEvent]:
    """Every event of ``watch`` up to the first of ``job_id`` in ``phase``."""
    seen: list[WorkloadEvent] = []
    async with asyncio.timeout(within):
        async for event in watch:
            seen.append(event)
            if event.state.job_id == job_id and event.state.phase == phase:
                return seen
    raise AssertionError(f"the watch ended before {job_id} was {phase}: {seen}")


def of(events: list[WorkloadEvent], job_id: str) -> list[WorkloadState]:
    return [event.state for event in events if event.state.job_id == job_id]


async def state_of(runtime: Runtime, job_id: str) -> WorkloadState:
    (state,) = await runtime.states([job_id])
    return state


async def ended(runtime: Runtime, job_id: str, *, within: float = WITHIN) -> WorkloadState:
    async def check() -> WorkloadState | None:
        state = await state_of(runtime, job_id)
        return state if state.phase == EXITED else None

    result: WorkloadState = await eventually(check, within=within)
    return result


async def lines_of(
    runtime: Runtime, job_id: str, *, since: datetime | None = None, follow: bool = False
) -> list[LogLine]:
    async with asyncio.timeout(WITHIN):
        logs = runtime.logs(job_id, since=since, follow=follow)
        return [line async for batch in logs for line in batch.lines()]


async def bytes_of(
    runtime: Runtime, job_id: str, *, offset: int = 0, length: int | None = None
) -> bytes:
    chunks = runtime.read_log(job_id, offset=offset, length=length)
    return b"".join([chunk async for chunk in chunks])


async def running(harness: Harness, job_id: str, program: Program = FOREVER) -> WorkloadState:
    """Start ``program`` and wait until it runs."""
    async with harness.runtime.watch() as watch:
        await harness.runtime.start(harness.spec(job_id, program))
        return of(await events_until(watch, job_id, RUNNING), job_id)[-1]


# --- start ----------------------------------------------------------------------------------------


async def test_start_is_idempotent(harness: Harness) -> None:
    runtime = harness.runtime
    spec = harness.spec("job-1", prints("run"))
    first = await runtime.start(spec)
    assert first.phase == PENDING
    again = await runtime.start(spec.model_copy(update={"command": ("false",)}))
    assert again.phase in (PENDING, RUNNING)
    state = await ended(runtime, "job-1")
    assert (state.exit_code, state.reason) == (0, JobReason.COMPLETED)
    assert await runtime.start(spec) == state  # ended: its state, and nothing runs again
    assert [line.text for line in await lines_of(runtime, "job-1")] == ["run"]
    assert await runtime.active_workloads() == []


@pytest.mark.parametrize("job_id", ["", "../etc", "a b", "x/y", ".", "..", "é", "a" * 201])
async def test_a_bad_job_id_is_bad_input(harness: Harness, job_id: str) -> None:
    with pytest.raises(BadInput):
        await harness.runtime.start(harness.spec(job_id, prints("never")))


async def test_start_before_open_is_an_error(harness: Harness) -> None:
    unopened = harness.new_runtime()
    with pytest.raises(RuntimeError):
        await unopened.start(harness.spec("job-1", prints("never")))


@pytest.mark.parametrize(
    "program",
    [Program(), prints("some output", exit_code=3)],
    ids=["fast", "with-output"],
)
async def test_phases_come_in_order(harness: Harness, program: Program) -> None:
    async with harness.runtime.watch() as watch:
        state = await harness.runtime.start(harness.spec("job-1", program))
        assert state.phase == PENDING
        events = await events_until(watch, "job-1", EXITED)
    assert [s.phase for s in of(events, "job-1")] == [PENDING, RUNNING, EXITED]


async def test_many_fast_jobs_each_pass_through_every_phase_once(harness: Harness) -> None:
    job_ids = [f"fast-{i}" for i in range(10)]
    async with harness.runtime.watch() as watch:
        await asyncio.gather(*(harness.runtime.start(harness.spec(j, Program())) for j in job_ids))
        events: list[WorkloadEvent] = []
        async with asyncio.timeout(WITHIN):
            async for event in watch:
                events.append(event)
                if sum(1 for e in events if e.state.phase == EXITED) == len(job_ids):
                    break
    for job_id in job_ids:
        assert [s.phase for s in of(events, job_id)] == [PENDING, RUNNING, EXITED], job_id


@pytest.mark.parametrize(
    ("exit_code", "reason"), [(0, JobReason.COMPLETED), (3, JobReason.ERROR)], ids=str
)
async def test_exit_code_and_reason(harness: Harness, exit_code: int, reason: JobReason) -> None:
    async with harness.runtime.watch() as watch:
        await harness.runtime.start(harness.spec("job-1", prints("x", exit_code=exit_code)))
        states = of(await events_until(watch, "job-1", EXITED), "job-1")
    run, end = states[-2], states[-1]
    assert (end.exit_code, end.reason) == (exit_code, reason)
    assert run.started_at is not None and end.finished_at is not None
    assert end.started_at == run.started_at <= end.finished_at
    assert await state_of(harness.runtime, "job-1") == end


# --- stop -----------------------------------------------------------------------------------------


async def test_stop_ends_with_user_requested(harness: Harness) -> None:
    runtime = harness.runtime
    await running(harness, "job-1")
    async with runtime.watch() as watch:
        await runtime.stop("job-1", grace_s=5)
        end = of(await events_until(watch, "job-1", EXITED, within=4), "job-1")[-1]
    assert (end.reason, end.exit_code) == (JobReason.USER_REQUESTED, 143)  # SIGTERM honoured
    await runtime.stop("job-1")  # ended: nothing happens
    assert await state_of(runtime, "job-1") == end


async def test_stop_while_pending(harness: Harness) -> None:
    await harness.runtime.start(harness.spec("job-1", FOREVER))
    await harness.runtime.stop("job-1", grace_s=1)
    assert (await ended(harness.runtime, "job-1")).reason == JobReason.USER_REQUESTED


async def test_life_span_ends_the_workload(harness: Harness) -> None:
    async with harness.runtime.watch() as watch:
        await harness.runtime.start(harness.spec("job-1", FOREVER, life_span_s=0.5))
        end = of(await events_until(watch, "job-1", EXITED), "job-1")[-1]
    assert end.reason == JobReason.LIFE_SPAN_ENDED
    assert end.started_at is not None and end.finished_at is not None
    assert 0.45 <= (end.finished_at - end.started_at).total_seconds() < 5


# --- what the runtime knows -----------------------------------------------------------------------


async def test_an_unknown_workload(harness: Harness) -> None:
    runtime = harness.runtime
    assert await runtime.states(["ghost"]) == [
        WorkloadState(job_id="ghost", phase=WorkloadPhase.MISSING)
    ]
    with pytest.raises(NotFound):
        await runtime.stop("ghost")
    with pytest.raises(NotFound):
        await lines_of(runtime, "ghost")
    with pytest.raises(NotFound):
        await runtime.log_size("ghost")
    with pytest.raises(NotFound):
        await bytes_of(runtime, "ghost")
    await runtime.forget("ghost")  # nothing to forget


async def test_states_for_known_and_unknown_jobs_in_order(harness: Harness) -> None:
    runtime = harness.runtime
    await running(harness, "alive")
    await runtime.start(harness.spec("done", prints("bye")))
    await ended(runtime, "done")
    states = await runtime.states(["nobody", "alive", "done", "alive"])
    assert [(s.job_id, s.phase) for s in states] == [
        ("nobody", WorkloadPhase.MISSING),
        ("alive", RUNNING),
        ("done", EXITED),
        ("alive", RUNNING),
    ]


async def test_active_workloads_are_the_pending_and_running_ones(harness: Harness) -> None:
    runtime = harness.runtime
    await running(harness, "alive")
    await runtime.start(harness.spec("done", prints("bye")))
    await ended(runtime, "done")
    assert [(s.job_id, s.phase) for s in await runtime.active_workloads()] == [("alive", RUNNING)]
    await runtime.stop("alive", grace_s=1)
    await ended(runtime, "alive")
    assert await runtime.active_workloads() == []


async def test_capacity(harness: Harness) -> None:
    capacity = await harness.runtime.capacity()
    assert capacity.cpu > 0 and capacity.memory_mb > 0
    assert (capacity.gpu, capacity.gpu_model) == (GPUS, GPU_MODEL)
    assert capacity.free == Resources(cpu=capacity.cpu, memory_mb=capacity.memory_mb, gpu=GPUS)


async def test_what_workloads_hold_is_not_free_until_they_end(harness: Harness) -> None:
    runtime = harness.runtime
    total = await runtime.capacity()
    await running(harness, "job-1")
    await runtime.start(harness.spec("job-2", FOREVER, gpu=2))
    free = (await runtime.capacity()).free
    assert free == Resources(cpu=total.cpu - 2, memory_mb=total.memory_mb - 512, gpu=0)
    # GPUs are assigned exclusively: none is left for a third job.
    with pytest.raises(Conflict, match="GPUs"):
        await runtime.start(harness.spec("job-3", FOREVER, gpu=1))
    assert await runtime.states(["job-3"]) == [
        WorkloadState(job_id="job-3", phase=WorkloadPhase.MISSING)
    ]
    await runtime.stop("job-2", grace_s=1)
    await ended(runtime, "job-2")
    assert (await runtime.capacity()).free == Resources(
        cpu=total.cpu - 1, memory_mb=total.memory_mb - 256, gpu=GPUS
    )
    await runtime.start(harness.spec("job-3", FOREVER, gpu=1))
    assert (await runtime.capacity()).free.gpu == GPUS - 1  # type: ignore[union-attr]


async def test_a_new_life_span_is_kept(harness: Harness) -> None:
    runtime = harness.runtime
    async with runtime.watch() as watch:
        await runtime.start(harness.spec("job-1", FOREVER, life_span_s=600))
        await runtime.set_life_span("job-1", 0.5)
        end = of(await events_until(watch, "job-1", EXITED), "job-1")[-1]
    assert end.reason == JobReason.LIFE_SPAN_ENDED
    await runtime.set_life_span("job-1", 10)  # ended: nothing happens
    with pytest.raises(NotFound):
        await runtime.set_life_span("ghost", 10)


async def test_isolation(harness: Harness) -> None:
    isolation = await harness.runtime.isolation()
    assert isinstance(isolation, JobIsolation)
    assert isolation == harness.isolation
    assert isolation.multi_user == (isolation.own_uid or isolation.sandbox)


# --- logs -----------------------------------------------------------------------------------------


async def test_logs_follow_until_the_end(harness: Harness) -> None:
    runtime = harness.runtime
    program = Program((Out("first"), Pause(2.0), Out("second", LogStream.STDERR)))
    await runtime.start(harness.spec("job-1", program))
    follower = runtime.logs("job-1", follow=True)
    async with asyncio.timeout(WITHIN):
        first = await anext(follower)
        assert [line.text for line in first.lines()] == ["first"]
        assert (await state_of(runtime, "job-1")).phase != EXITED  # it came live
        rest = [line async for batch in follower for line in batch.lines()]
    assert [(line.stream, line.text) for line in rest] == [(LogStream.STDERR, "second")]
    assert (await state_of(runtime, "job-1")).phase == EXITED


async def test_logs_without_follow_end_at_what_is_there(harness: Harness) -> None:
    runtime = harness.runtime
    await runtime.start(harness.spec("job-1", prints("a", exit_code=None)))

    async def printed() -> bool:
        return await runtime.log_size("job-1") > 0

    await eventually(printed, within=WITHIN)
    assert [line.text for line in await lines_of(runtime, "job-1")] == ["a"]
    assert (await state_of(runtime, "job-1")).phase == RUNNING


async def test_logs_keep_streams_in_order_and_since_filters(harness: Harness) -> None:
    runtime = harness.runtime
    program = Program(
        (Out("out 1"), Out("err 1", LogStream.STDERR), Pause(0.2), Out("out 2")), exit_code=0
    )
    await runtime.start(harness.spec("job-1", program))
    await ended(runtime, "job-1")
    lines = await lines_of(runtime, "job-1")
    assert [(line.stream, line.text) for line in lines] == [
        (LogStream.STDOUT, "out 1"),
        (LogStream.STDERR, "err 1"),
        (LogStream.STDOUT, "out 2"),
    ]
    assert lines[0].time <= lines[1].time < lines[2].time
    later = await lines_of(runtime, "job-1", since=lines[2].time)
    assert [line.text for line in later] == ["out 2"]
    assert await lines_of(runtime, "job-1", since=utcnow() + timedelta(hours=1)) == []


async def test_read_log_gives_the_lines_as_bytes(harness: Harness) -> None:
    runtime = harness.runtime
    program = Program(
        (Out("héllo wörld ✓"), Out("x" * 99, times=2000), Out("last", LogStream.STDERR))
    )
    await runtime.start(harness.spec("job-1", program))
    await ended(runtime, "job-1")
    expected = program.output()
    assert len(expected) > 3 * 64 * 1024
    assert await runtime.log_size("job-1") == len(expected)
    chunks = [chunk async for chunk in runtime.read_log("job-1")]
    assert b"".join(chunks) == expected
    assert all(0 < len(chunk) <= 64 * 1024 for chunk in chunks)
    lines = await lines_of(runtime, "job-1")
    assert b"".join(line.text.encode() + b"\n" for line in lines) == expected
    size = len(expected)
    for offset, length in [(0, 10), (5, 1000), (70_000, 100_000), (size - 3, 10), (size, 5)]:
        got = await bytes_of(runtime, "job-1", offset=offset, length=length)
        assert got == expected[offset : offset + length], (offset, length)
    assert await bytes_of(runtime, "job-1", offset=size + 10) == b""
    assert await bytes_of(runtime, "job-1", offset=100) == expected[100:]
    with pytest.raises(BadInput):
        await bytes_of(runtime, "job-1", offset=-1)


async def test_log_batches_are_bounded(harness: Harness) -> None:
    runtime = harness.runtime
    program = Program((Out("y" * 1000, times=200), Out("z", times=2500)))
    await runtime.start(harness.spec("job-1", program))
    await ended(runtime, "job-1")
    async with asyncio.timeout(WITHIN):
        batches = [batch async for batch in runtime.logs("job-1")]
    for batch in batches:
        assert 0 < batch.line_count == len(batch.lines()) <= BATCH_LINES
        assert sum(len(line.text.encode()) for line in batch.lines()) <= BATCH_BYTES
    assert len(batches) >= 4
    lines = [line.text for batch in batches for line in batch.lines()]
    assert lines == ["y" * 1000] * 200 + ["z"] * 2500


async def test_logs_resume_at_a_batchs_end_and_start_at_the_last_lines(harness: Harness) -> None:
    runtime = harness.runtime
    program = Program((Out("é-ok ✓"), Out("x" * 500, times=300), Out("last", LogStream.STDERR)))
    await runtime.start(harness.spec("job-1", program))
    await ended(runtime, "job-1")
    expected = program.output()
    async with asyncio.timeout(WITHIN):
        batches = [batch async for batch in runtime.logs("job-1")]
    ends = [end for batch in batches for end in batch.ends]
    assert ends == sorted(ends) and ends[-1] == len(expected)
    for end in {ends[0], ends[len(ends) // 2], ends[-2], ends[-1]}:
        async with asyncio.timeout(WITHIN):
            rest = [batch async for batch in runtime.logs("job-1", offset=end)]
        assert "".join(batch.text for batch in rest).encode() == expected[end:], end
        if rest:
            assert rest[-1].end == len(expected)
    async with asyncio.timeout(WITHIN):
        tail = [line async for b in runtime.logs("job-1", tail=3) for line in b.lines()]
        none = [b async for b in runtime.logs("job-1", tail=0)]
        everything = [line async for b in runtime.logs("job-1", tail=10**6) for line in b.lines()]
    assert [line.text for line in tail] == ["x" * 500, "x" * 500, "last"]
    assert none == []
    assert len(everything) == 302
    for bad in ({"offset": -1}, {"tail": -1}, {"offset": 1, "tail": 1}):
        with pytest.raises(BadInput):
            await anext(runtime.logs("job-1", **bad))  # type: ignore[arg-type]


async def test_a_follower_resumed_at_an_offset_gets_the_rest_live(harness: Harness) -> None:
    runtime = harness.runtime
    program = Program((Out("one"), Pause(1.0), Out("two"), Pause(1.0), Out("three")))
    await runtime.start(harness.spec("job-1", program))
    async with asyncio.timeout(WITHIN):
        first = await anext(runtime.logs("job-1", follow=True))
        assert first.text == "one\n"
        resumed = runtime.logs("job-1", follow=True, offset=first.end)
        rest = [line.text async for batch in resumed for line in batch.lines()]
    assert rest == ["two", "three"]


LOG_LIMIT = 256 * 1024


async def test_past_its_cap_the_oldest_output_is_dropped_with_a_marker(harness: Harness) -> None:
    runtime = await harness.reopen(log_limit_bytes=LOG_LIMIT)
    program = Program((Out("x" * 99, times=5000), Out("last")))
    await runtime.start(harness.spec("job-1", program))
    await ended(runtime, "job-1")
    printed = program.output()
    lines = await lines_of(runtime, "job-1")
    marker, kept = lines[0], lines[1:]
    assert marker.stream == LogStream.SYSTEM
    assert all(line.stream == LogStream.STDOUT for line in kept)
    assert marker.time <= kept[0].time
    match = DROPPED.fullmatch(marker.text)
    assert match is not None, marker.text
    kept_bytes = b"".join(line.text.encode() + b"\n" for line in kept)
    assert int(match.group(1)) + len(kept_bytes) == len(printed)
    assert printed.endswith(kept_bytes)
    assert LOG_LIMIT // 2 <= len(kept_bytes) <= LOG_LIMIT
    data = await bytes_of(runtime, "job-1")
    assert data == marker.text.encode() + b"\n" + kept_bytes
    assert await runtime.log_size("job-1") == len(data)
    assert await bytes_of(runtime, "job-1", offset=10, length=100) == data[10:110]
    # A reader that starts after what was dropped gets no marker.
    later = await lines_of(runtime, "job-1", since=kept[-1].time)
    assert LogStream.SYSTEM not in {line.stream for line in later}


async def test_a_log_removed_while_it_is_read_says_so(harness: Harness) -> None:
    runtime = harness.runtime
    await runtime.start(harness.spec("job-1", Program((Out("line", times=3000),))))
    await ended(runtime, "job-1")
    async with asyncio.timeout(WITHIN):
        reader = runtime.logs("job-1", follow=True)
        first = await anext(reader)
        assert first.line_count == BATCH_LINES
        await runtime.forget("job-1")
        rest = [line async for batch in reader for line in batch.lines()]
    assert rest[-1].stream == LogStream.SYSTEM
    assert "removed" in rest[-1].text
    assert len(rest) <= 3000 - BATCH_LINES + 1


# --- forget ---------------------------------------------------------------------------------------


async def test_forget(harness: Harness) -> None:
    runtime = harness.runtime
    await running(harness, "job-1", prints("hello", exit_code=None))
    with pytest.raises(Conflict):
        await runtime.forget("job-1")
    await runtime.stop("job-1", grace_s=1)
    await ended(runtime, "job-1")
    await runtime.forget("job-1")
    assert (await state_of(runtime, "job-1")).phase == WorkloadPhase.MISSING
    with pytest.raises(NotFound):
        await lines_of(runtime, "job-1")
    with pytest.raises(NotFound):
        await runtime.log_size("job-1")
    await runtime.forget("job-1")  # already forgotten: nothing happens
    assert await runtime.active_workloads() == []


# --- watch ----------------------------------------------------------------------------------------


async def test_watch_sees_a_change_made_right_after_entering(harness: Harness) -> None:
    async with harness.runtime.watch() as watch:
        await harness.runtime.start(harness.spec("job-1", FOREVER))
        async with asyncio.timeout(WITHIN):
            first = await anext(aiter(watch))
    assert (first.state.job_id, first.state.phase) == ("job-1", PENDING)


async def test_watch_resumes_with_exactly_the_missed_events(harness: Harness) -> None:
    runtime = harness.runtime
    async with runtime.watch() as everything:
        async with runtime.watch() as early:
            handshake = early.cursor
            await runtime.start(harness.spec("job-1", prints("x")))
            (pending,) = await events_until(early, "job-1", PENDING)
        all_events = await events_until(everything, "job-1", EXITED)
    assert all_events[0] == pending

    async def replay(after: str) -> list[WorkloadEvent]:
        async with runtime.watch(after=after) as resumed:
            assert resumed.cursor == after
            events = await events_until(resumed, "job-1", EXITED)
            with pytest.raises(TimeoutError):  # and nothing more
                await asyncio.wait_for(anext(aiter(resumed)), 0.3)
        return events

    assert await replay(pending.cursor) == all_events[1:]
    assert await replay(handshake) == all_events


async def test_stale_or_foreign_cursors_expire(harness: Harness) -> None:
    runtime = await harness.reopen(watch_history=2)
    async with runtime.watch() as watch:
        start = watch.cursor
        await runtime.start(harness.spec("job-1", Program()))
        events = await events_until(watch, "job-1", EXITED)
    assert len(events) == 3
    with pytest.raises(WatchExpired):  # older than the two events kept
        async with runtime.watch(after=start):
            pass
    async with runtime.watch(after=events[0].cursor) as resumed:  # two behind: still kept
        assert [e async for e in _take(resumed, 2)] == events[1:]
    async with harness.new_runtime().watch() as other:
        foreign = other.cursor
    for cursor in (foreign, "nonsense", f"{start.partition(':')[0]}:99"):
        with pytest.raises(WatchExpired):
            async with runtime.watch(after=cursor):
                pass


async def _take(watch: WorkloadWatch, count: int) -> AsyncIterator[WorkloadEvent]:
    async with asyncio.timeout(WITHIN):
        async for event in watch:
            yield event
            count -= 1
            if count == 0:
                return


# --- close and restart ----------------------------------------------------------------------------


async def test_close_ends_every_watch(harness: Harness) -> None:
    runtime = harness.runtime
    await running(harness, "job-1")
    async with runtime.watch() as first, runtime.watch() as second:
        await runtime.close()
        async with asyncio.timeout(WITHIN):
            assert [e async for e in first] == []
            assert [e async for e in second] == []
        async with runtime.watch() as late:  # entered after close: ends at once
            async with asyncio.timeout(WITHIN):
                assert [e async for e in late] == []
    await harness.reopen()  # so that the harness can stop the job


async def test_a_new_runtime_knows_what_its_workloads_hold(persistent_harness: Harness) -> None:
    harness = persistent_harness
    await harness.runtime.start(harness.spec("job-1", FOREVER, gpu=1))
    await running(harness, "job-1")
    runtime = await harness.reopen()
    assert (await runtime.capacity()).free.gpu == GPUS - 1  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="GPUs"):
        await runtime.start(harness.spec("job-2", FOREVER, gpu=2))


async def test_a_new_runtime_finds_running_jobs(persistent_harness: Harness) -> None:
    harness = persistent_harness
    program = Program((Out("begin"), Pause(1.5), Out("done")), exit_code=0)
    await running(harness, "job-1", program)
    async with harness.runtime.watch() as old:
        old_cursor = old.cursor
    runtime = await harness.reopen()
    async with runtime.watch() as watch:
        assert [(s.job_id, s.phase) for s in await runtime.active_workloads()] == [
            ("job-1", RUNNING)
        ]
        end = of(await events_until(watch, "job-1", EXITED), "job-1")[-1]
    assert end.reason == JobReason.COMPLETED
    assert [line.text for line in await lines_of(runtime, "job-1")] == ["begin", "done"]
    with pytest.raises(WatchExpired):  # a cursor from before the restart
        async with runtime.watch(after=old_cursor):
            pass


# --- telemetry ------------------------------------------------------------------------------------


async def _ticks(runtime: Runtime, job_id: str | None) -> list[tuple[object, ...]]:
    async with asyncio.timeout(WITHIN):
        return [tick async for tick in runtime.telemetry(job_id)]


async def test_telemetry_of_unknown_and_ended_workloads(harness: Harness) -> None:
    runtime = harness.runtime
    with pytest.raises(NotFound):
        await _ticks(runtime, "ghost")
    await runtime.start(harness.spec("done", prints("bye")))
    await ended(runtime, "done")
    assert await _ticks(runtime, "done") == []  # ended: nothing more, at once


async def test_telemetry_of_a_workload_ends_when_it_ends(harness: Harness) -> None:
    runtime = harness.runtime
    await running(harness, "job-1")
    followed = asyncio.create_task(_ticks(runtime, "job-1"))
    await asyncio.sleep(0.1)
    await runtime.stop("job-1", grace_s=1)
    ticks = await followed  # ends with the workload, whatever it got before
    assert all(sample.job_id == "job-1" for tick in ticks for sample in tick)  # type: ignore[attr-defined]
