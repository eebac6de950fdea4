"""LocalRuntime's followers of one job share one reader of its newest output (a `_Tail`):
every line reaches each of them once and in order, what a follower has waiting is bounded,
and a follower that does not read falls behind on its own without holding up the others."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster_gateway.runtimes import jobdir, local, logfile
from cluster_gateway.runtimes.local import LocalRuntime
from glia.monitoring import LogBatch, LogStream
from tests.integration.test_local_runtime import WITHIN, python, spec, stop_all
from tests.polling import eventually

# Prints "ready", waits for a file named "go" in its working directory, then prints ROUNDS
# runs of LINES lines (stderr every fifth run), flushed one run at a time.
# At most 1,000 lines a batch: more batches than a follower may have waiting.
ROUNDS, LINES = 100, 250
BURST = (
    "import os, sys, time\n"
    "print('ready', flush=True)\n"
    "while not os.path.exists('go'): time.sleep(0.01)\n"
    f"for r in range({ROUNDS}):\n"
    "    out = sys.stderr if r % 5 == 4 else sys.stdout\n"
    f"    out.write(''.join(f'{{r}} {{i}}\\n' for i in range({LINES})))\n"
    "    out.flush()\n"
)
EXPECTED = [
    (LogStream.STDERR if r % 5 == 4 else LogStream.STDOUT, f"{r} {i}")
    for r in range(ROUNDS)
    for i in range(LINES)
]


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    runtime = LocalRuntime(tmp_path / "state", default_grace_s=1.0, poll_interval_s=0.2)
    await runtime.open()
    try:
        yield runtime
        await stop_all(runtime)
    finally:
        await runtime.close()


def lines_of(batches: list[LogBatch]) -> list[tuple[LogStream, str]]:
    return [(line.stream, line.text) for batch in batches for line in batch.lines()]


def assert_every_line_once_in_order(batches: list[LogBatch]) -> None:
    # The supervisor reads stdout and stderr from two pipes: each stream's lines keep their
    # order, while which of two runs printed close together comes first is not fixed.
    got = lines_of(batches)
    for stream in (LogStream.STDOUT, LogStream.STDERR):
        assert [line for line in got if line[0] == stream] == [
            line for line in EXPECTED if line[0] == stream
        ]
    assert len(got) == len(EXPECTED)


async def start_burst(runtime: LocalRuntime, job_id: str) -> Path:
    """Start the job; the directory it works in (where "go" lets it go on)."""
    await runtime.start(spec(job_id, python(BURST)))
    return runtime.job_dir(job_id) / jobdir.SCRATCH


async def followers_at_the_tail(runtime: LocalRuntime, job_id: str, count: int) -> None:
    async def joined() -> bool:
        tail = runtime._tails.get(job_id)
        return tail is not None and len(tail.followers) == count

    await eventually(joined, within=WITHIN)


async def test_followers_share_one_reader_and_each_gets_every_line_once_in_order(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    work = await start_burst(runtime, "burst")
    count = 5
    followers = [runtime.logs("burst", follow=True) for _ in range(count)]
    async with asyncio.timeout(WITHIN):
        for follower in followers:
            assert lines_of([await anext(follower)]) == [(LogStream.STDOUT, "ready")]
        # Each waits for more: caught up, they follow the job's one tail.
        waiting = [asyncio.ensure_future(anext(follower)) for follower in followers]
        await followers_at_the_tail(runtime, "burst", count)
        (work / "go").touch()
        got: list[list[LogBatch]] = [[await first] for first in waiting]

        async def rest(follower: AsyncIterator[LogBatch], into: list[LogBatch]) -> None:
            async for batch in follower:
                into.append(batch)

        await asyncio.gather(*(rest(f, into) for f, into in zip(followers, got, strict=True)))
    for batches in got:
        assert_every_line_once_in_order(batches)
        assert all(0 < batch.line_count <= local.BATCH_LINES for batch in batches)
    # One reader for all: the very same batches reached every follower.
    assert all([id(b) for b in batches] == [id(b) for b in got[0]] for batches in got[1:])
    assert "burst" not in runtime._tails


async def test_a_follower_that_does_not_read_holds_a_bounded_queue_and_stalls_nobody(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    work = await start_burst(runtime, "burst")
    fast, slow = runtime.logs("burst", follow=True), runtime.logs("burst", follow=True)
    async with asyncio.timeout(WITHIN):
        assert lines_of([await anext(fast), await anext(slow)]) == [(LogStream.STDOUT, "ready")] * 2
        slow_first = asyncio.ensure_future(anext(slow))
        fast_next = asyncio.ensure_future(anext(fast))
        await followers_at_the_tail(runtime, "burst", 2)
        (work / "go").touch()
        # The fast follower reads everything to the end while the slow one reads nothing.
        fast_batches = [await fast_next]
        most_waiting, fewest_followers = 0, 2
        async for batch in fast:
            fast_batches.append(batch)
            tail = runtime._tails.get("burst")
            if tail is not None:
                fewest_followers = min(fewest_followers, len(tail.followers))
                for follower in tail.followers:
                    most_waiting = max(most_waiting, len(follower.batches))
        assert_every_line_once_in_order(fast_batches)
        assert most_waiting <= local.FOLLOWER_BATCHES
        assert len(fast_batches) > local.FOLLOWER_BATCHES
        assert fewest_followers == 1
        # The slow one fell behind: it reads on its own from where it was, and still gets
        # every line once, in order.
        slow_batches = [await slow_first]
        slow_batches += [batch async for batch in slow]
    assert_every_line_once_in_order(slow_batches)


async def test_followers_at_the_tail_are_told_of_a_truncated_log(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    await start_burst(runtime, "burst")
    followers = [runtime.logs("burst", follow=True) for _ in range(3)]
    async with asyncio.timeout(WITHIN):
        for follower in followers:
            await anext(follower)
        waiting = [asyncio.ensure_future(anext(follower)) for follower in followers]
        await followers_at_the_tail(runtime, "burst", 3)
        os.truncate(runtime.job_dir("burst") / logfile.log_name(0), 0)
        for first, follower in zip(waiting, followers, strict=True):
            batches = [await first] + [batch async for batch in follower]
            last = batches[-1].lines()[-1]
            assert (last.stream, last.text) == (LogStream.SYSTEM, logfile.TRUNCATED_LINE.decode())


async def test_a_follower_that_leaves_the_tail_ends_its_reader_when_it_is_the_last(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    await start_burst(runtime, "burst")
    follower = runtime.logs("burst", follow=True)
    async with asyncio.timeout(WITHIN):
        await anext(follower)
        waiting = asyncio.ensure_future(anext(follower))
        await followers_at_the_tail(runtime, "burst", 1)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        await follower.aclose()

        async def gone() -> bool:
            return "burst" not in runtime._tails and "burst" not in runtime._followers

        await eventually(gone, within=WITHIN)


async def test_a_follower_behind_gets_what_waits_joined_within_a_batchs_bounds() -> None:
    def batch(start: int, count: int, size: int = 10) -> LogBatch:
        return LogBatch(
            times=tuple(range(start, start + count)),
            streams=(LogStream.STDOUT,) * count,
            texts=tuple(f"{n:0{size}d}\n" for n in range(start, start + count)),
            ends=tuple((n + 1) * (size + 1) for n in range(start, start + count)),
        )

    follower = local._Follower(asyncio.Event())
    for start in range(0, 1200, 100):  # 12 batches of 100 lines: 1,200 lines in all
        follower.give(batch(start, 100))
    first, second = await follower.take(), await follower.take()
    assert first is not None and second is not None
    assert first.line_count == local.BATCH_LINES
    assert [int(line.text) for b in (first, second) for line in b.lines()] == list(range(1200))
    # The bytes bound too: lines of 9,000 bytes fit 7 to a batch (64 KiB of text).
    for start in range(10):
        follower.give(batch(start, 1, size=9000))
    first = await follower.take()
    assert first is not None and first.line_count == 7
    follower.end()
    second = await follower.take()
    assert second is not None and second.line_count == 3
    assert await follower.take() is None


# Prints "ready"; after "go", one more run than a follower may have waiting, each of exactly
# a batch's lines (each write under PIPE_BUF, so read whole); after "go2", "after".
FILL = (
    "import os, sys, time\n"
    "print('ready', flush=True)\n"
    "while not os.path.exists('go'): time.sleep(0.01)\n"
    f"for _ in range({local.FOLLOWER_BATCHES + 1}):\n"
    f"    sys.stdout.write('x\\n' * {local.BATCH_LINES})\n"
    "    sys.stdout.flush()\n"
    "while not os.path.exists('go2'): time.sleep(0.01)\n"
    "print('after', flush=True)\n"
)


async def test_a_follower_joining_when_the_others_are_full_is_not_stalled(
    runtime: LocalRuntime,
) -> None:
    await runtime.start(spec("fill", python(FILL)))
    work = runtime.job_dir("fill") / jobdir.SCRATCH
    stalled = runtime.logs("fill", follow=True)
    async with asyncio.timeout(WITHIN):
        await anext(stalled)
        waiting = asyncio.ensure_future(anext(stalled))
        await followers_at_the_tail(runtime, "fill", 1)
        (work / "go").touch()

        async def stalled_is_full() -> bool:
            tail = runtime._tails.get("fill")
            return tail is not None and tail.full

        await eventually(stalled_is_full, within=WITHIN)
        # A new follower reads all of it on its own, then joins the tail where it stopped.
        late = runtime.logs("fill", follow=True)
        seen = 0
        while seen < 1 + (local.FOLLOWER_BATCHES + 1) * local.BATCH_LINES:
            seen += (await anext(late)).line_count
        late_next = asyncio.ensure_future(anext(late))
        await followers_at_the_tail(runtime, "fill", 2)
        (work / "go2").touch()
        assert [line.text for line in (await late_next).lines()] == ["after"]
    waiting.cancel()
