"""Job start latency: from `submitJob` to the job seen running through `jobStatus`.

Baseline, measured in the same run: spawning the same command with
asyncio.create_subprocess_exec in this process.

    python bench/job_start.py [--jobs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from bench.harness import glia_up, summary
from sdk import GliaClient
from sdk.types import JobStatus

COMMAND = ["sleep", "0.5"]


async def baseline(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(*COMMAND)
        samples.append(time.perf_counter() - started)
        await process.wait()
    return samples


async def glia(url: str, token: str, n: int) -> list[float]:
    samples = []
    async with GliaClient(url, token) as client:
        for _ in range(n):
            started = time.perf_counter()
            job = await client.jobs.submit(COMMAND, preset="cpu-small")
            async with contextlib.aclosing(client.jobs.watch_status(job.id)) as updates:
                async for seen in updates:
                    if seen.status is not JobStatus.PENDING:
                        break
            samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--no-cgroups", action="store_true", help="confine jobs by rlimits only")
    args = parser.parse_args()
    with glia_up(cgroups=not args.no_cgroups) as server:
        asyncio.run(glia(server.url, server.token, 5))  # warm up
        glia_samples = asyncio.run(glia(server.url, server.token, args.jobs))
    base_samples = asyncio.run(baseline(args.jobs))
    print(f"job start, submitJob -> running via subscription: {summary(glia_samples)}")
    print(f"baseline, asyncio.create_subprocess_exec:         {summary(base_samples)}")


if __name__ == "__main__":
    main()
