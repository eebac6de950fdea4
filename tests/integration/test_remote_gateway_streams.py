"""`RemoteGateway`'s log readers: bounded on the control plane's side, and resumed from the
last line they received, so that each line still arrives once and in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.remote import LOG_BATCHES, RemoteGateway
from cluster_gateway.runtimes.fake import FakeRuntime
from cluster_gateway.server.schema import _skip_lines
from glia.clock import utcnow
from glia.clusters import Resources
from glia.monitoring import LogBatch, LogStream
from tests.contract.remote_server import SECRET, serving

LINES = 5 * LOG_BATCHES
WIDE = "x" * 40_000  # two such lines exceed a batch's 64 KiB: one line per batch


class CountingGateway(EmbeddedGateway):
    log_readers = 0

    def logs(
        self, job_id: str, *, since: datetime | None = None, follow: bool = False
    ) -> AsyncIterator[LogBatch]:
        self.log_readers += 1
        return super().logs(job_id, since=since, follow=follow)


async def test_a_slow_log_reader_pauses_and_resumes_without_losing_a_line() -> None:
    runtime = FakeRuntime()
    gateway = CountingGateway("streams", runtime)
    await gateway.open()
    spec = WorkloadSpec(job_id="job-1", command=("x",), resources=Resources(cpu=1, memory_mb=1))
    await gateway.start(spec)
    at = utcnow()  # every line at the same time: only the count of lines tells them apart
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


def test_skip_lines_skips_only_lines_at_the_resume_time() -> None:
    batch = LogBatch(
        times=(5, 5, 7),
        streams=(LogStream.STDOUT, LogStream.STDERR, LogStream.STDOUT),
        texts=("a\nb\n", "c\n", "d\ne\n"),
    )
    assert _skip_lines(batch, 1, 5) == (
        LogBatch(
            times=(5, 5, 7),
            streams=(LogStream.STDOUT, LogStream.STDERR, LogStream.STDOUT),
            texts=("b\n", "c\n", "d\ne\n"),
        ),
        0,
    )
    assert _skip_lines(batch, 3, 5)[0] == LogBatch(
        times=(7,), streams=(LogStream.STDOUT,), texts=("d\ne\n",)
    )
    # More to skip than there are lines at that time: a later line ends the skipping.
    assert _skip_lines(batch, 9, 5) == (_skip_lines(batch, 3, 5)[0], 0)
    assert _skip_lines(batch, 2, 4) == (batch, 0)
    head = LogBatch(times=(5,), streams=(LogStream.STDOUT,), texts=("a\nb\n",))
    assert _skip_lines(head, 3, 5) == (None, 1)
