"""A job's output through the real pod log API, read once and followed as the kubelet's stream.

kwok's kubelet server gives every pod of `LOGS_NAMESPACE` the lines of one file (CRI's log
format) and follows it as it grows; the test writes the lines a container would have printed.
What is real is the API server's `pods/log` (follow, timestamps), the stream's framing and its
end, and the runtime's offsets, tail, since and resume on top of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from cluster_gateway.runtimes.kubernetes_logs import MAX_LINE_BYTES, take_lines
from glia.monitoring import LogBatch
from tests.contract.test_runtime_contract import ended, running
from tests.k8s.test_runtime_contract_k8s import KubernetesHarness
from tests.k8s.testenv import LOGS_NAMESPACE, Cluster, kwok_log_line
from tests.polling import eventually

pytestmark = pytest.mark.k8s


@pytest.fixture
async def harness(k8s_cluster: Cluster) -> AsyncIterator[KubernetesHarness]:
    harness = KubernetesHarness(k8s_cluster)
    harness.namespace = LOGS_NAMESPACE  # the namespace whose pods kwok gives a log
    await harness.setup()
    try:
        yield harness
    finally:
        await harness.teardown()


def texts(batches: list[LogBatch]) -> list[str]:
    return [text for batch in batches for _at, _stream, text in batch.split()]


async def collect(stream: AsyncIterator[LogBatch]) -> list[LogBatch]:
    return [batch async for batch in stream]


async def test_a_followed_log_streams_resumes_and_ends_with_the_job(
    harness: KubernetesHarness, k8s_cluster: Cluster
) -> None:
    log = k8s_cluster.pod_log
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    log.write_text(
        kwok_log_line("first", at=an_hour_ago)
        + kwok_log_line("second: é", at=an_hour_ago)
        + kwok_log_line("to stderr", at=an_hour_ago, stream="stderr")
    )
    runtime = harness.runtime
    await running(harness, "job-1")

    # Followed: what is there, then what comes, as it comes.
    followed: list[LogBatch] = []

    async def follow() -> None:
        async for batch in runtime.logs("job-1", follow=True):
            followed.append(batch)

    follower = asyncio.create_task(follow())

    async def seen(count: int) -> bool:
        return len(texts(followed)) >= count

    await eventually(lambda: seen(3), within=20)
    assert texts(followed) == ["first", "second: é", "to stderr"]
    with log.open("a") as appended:
        appended.write(kwok_log_line("live") + kwok_log_line("x" * 1000))
    await eventually(lambda: seen(5), within=20)
    assert texts(followed)[3:] == ["live", "x" * 1000]
    assert not follower.done()

    # Read once: the same lines, and the byte offsets a follower gave.
    whole = await collect(runtime.logs("job-1"))
    assert texts(whole) == texts(followed)
    size = len("first\nsecond: é\nto stderr\nlive\n".encode()) + 1001
    assert whole[-1].end == followed[-1].end == size
    assert await runtime.log_size("job-1") == size
    # From an offset (the end of the first line), the last N lines, and since a time.
    resumed = await collect(runtime.logs("job-1", offset=len(b"first\n")))
    assert texts(resumed)[0] == "second: é"
    assert texts(await collect(runtime.logs("job-1", tail=2))) == ["live", "x" * 1000]
    recent = await collect(runtime.logs("job-1", since=datetime.now(UTC) - timedelta(minutes=5)))
    assert texts(recent) == ["live", "x" * 1000]
    # Followed from the last line on: it, then what comes.
    tailing: list[LogBatch] = []

    async def follow_tail() -> None:
        async for batch in runtime.logs("job-1", tail=1, follow=True):
            tailing.append(batch)

    tail_follower = asyncio.create_task(follow_tail())

    async def tail_read() -> bool:
        return texts(tailing) == ["x" * 1000]

    await eventually(tail_read, within=20)
    with log.open("a") as appended:
        appended.write(kwok_log_line("after the tail"))

    async def tail_seen() -> bool:
        return texts(tailing) == ["x" * 1000, "after the tail"]

    await eventually(tail_seen, within=20)

    # The job ends: both followers end (kwok's stream never does; the runtime ends it once
    # the workload has ended and the stream is quiet).
    await runtime.stop("job-1", grace_s=0)
    await ended(runtime, "job-1")
    await asyncio.wait_for(asyncio.gather(follower, tail_follower), 20)
    assert texts(followed)[-1] == "after the tail"


def test_lines_split_on_newlines_alone_and_long_ones_are_cut() -> None:
    buffer = bytearray(b"2026-01-01T00:00:00.5Z a\rb\n2026-01-01T00:00:01Z c\npartial")
    lines = take_lines(buffer)
    assert [(line.text, line.size) for line in lines] == [("a\rb", 4), ("c", 2)]
    assert lines[0].at == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert buffer == bytearray(b"partial")
    huge = bytearray(b"x" * (MAX_LINE_BYTES * 2 + 10))
    cut = take_lines(huge)
    assert [len(line.text) for line in cut] == [MAX_LINE_BYTES, MAX_LINE_BYTES]
    assert len(huge) == 10
