"""`RemoteGateway`'s log readers: bounded on the control plane's side, and resumed from the
offset after the last batch they received, so that each line still arrives once and in
order; port-forward, a terminal's input and size, and telemetry through a remote gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.remote import LOG_BATCHES, RemoteGateway
from cluster_gateway.runtimes.fake import FakeRuntime
from glia.clock import utcnow
from glia.clusters import Resources
from glia.errors import BadInput, Conflict, NotFound, Unavailable
from glia.monitoring import LogBatch
from tests.contract.remote_server import SECRET, serving

LINES = 5 * LOG_BATCHES
WIDE = "x" * 40_000  # two such lines exceed a batch's 64 KiB: one line per batch


class CountingGateway(EmbeddedGateway):
    log_readers = 0

    def logs(
        self,
        job_id: str,
        *,
        since: datetime | None = None,
        offset: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogBatch]:
        self.log_readers += 1
        return super().logs(job_id, since=since, offset=offset, tail=tail, follow=follow)


async def test_a_slow_log_reader_pauses_and_resumes_without_losing_a_line() -> None:
    runtime = FakeRuntime()
    gateway = CountingGateway("streams", runtime)
    await gateway.open()
    spec = WorkloadSpec(job_id="job-1", command=("x",), resources=Resources(cpu=1, memory_mb=1))
    await gateway.start(spec)
    at = utcnow()  # every line at the same time: only their offsets tell them apart
    for i in range(LINES):
        runtime.emit_log("job-1", f"{i:03d}{WIDE}", time=at)
    runtime.finish("job-1")
    try:
        async with serving(gateway) as url:
            remote = RemoteGateway("streams", url, secret=SECRET)
            try:
                reader = aiter(remote.logs("job-1", follow=True))
                batches = [await anext(reader)]
                await asyncio.sleep(0.5)  # the reader dawdles: its subscription fills and pauses
                async with asyncio.timeout(20):
                    batches += [batch async for batch in reader]
            finally:
                await remote.close()
    finally:
        await gateway.close()
    texts = [line.text[:3] for batch in batches for line in batch.lines()]
    assert texts == [f"{i:03d}" for i in range(LINES)]
    assert gateway.log_readers >= 2  # it paused (its buffer full) and resumed


async def test_port_forward_stdin_and_telemetry_through_a_remote_gateway() -> None:
    runtime = FakeRuntime()
    gateway = EmbeddedGateway("streams", runtime)
    await gateway.open()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read())  # all it gets, once the caller half-closes
        await writer.drain()
        writer.close()

    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    runtime.ports[("job-1", 80)] = echo_server.sockets[0].getsockname()[:2]
    resources = Resources(cpu=1, memory_mb=1)
    await gateway.start(WorkloadSpec(job_id="job-1", command=("x",), resources=resources))
    await gateway.start(WorkloadSpec(job_id="job-t", command=("x",), resources=resources, tty=True))
    runtime.run("job-1")
    runtime.run("job-t")
    try:
        async with serving(gateway) as url:
            remote = RemoteGateway("streams", url, secret=SECRET)
            try:
                reader, writer = await remote.connect("job-1", 80)
                writer.write(b"ping " * 100_000)
                writer.write_eof()
                async with asyncio.timeout(10):
                    assert await reader.read() == b"ping " * 100_000
                writer.close()
                with pytest.raises(Unavailable, match="nothing answers on port 81"):
                    await remote.connect("job-1", 81)

                await remote.write_stdin("job-t", b"ls\n")
                assert runtime.stdin["job-t"] == b"ls\n"
                with pytest.raises(Conflict):
                    await remote.write_stdin("job-1", b"ls\n")
                await remote.resize_terminal("job-t", 50, 132)
                assert runtime.terminal_sizes["job-t"] == [(50, 132)]
                with pytest.raises(Conflict):
                    await remote.resize_terminal("job-1", 50, 132)
                with pytest.raises(BadInput):
                    await remote.resize_terminal("job-t", 0, 132)

                with pytest.raises(NotFound):
                    async for _ in remote.telemetry("ghost"):
                        pass
                ticks = aiter(remote.telemetry("job-1"))
                first = asyncio.ensure_future(anext(ticks))
                async with asyncio.timeout(10):
                    while not first.done():  # until the subscription is there to see it
                        runtime.emit_telemetry("job-1", 50.0, 1024)
                        await asyncio.sleep(0.05)
                (sample, *_) = first.result()
                assert (sample.job_id, sample.cpu_percent, sample.memory_bytes) == (
                    "job-1",
                    50.0,
                    1024,
                )
                runtime.finish("job-1")
                async with asyncio.timeout(10):
                    async for _ in ticks:  # ends with the job
                        pass
            finally:
                await remote.close()
    finally:
        echo_server.close()
        await gateway.close()
