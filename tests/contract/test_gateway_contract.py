"""The Gateway protocol, held against `EmbeddedGateway` over each runtime, and against
`RemoteGateway` reaching that embedded gateway through a `glia gateway serve` app.

The embedded gateway delegates to its runtime, which test_runtime_contract.py holds to the
contract point by point; this suite proves the protocol's shape and that every operation
reaches the runtime and comes back unchanged, in process and across the network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import (
    Gateway,
    WatchExpired,
    WorkloadEvent,
    WorkloadPhase,
    WorkloadState,
    WorkloadWatch,
)
from cluster_gateway.remote import RemoteGateway
from glia.errors import BadInput, Conflict, NotFound
from glia.jobs import JobReason
from tests.contract.harness import FOREVER, Harness, Out, Pause, Program, prints
from tests.contract.remote_server import SECRET, serving
from tests.polling import eventually

WITHIN = 10.0


@pytest.fixture(params=["embedded", "remote"])
async def gateway(request: pytest.FixtureRequest, harness: Harness) -> AsyncIterator[Gateway]:
    embedded = EmbeddedGateway("test-cluster", harness.runtime)
    await embedded.open()  # the harness opened the runtime already: opening again is harmless
    if request.param == "embedded":
        yield embedded
        return
    async with serving(embedded) as url:
        remote = RemoteGateway("test-cluster", url, secret=SECRET)
        await remote.open()
        try:
            yield remote
        finally:
            await remote.close()


async def until(watch: WorkloadWatch, job_id: str, phase: WorkloadPhase) -> list[WorkloadEvent]:
    seen: list[WorkloadEvent] = []
    async with asyncio.timeout(WITHIN):
        async for event in watch:
            seen.append(event)
            if event.state.job_id == job_id and event.state.phase == phase:
                return seen
    raise AssertionError(f"the watch ended before {job_id} was {phase}")


async def test_the_protocol_shape(harness: Harness, gateway: Gateway) -> None:
    assert isinstance(gateway, Gateway)
    assert gateway.name == "test-cluster"
    capacity = await gateway.capacity()
    assert capacity.cpu > 0 and capacity.memory_mb > 0
    assert await gateway.isolation() == harness.isolation


async def test_a_workload_through_the_gateway(harness: Harness, gateway: Gateway) -> None:
    program = Program((Out("hello"), Pause(0.3), Out("world")), exit_code=None)
    with pytest.raises(BadInput):
        await gateway.start(harness.spec("bad id", program))
    async with gateway.watch() as watch:
        state = await gateway.start(harness.spec("job-1", program))
        assert state.phase == WorkloadPhase.PENDING
        assert (await gateway.start(harness.spec("job-1", program))).phase != WorkloadPhase.EXITED
        await until(watch, "job-1", WorkloadPhase.RUNNING)
        assert [s.job_id for s in await gateway.active_workloads()] == ["job-1"]

        async def printed() -> bool:
            return await gateway.log_size("job-1") == len(b"hello\nworld\n")

        await eventually(printed, within=WITHIN)
        with pytest.raises(Conflict):
            await gateway.forget("job-1")
        await gateway.stop("job-1", grace_s=1)
        end = (await until(watch, "job-1", WorkloadPhase.EXITED))[-1].state
    assert end.reason == JobReason.USER_REQUESTED
    assert await gateway.states(["job-1", "ghost"]) == [
        end,
        WorkloadState(job_id="ghost", phase=WorkloadPhase.MISSING),
    ]
    async with asyncio.timeout(WITHIN):
        lines = [
            line async for batch in gateway.logs("job-1", follow=True) for line in batch.lines()
        ]
        data = b"".join([chunk async for chunk in gateway.read_log("job-1", offset=6)])
    assert [line.text for line in lines] == ["hello", "world"]
    assert data == b"world\n"
    await gateway.forget("job-1")
    assert (await gateway.states(["job-1"]))[0].phase == WorkloadPhase.MISSING
    assert await gateway.active_workloads() == []


async def test_unknown_workloads_through_the_gateway(gateway: Gateway) -> None:
    with pytest.raises(NotFound):
        await gateway.stop("ghost")
    with pytest.raises(NotFound):
        await gateway.log_size("ghost")
    with pytest.raises(NotFound):
        async for _ in gateway.logs("ghost"):
            pass
    with pytest.raises(NotFound):
        async for _ in gateway.read_log("ghost"):
            pass
    await gateway.forget("ghost")


async def test_watch_resume_and_expiry_through_the_gateway(
    harness: Harness, gateway: Gateway
) -> None:
    async with gateway.watch() as watch:
        await gateway.start(harness.spec("job-1", prints("x")))
        events = await until(watch, "job-1", WorkloadPhase.EXITED)
    async with gateway.watch(after=events[0].cursor) as resumed:
        assert await until(resumed, "job-1", WorkloadPhase.EXITED) == events[1:]
    with pytest.raises(WatchExpired):
        async with gateway.watch(after="nonsense"):
            pass


async def test_close_ends_the_watches(harness: Harness, gateway: Gateway) -> None:
    async with gateway.watch() as watch:
        await gateway.start(harness.spec("job-1", FOREVER))
        await until(watch, "job-1", WorkloadPhase.RUNNING)
        await gateway.close()
        async with asyncio.timeout(WITHIN):
            assert [e async for e in watch] == []
    await harness.reopen()  # so that the harness can stop the job


async def test_exec_and_connect(harness: Harness, gateway: Gateway) -> None:
    """``cat`` inside a running workload echoes its stdin (the fake's exec is such an echo);
    an unknown workload is NotFound, an ended one Conflict, for exec and connect alike."""
    with pytest.raises(NotFound):
        await gateway.exec("ghost", ["cat"])
    with pytest.raises(NotFound):
        await gateway.connect("ghost", 80)
    async with gateway.watch() as watch:
        await gateway.start(harness.spec("job-x", Program((Out("up"),), exit_code=None)))
        await until(watch, "job-x", WorkloadPhase.RUNNING)
        session = await gateway.exec("job-x", ["cat"])
        try:
            await session.write(b"ping\n")
            await session.close_stdin()
            async with asyncio.timeout(WITHIN):
                echoed = b"".join([chunk async for _, chunk in session.output()])
            assert echoed == b"ping\n"
            assert await session.wait() == 0
        finally:
            await session.close()
        await gateway.stop("job-x", grace_s=0)
        await until(watch, "job-x", WorkloadPhase.EXITED)
    with pytest.raises(Conflict):
        await gateway.exec("job-x", ["cat"])
    with pytest.raises(Conflict):
        await gateway.connect("job-x", 80)


async def test_logs_from_an_offset_or_the_last_lines(harness: Harness, gateway: Gateway) -> None:
    async with gateway.watch() as watch:
        await gateway.start(harness.spec("job-1", prints("a", "b", "c")))
        await until(watch, "job-1", WorkloadPhase.EXITED)

    async def texts(**start: int) -> list[str]:
        async with asyncio.timeout(WITHIN):
            return [
                line.text
                async for batch in gateway.logs("job-1", follow=True, **start)
                for line in batch.lines()
            ]

    assert await texts(offset=2) == ["b", "c"]
    assert await texts(tail=1) == ["c"]
    batches = [batch async for batch in gateway.logs("job-1")]
    assert batches[-1].end == len(b"a\nb\nc\n")
    with pytest.raises(BadInput):
        await texts(offset=2, tail=1)
