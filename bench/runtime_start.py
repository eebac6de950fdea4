"""LocalRuntime start latency: ``start()`` until RUNNING is seen on ``watch()``.

There is one way a job starts: its supervisor is forked by the pre-started spawner, which
runs the command in the job's bubblewrap sandbox where bwrap works (RUNNING once the sandbox
is made and its pid 1 has forked the command), under ``--uid`` if given (as the control plane
gives one when the runtime runs as root: setpriv switches to it in the sandbox). Baseline,
measured in the same run: ``asyncio.create_subprocess_exec`` of the same command in this
process, until it returns.

    python -m bench.runtime_start [--runs 100] [--no-cgroups] [--no-sandbox] [--uid UID]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.harness import summary
from cluster_gateway.gateway import WorkloadPhase, WorkloadSpec
from cluster_gateway.runtimes.local import LocalRuntime
from glia.clusters import Resources

COMMAND = ("true",)


async def baseline(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(*COMMAND)
        samples.append(time.perf_counter() - started)
        await process.wait()
    return samples


async def runtime_start(
    n: int, *, use_cgroups: bool, sandbox: bool | None, uid: int | None
) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="glia-bench-rt-") as root:
        runtime = LocalRuntime(Path(root) / "state", use_cgroups=use_cgroups, sandbox=sandbox)
        await runtime.open()
        if sandbox is None and not runtime.sandboxed:
            print("  (bwrap does not work here: no sandbox)")
        spawner = runtime.spawner_pid
        if spawner is None:
            raise RuntimeError("the spawner did not start")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        samples = []
        try:
            async with runtime.watch() as watch:
                events = aiter(watch)
                for i in range(n):
                    job_id = f"bench-{i}"
                    spec = WorkloadSpec(
                        job_id=job_id,
                        command=COMMAND,
                        resources=Resources(cpu=1, memory_mb=64),
                        env=env,
                        uid=uid,
                        gid=uid,
                    )
                    started = time.perf_counter()
                    await runtime.start(spec)
                    async with asyncio.timeout(10):
                        while (state := (await anext(events)).state).phase == (
                            WorkloadPhase.PENDING
                        ) or state.job_id != job_id:
                            pass
                        samples.append(time.perf_counter() - started)
                        if state.phase != WorkloadPhase.RUNNING:
                            raise RuntimeError(f"{job_id} did not run: {state}")
                        while state.job_id != job_id or state.phase != WorkloadPhase.EXITED:
                            state = (await anext(events)).state  # let it end before the next
            if runtime.spawner_pid != spawner:
                raise RuntimeError("the spawner was replaced during the run")
        finally:
            await runtime.close()
        return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--no-cgroups", action="store_true")
    parser.add_argument("--no-sandbox", action="store_true")
    parser.add_argument("--uid", type=int, default=None, help="run the jobs as this uid (root)")
    args = parser.parse_args()
    cgroups = not args.no_cgroups
    options = {
        "use_cgroups": cgroups,
        "sandbox": False if args.no_sandbox else None,
        "uid": args.uid,
    }
    await runtime_start(5, **options)  # warm up the caches
    local = await runtime_start(args.runs, **options)
    base = await baseline(args.runs)
    sandbox = "off" if args.no_sandbox else "on"
    print(
        f"start -> RUNNING, cgroups {'on' if cgroups else 'off'}, sandbox {sandbox}, "
        f"uid {args.uid}, command {list(COMMAND)}"
    )
    print(f"  LocalRuntime (supervisor forked by the spawner): {summary(local)}")
    print(f"  baseline, asyncio.create_subprocess_exec:        {summary(base)}")


if __name__ == "__main__":
    asyncio.run(main())
