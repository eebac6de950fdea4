"""Live log latency: a job prints a timestamped line every 10 ms; how late does a `jobLogs`
subscriber see each line?

Baseline, measured in the same run: the same program spawned with its stdout on a pipe that
this process reads directly.

    python bench/log_latency.py [--lines 500]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from bench.harness import glia_up, summary
from sdk import GliaClient

PROGRAM = (
    "import time, sys\n"
    "time.sleep(0.5)\n"
    "for _ in range({n}):\n"
    "    print(time.time_ns(), flush=True)\n"
    "    time.sleep(0.01)\n"
)


def _delay(line: str, received_ns: int) -> float:
    return (received_ns - int(line.strip())) / 1e9


async def baseline(n: int) -> list[float]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROGRAM.format(n=n), stdout=asyncio.subprocess.PIPE
    )
    samples = []
    assert process.stdout is not None
    async for raw in process.stdout:
        samples.append(_delay(raw.decode(), time.time_ns()))
    await process.wait()
    return samples


async def glia(url: str, token: str, n: int) -> list[float]:
    samples = []
    async with GliaClient(url, token) as client:
        job = await client.jobs.submit(["python3", "-c", PROGRAM.format(n=n)], preset="cpu-small")
        async for line in client.jobs.logs(job.id, follow=True):
            samples.append(_delay(line.text, time.time_ns()))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=500)
    args = parser.parse_args()
    with glia_up() as server:
        glia_samples = asyncio.run(glia(server.url, server.token, args.lines))
    base_samples = asyncio.run(baseline(args.lines))
    print(f"log line, print -> jobLogs subscriber: {summary(glia_samples)}")
    print(f"baseline, print -> pipe reader:        {summary(base_samples)}")


if __name__ == "__main__":
    main()
