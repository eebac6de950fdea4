"""How fast a job's output reaches a live follower, beside `cat` of the same bytes, same run.

A job prints 200 MB of lines (100 bytes each) as fast as it can; followers started before
it prints read it live to the end: the SDK's `log_text` (the `jobLogs { stream text offset }`
subscription that `glia logs -f` and `glia run` select) and the real `glia logs -f` CLI
writing to /dev/null. Each prints MB/s from its first byte to its last, beside the job's own
pace (how fast the supervisor wrote it to the log) and `cat` of the log's segment files to
/dev/null (target: a follower >= 50 MB/s).

    python -m bench.log_throughput [--megabytes 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
from pathlib import Path

from bench.harness import GLIA, BenchServer, glia_up
from sdk import GliaClient

LINE = 100  # bytes, newline included

PRINTER = """
import sys
lines = int(sys.argv[1])
block = "".join(f"{i:099d}"[-99:] + "\\n" for i in range(1000))
out = sys.stdout
for _ in range(lines // 1000):
    out.write(block)
out.flush()
"""


async def follow_with_sdk(server: BenchServer, megabytes: int) -> tuple[float, float]:
    """MB/s reaching an SDK follower of a job started for it, and the job's own MB/s."""
    lines = megabytes * 1_000_000 // LINE
    async with GliaClient(server.url, server.token, timeout=60) as client:
        job = await client.jobs.submit(["python3", "-c", PRINTER, str(lines)])
        received = 0
        first = last = 0.0
        async for chunk in client.jobs.log_text(job.id, follow=True):
            if not received:
                first = time.perf_counter()
            received += len(chunk.text)
            last = time.perf_counter()
        finished = await client.jobs.get(job.id)
    if received != lines * LINE:
        raise RuntimeError(f"the follower got {received} bytes of {lines * LINE}")
    assert finished.started_at is not None and finished.finished_at is not None
    job_s = (finished.finished_at - finished.started_at).total_seconds()
    return received / (last - first) / 1e6, received / job_s / 1e6


def follow_with_cli(server: BenchServer, megabytes: int) -> float:
    """MB/s reaching `glia logs -f` (output to /dev/null) from its first byte to its last."""
    lines = megabytes * 1_000_000 // LINE
    job_id = subprocess.run(
        [GLIA, "run", "--detach", "--no-sync", "--", "python3", "-c", PRINTER, str(lines)],
        env=server.cli_env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    follower = subprocess.Popen(
        [GLIA, "logs", "-f", job_id], env=server.cli_env, stdout=subprocess.PIPE
    )
    assert follower.stdout is not None
    received = 0
    first = 0.0
    while chunk := follower.stdout.read1(1024 * 1024):
        if not received:
            first = time.perf_counter()
        received += len(chunk)
    last = time.perf_counter()
    if follower.wait(30) != 0 or received != lines * LINE:
        raise RuntimeError(f"glia logs -f got {received} bytes of {lines * LINE}")
    return received / (last - first) / 1e6


def cat_segments(data_dir: Path) -> float:
    """MB/s of `cat` of the newest job's log segments to /dev/null."""
    job_dir = max(data_dir.glob("clusters/*/jobs/*"), key=lambda path: path.stat().st_mtime)
    segments = sorted(str(path) for path in job_dir.glob("output.*.log"))
    size = sum(Path(segment).stat().st_size for segment in segments)
    started = time.perf_counter()
    subprocess.run(["cat", *segments], stdout=subprocess.DEVNULL, check=True)
    return size / (time.perf_counter() - started) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sdk: list[float] = []
    pace: list[float] = []
    cli: list[float] = []
    cat: list[float] = []
    with glia_up() as server:
        for _ in range(args.rounds):
            followed, written = asyncio.run(follow_with_sdk(server, args.megabytes))
            sdk.append(followed)
            pace.append(written)
            cat.append(cat_segments(server.data_dir))
            cli.append(follow_with_cli(server, args.megabytes))

    def row(name: str, samples: list[float]) -> str:
        each = ", ".join(f"{x:.0f}" for x in samples)
        return f"{name:<28}: median {statistics.median(samples):8.1f} MB/s  ({each})"

    print(f"{args.megabytes} MB of {LINE}-byte lines, followed live")
    print(row("SDK follower (log_text)", sdk))
    print(row("glia logs -f > pipe", cli))
    print(row("the job writing it", pace))
    print(row("cat of the log's segments", cat))
    ratio = statistics.median(sdk) / statistics.median(cat)
    print(f"target: a follower >= 50 MB/s; SDK follower / cat {ratio:.3f}")


if __name__ == "__main__":
    main()
