"""Scheduling overhead: what 1,000 jobs waiting for capacity cost each job that starts.

A cluster with room for one `unit` job at a time (an in-memory runtime, so only the control
plane is measured: the database, the queue, the scheduler's pass and the start it makes). Each
round ends the running job and runs a scheduling pass, which starts the next one; the time
of the pass is the sample.

- queue: 1,000 jobs submitted first, so every pass reads a queue of up to 1,000 waiting jobs
  (the first pass also writes why each one waits);
- baseline, in the same run: the same number of jobs, each submitted just before its pass,
  so every pass finds one job and room for it (the cost of a start with capacity free).

The difference (of the means, and of the medians) is the overhead per started job of the
jobs waiting.

    python -m bench.scheduling [--jobs 1000] [--database-url postgresql+asyncpg://…]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from cluster_gateway.gateway import ClusterCapacity, WorkloadPhase
from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.platform import Platform
from control_plane.settings import load_settings
from glia.auth import NewUser, User, UserRole
from glia.clusters import PresetInput
from glia.jobs import JobSubmission

CLUSTER = "default"
SUBMISSION = JobSubmission(command=("sleep", "1000"), preset="unit")


async def _platform(root: Path, database_url: str | None) -> tuple[Platform, FakeRuntime, User]:
    settings = load_settings(
        {},
        data_dir=root / "data",
        database_url=database_url,
        secret_key=secrets.token_urlsafe(40),
        background_tasks=False,
    )
    runtime = FakeRuntime(capacity=ClusterCapacity(cpu=1, memory_mb=4096))
    platform = await Platform.create(settings, runtime=runtime)
    async with platform.db.session() as session:
        admin, _ = await platform.auth.create_user(
            session, NewUser(name="root", role=UserRole.ADMIN, password="password-root")
        )
        unit = PresetInput(cluster=CLUSTER, name="unit", cpu=1, memory_mb=512)
        await platform.presets.add(session, admin, unit)
    return platform, runtime, admin


async def _submit(platform: Platform, user: User) -> str:
    async with platform.db.session() as session:
        return (await platform.jobs.submit(session, user, SUBMISSION)).id


async def _end_running(platform: Platform, runtime: FakeRuntime) -> None:
    """End the running job as its cluster would report it."""
    for state in await runtime.active_workloads():
        if state.phase is WorkloadPhase.PENDING:
            runtime.run(state.job_id)
        await platform.job_status.apply(runtime.finish(state.job_id, 0))
        await runtime.forget(state.job_id)


async def _pass(platform: Platform) -> float:
    started = time.perf_counter()
    decided = await platform.scheduler.schedule(CLUSTER)
    elapsed = time.perf_counter() - started
    if decided is None or len(decided.start) != 1:
        raise RuntimeError(f"a pass started {decided and len(decided.start)} jobs, not 1")
    return elapsed


async def run(jobs: int, database_url: str | None) -> tuple[list[float], list[float], float]:
    with tempfile.TemporaryDirectory(prefix="glia-bench-") as root:
        platform, runtime, user = await _platform(Path(root), database_url)
        scheduler = platform.scheduler
        try:
            baseline: list[float] = []
            for _ in range(jobs):
                await _end_running(platform, runtime)
                await _submit(platform, user)  # not scheduled: this process does not control
                scheduler.control(CLUSTER)
                baseline.append(await _pass(platform))
                scheduler.release(CLUSTER)
            await _end_running(platform, runtime)
            started = time.perf_counter()
            for _ in range(jobs):
                await _submit(platform, user)
            submit_s = time.perf_counter() - started
            scheduler.control(CLUSTER)
            queue: list[float] = []
            for _ in range(jobs):
                await _end_running(platform, runtime)
                queue.append(await _pass(platform))
        finally:
            await platform.close()
    return baseline, queue, submit_s


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"mean {statistics.fmean(samples) * 1000:.2f} ms, median "
        f"{statistics.median(samples) * 1000:.2f} ms, p95 "
        f"{ordered[int(len(ordered) * 0.95)] * 1000:.2f} ms, first {samples[0] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args()
    baseline, queue, submit_s = asyncio.run(run(args.jobs, args.database_url))
    overhead = statistics.fmean(queue) - statistics.fmean(baseline)
    median_overhead = statistics.median(queue) - statistics.median(baseline)
    print(f"{args.jobs} jobs submitted to a full cluster in {submit_s:.2f} s")
    print(f"pass starting a job, {args.jobs} waiting:  {_ms(queue)}")
    print(f"baseline, pass starting a job, 1 waiting: {_ms(baseline)}")
    print(
        f"scheduling overhead per started job of {args.jobs} waiting: mean "
        f"{overhead * 1000:.2f} ms, median {median_overhead * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
