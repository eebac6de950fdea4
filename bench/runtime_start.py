"""LocalRuntime start latency: ``start()`` until RUNNING is seen on ``watch()``.

Two ways of starting the supervisor: forked by the pre-started spawner (the default), and the
``posix_spawn`` fallback (``use_spawner=False``). Baseline, measured in the same run:
``asyncio.create_subprocess_exec`` of the same command in this process, until it returns.

    python bench/runtime_start.py [--runs 100] [--no-cgroups]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.harness import summary
from cluster_gateway.gateway import Resources, WorkloadPhase, WorkloadSpec
from cluster_gateway.runtimes.local import LocalRuntime

COMMAND = ["true"]


async def baseline(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(*COMMAND)
        samples.append(time.perf_counter() - started)
        await process.wait()
    return samples


async def runtime_start(n: int, *, use_spawner: bool, use_cgroups: bool) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="glia-bench-rt-") as root:
        runtime = LocalRuntime(
            Path(root) / "state", use_cgroups=use_cgroups, use_spawner=use_spawner
        )
        await runtime.open()
        if use_spawner and runtime._spawner is None:
            raise RuntimeError("the spawner did not start")
        watch = runtime.watch()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        samples = []
        try:
            for i in range(n):
                job_id = f"bench-{i}"
                started = time.perf_counter()
                await runtime.start(WorkloadSpec(job_id, COMMAND, Resources(1, 64), env=env))
                async with asyncio.timeout(10):
                    async for state in watch:
                        if state.job_id == job_id and state.phase != WorkloadPhase.PENDING:
                            break
                samples.append(time.perf_counter() - started)
                assert state.phase == WorkloadPhase.RUNNING, state
                async for state in watch:  # let it end before the next one starts
                    if state.job_id == job_id and state.phase == WorkloadPhase.EXITED:
                        break
            if use_spawner and runtime._spawner is None:
                raise RuntimeError("the spawner failed during the run")
        finally:
            await runtime.close()
        return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--no-cgroups", action="store_true")
    args = parser.parse_args()
    cgroups = not args.no_cgroups
    n = args.runs
    await runtime_start(5, use_spawner=True, use_cgroups=cgroups)  # warm up the caches
    await runtime_start(5, use_spawner=False, use_cgroups=cgroups)
    spawner = await runtime_start(n, use_spawner=True, use_cgroups=cgroups)
    fallback = await runtime_start(n, use_spawner=False, use_cgroups=cgroups)
    base = await baseline(n)
    print(f"start -> RUNNING, cgroups {'on' if cgroups else 'off'}, command {COMMAND}")
    print(f"  spawner (fork of a ready interpreter): {summary(spawner)}")
    print(f"  posix_spawn fallback (new interpreter): {summary(fallback)}")
    print(f"  baseline, asyncio.create_subprocess_exec: {summary(base)}")


if __name__ == "__main__":
    asyncio.run(main())
