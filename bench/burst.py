"""Submission bursts against a real `glia up`, on SQLite and on PostgreSQL.

(a) 50 jobs (`echo hi`) submitted at once by 50 concurrent clients: time from the first
    submission until every one has succeeded (seen on `jobChanges`).
(b) 8 clients submitting as fast as they are answered for 10 s: accepted submissions per
    second, then the time until every accepted job has succeeded.

Baselines, measured in the same run: spawning `echo hi` with asyncio.create_subprocess_exec,
50 at once, and by 8 workers for the same 10 s.

    python -m bench.burst [--jobs 50] [--clients 8] [--seconds 10] [--database sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg  # type: ignore[import-untyped]

from bench.harness import BenchServer, glia_up
from sdk import GliaClient, GliaError
from sdk.types import JobStatus

COMMAND = ["echo", "hi"]
# Sized for `echo hi`: admission must not be what limits the rate (cpu-small lets 4 jobs run
# at once on 2 cores, and the run measured the queue instead of the submissions).
PRESET = "echo"
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DRAIN_TIMEOUT_S = 300.0


async def spawn(n: int) -> float:
    started = time.perf_counter()

    async def one() -> None:
        process = await asyncio.create_subprocess_exec(*COMMAND, stdout=asyncio.subprocess.DEVNULL)
        await process.wait()

    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - started


async def spawn_sustained(workers: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            process = await asyncio.create_subprocess_exec(
                *COMMAND, stdout=asyncio.subprocess.DEVNULL
            )
            await process.wait()
            done += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / seconds


@contextlib.asynccontextmanager
async def succeeded_jobs(server: BenchServer) -> AsyncIterator[tuple[set[str], asyncio.Event]]:
    """The ids of jobs seen succeeding on `jobChanges` (followed from before the yield), and
    an event set on each new one."""
    seen: set[str] = set()
    changed = asyncio.Event()
    subscribed = asyncio.Event()
    async with GliaClient(server.url, server.token) as client:

        async def follow() -> None:
            async with contextlib.aclosing(client.jobs.watch_changes()) as changes:
                # The subscription is made once the first message is asked for.
                subscribed.set()
                async for job in changes:
                    if job.status is JobStatus.SUCCEEDED and job.id not in seen:
                        seen.add(job.id)
                        changed.set()

        task = asyncio.create_task(follow())
        await subscribed.wait()
        await asyncio.sleep(0.5)  # the subscription's handshake
        try:
            yield seen, changed
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_all(
    server: BenchServer, ids: set[str], seen: set[str], changed: asyncio.Event
) -> None:
    """Until every job of ``ids`` has succeeded: seen on `jobChanges`, or, when it has been
    quiet for a second (the bus drops messages for a slow reader), read one by one."""
    async with asyncio.timeout(DRAIN_TIMEOUT_S), GliaClient(server.url, server.token) as client:
        while not ids <= seen:
            changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await changed.wait()
                continue
            for job_id in ids - seen:
                job = await client.jobs.get(job_id)
                if job.status is JobStatus.SUCCEEDED:
                    seen.add(job_id)
                elif job.status.is_finished:
                    raise RuntimeError(f"job {job_id} {job.status.value}: {job.reason}")


async def burst(server: BenchServer, n: int) -> float:
    clients = [GliaClient(server.url, server.token) for _ in range(n)]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        # Each client's connection is open before the clock starts.
        await asyncio.gather(*(client.auth.me() for client in clients))
        async with succeeded_jobs(server) as (seen, changed):
            started = time.perf_counter()
            jobs = await asyncio.gather(
                *(client.jobs.submit(COMMAND, preset=PRESET) for client in clients)
            )
            await wait_all(server, {job.id for job in jobs}, seen, changed)
            return time.perf_counter() - started


async def sustained(server: BenchServer, n: int, seconds: float) -> tuple[float, float, int]:
    """Accepted submissions per second, then seconds from the end of the submissions until
    the last one succeeded, and how many were refused."""
    accepted: set[str] = set()
    refused = 0
    async with succeeded_jobs(server) as (seen, changed):
        deadline = time.perf_counter() + seconds

        async def client_loop() -> None:
            nonlocal refused
            async with GliaClient(server.url, server.token) as client:
                while time.perf_counter() < deadline:
                    try:
                        job = await client.jobs.submit(COMMAND, preset=PRESET)
                    except GliaError:
                        refused += 1
                        continue
                    accepted.add(job.id)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(n)))
        ended = time.perf_counter()
        await wait_all(server, accepted, seen, changed)
        return len(accepted) / (ended - started), time.perf_counter() - ended, refused


async def add_preset(server: BenchServer) -> None:
    async with GliaClient(server.url, server.token) as client:
        cluster = (await client.clusters.list())[0].name
        await client.clusters.add_preset(cluster, PRESET, cpu=0.02, memory_mb=32)


@contextlib.contextmanager
def database(kind: str) -> Iterator[dict[str, str]]:
    if kind == "sqlite":
        yield {}
        return
    name = f"glia_bench_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        yield {"GLIA_DATABASE_URL": f"{base}/{name}"}
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database", default="sqlite,postgresql")
    args = parser.parse_args()
    for kind in args.database.split(","):
        with database(kind) as settings, glia_up(settings=settings) as server:
            asyncio.run(add_preset(server))
            asyncio.run(burst(server, 5))  # warm up
            burst_s = asyncio.run(burst(server, args.jobs))
            rate, drain_s, refused = asyncio.run(sustained(server, args.clients, args.seconds))
        base_burst_s = asyncio.run(spawn(args.jobs))
        base_rate = asyncio.run(spawn_sustained(args.clients, args.seconds))
        print(
            f"{kind}: {args.jobs} jobs by {args.jobs} clients at once, until all succeeded: "
            f"{burst_s * 1000:7.0f} ms   (spawning them: {base_burst_s * 1000:.0f} ms)"
        )
        print(
            f"{kind}: {args.clients} clients for {args.seconds:.0f} s: {rate:7.1f} accepted/s, "
            f"{refused} refused, all succeeded {drain_s:.1f} s after the last   "
            f"(spawning: {base_rate:.0f}/s)"
        )


if __name__ == "__main__":
    main()
