"""Log fairness: big logs and many followers must not starve the server for others.

1. A job writes ~200 MB of output. One client reads all of it through the `jobLogs`
   subscription (and once more through `GET /api/jobs/{id}/log`) while another polls
   `/healthz` every 10 ms. Figures: the follower's MB/s beside `cat` of the same file (target
   ≥ 50 MB/s), and the /healthz p99 meanwhile (target ≤ 100 ms).
2. A job prints a timestamped line every 100 ms; 200, then 1,000 subscribers follow it (spread
   over users and connections within the per-user caps), selecting `lines` (`glia logs -t
   -f`), then `text` (`glia logs -f`, `glia run`). Figure: the p95 delay from print to
   delivery (target ≤ 100 ms at 1,000).

    python -m bench.log_fairness [--megabytes 200] [--subscribers 200,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import time
from pathlib import Path

import httpx

from bench.harness import glia_up, summary
from sdk import GliaClient, JobStatus

LINE = "x" * 99  # 100 bytes a line with its newline
TICKER = (
    "import time\n"
    "time.sleep(3)\n"
    "for _ in range({n}):\n"
    "    print(time.time_ns(), flush=True)\n"
    "    time.sleep(0.1)\n"
)


async def _wait_finished(client: GliaClient, job_id: str) -> None:
    async with contextlib.aclosing(client.jobs.watch_status(job_id)) as updates:
        async for job in updates:
            if job.status.is_finished:
                if job.status is not JobStatus.SUCCEEDED:
                    raise RuntimeError(f"the writer job ended {job.status}: {job}")
                return


async def _poll_health(url: str, stop: asyncio.Event) -> list[float]:
    samples = []
    async with httpx.AsyncClient() as http:
        while not stop.is_set():
            started = time.perf_counter()
            await http.get(f"{url}/healthz", timeout=30)
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
    return samples


async def write_big_log(url: str, token: str, megabytes: int) -> str:
    lines = megabytes * 1024 * 1024 // 100
    async with GliaClient(url, token, timeout=600) as client:
        job = await client.jobs.submit(
            ["python3", "-c", f"import sys\nsys.stdout.write(({LINE!r} + '\\n') * {lines})"],
            preset="cpu-small",
        )
        await _wait_finished(client, job.id)
        return job.id


def cat_rate(data_dir: Path, job_id: str) -> str:
    # The log's segments (output.N.log), in order: what the byte route serves.
    logs = sorted(
        data_dir.glob(f"clusters/*/jobs/{job_id}/output.*.log"),
        key=lambda path: int(path.name.split(".")[1]),
    )
    size_mb = sum(log.stat().st_size for log in logs) / 1e6
    started = time.perf_counter()
    subprocess.run(["cat", *map(str, logs)], stdout=subprocess.DEVNULL, check=True)
    took = time.perf_counter() - started
    rate = size_mb / took
    return f"{'cat of the same file':26s} {size_mb:7.1f} MB in {took:6.2f} s = {rate:7.1f} MB/s"


async def read_big_log(url: str, token: str, job_id: str) -> None:
    async with GliaClient(url, token, timeout=600) as client:
        ways = ("jobLogs { stream text }", "jobLogs { lines {...} }", "GET /api/jobs/{id}/log")
        for way in ways:
            stop = asyncio.Event()
            health = asyncio.create_task(_poll_health(url, stop))
            started = time.perf_counter()
            received = 0
            if way.startswith("GET"):
                async for chunk in client.jobs.read_log(job_id):
                    received += len(chunk)
            elif "text" in way:
                async for text in client.jobs.log_text(job_id, follow=False):
                    received += len(text.text)
            else:
                async for line in client.jobs.logs(job_id, follow=False):
                    received += len(line.text) + 1
            took = time.perf_counter() - started
            stop.set()
            health_samples = await health
            print(
                f"{way:26s} {received / 1e6:7.1f} MB in {took:6.2f} s = "
                f"{received / 1e6 / took:7.1f} MB/s; /healthz meanwhile {summary(health_samples)}"
            )


async def _follow(client: GliaClient, job_id: str, delays: list[float], way: str) -> None:
    if way == "text":
        async for chunk in client.jobs.log_text(job_id, follow=True):
            now = time.time_ns()
            delays.extend((now - int(line)) / 1e9 for line in chunk.text.splitlines())
    else:
        async for line in client.jobs.logs(job_id, follow=True):
            delays.append((time.time_ns() - int(line.text)) / 1e9)


async def many_followers(url: str, admin_token: str, count: int, way: str = "lines") -> None:
    """``count`` subscriptions, each user holding at most `per_user` over connections of
    `per_connection` (the server's default caps), all following their owner's ticker job,
    selecting ``way`` (``lines`` or ``text``)."""
    per_connection, per_user = 50, 100
    tokens = []
    async with GliaClient(url, admin_token) as admin:
        for i in range((count + per_user - 1) // per_user):
            name = f"follower{count}-{way}-{i}"
            _, password = await admin.auth.create_user(name)
            assert password is not None
            async with GliaClient(url, None) as login:
                token, _ = await login.auth.login(name, password)
            tokens.append(token)
    delays: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:
        for token in tokens:
            owner = await stack.enter_async_context(GliaClient(url, token))
            job = await owner.jobs.submit(
                ["python3", "-c", TICKER.format(n=50)], preset="cpu-small"
            )
            for _ in range(per_user // per_connection):
                client = await stack.enter_async_context(GliaClient(url, token))
                for _ in range(per_connection):
                    if len(tasks) < count:
                        tasks.append(asyncio.create_task(_follow(client, job.id, delays, way)))
        await asyncio.gather(*tasks)
    delays.sort()
    p95 = delays[int(0.95 * (len(delays) - 1))] * 1000 if delays else float("nan")
    print(
        f"{count:5d} followers ({way:5s}): {len(delays)} lines delivered, median "
        f"{statistics.median(delays) * 1000:6.1f} ms, p95 {p95:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--subscribers", default="200,1000")
    args = parser.parse_args()
    with glia_up() as server:
        job_id = asyncio.run(write_big_log(server.url, server.token, args.megabytes))
        asyncio.run(read_big_log(server.url, server.token, job_id))
        print(cat_rate(server.data_dir, job_id))
        for count in (int(n) for n in args.subscribers.split(",") if n):
            for way in ("lines", "text"):
                asyncio.run(many_followers(server.url, server.token, count, way))


if __name__ == "__main__":
    main()
