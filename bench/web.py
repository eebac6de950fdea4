"""The web UI's figures, in Debian's Chromium against a real `glia up`:

1. How long a job's status change takes to show on the jobs page (target ≤ 500 ms), beside
   how long it takes to reach an SDK client following `jobStatus` (the subscription alone).
   A status change is timed from the `at` the server records for it.
2. The first load of the jobs page with 1,000 jobs in the listing (target ≤ 2 s): from
   navigation to the table's rows on screen, beside the same page of the listing read with
   the SDK.

    python -m bench.web [--jobs 1000] [--changes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from playwright.sync_api import Page, sync_playwright

from bench.harness import glia_up, summary
from sdk import UNFINISHED_STATUSES, GliaClient, JobStatus

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
T = TypeVar("T")


def _sign_in(page: Page, web_url: str, password: str) -> None:
    page.goto(f"{web_url}/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/jobs/?$"))


async def _submit(url: str, token: str, command: list[str]) -> str:
    async with GliaClient(url, token) as client:
        return (await client.jobs.submit(command)).id


async def _finished_at(url: str, token: str, job_id: str) -> datetime:
    async with GliaClient(url, token) as client:
        async for job in client.jobs.watch_status(job_id):
            if job.status is JobStatus.SUCCEEDED:
                return job.history[-1].at
    raise RuntimeError(f"{job_id} did not succeed")


async def _sdk_delays(url: str, token: str, count: int) -> list[float]:
    delays = []
    async with GliaClient(url, token) as client:
        for _ in range(count):
            job = await client.jobs.submit(["sleep", "0.5"])
            async for update in client.jobs.watch_status(job.id):
                if update.status is JobStatus.SUCCEEDED:
                    delays.append(time.time() - update.history[-1].at.timestamp())
    return delays


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run SDK code beside Playwright, whose sync API holds this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _show_all(page: Page) -> None:
    page.get_by_label("Status").select_option("all")
    page.get_by_role("button", name="Filter").click()


def status_changes(page: Page, url: str, token: str, count: int) -> None:
    _show_all(page)  # the jobs page, following, finished jobs included
    delays = []
    for _ in range(count):
        job_id = _run(_submit(url, token, ["sleep", "0.5"]))
        row = page.locator(f"#job-{job_id} [data-status='succeeded']")
        row.wait_for(timeout=30_000)
        seen = time.time()
        delays.append(seen - _run(_finished_at(url, token, job_id)).timestamp())
    print(f"{'status change → jobs page':30s} {summary(delays)}")
    sdk = _run(_sdk_delays(url, token, count))
    print(f"{'status change → SDK (jobStatus)':30s} {summary(sdk)}")


async def _fill(url: str, token: str, jobs: int) -> None:
    async with GliaClient(url, token) as client:
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with gate:
                await client.jobs.submit(["true"], name=f"bulk-{i}")

        await asyncio.gather(*(one(i) for i in range(jobs)))
        # Measured once they have all ended: a thousand jobs starting would weigh on the load.
        for _ in range(1200):  # ten minutes at most
            if not (await client.jobs.list(list(UNFINISHED_STATUSES), first=1)).total_count:
                break
            await asyncio.sleep(0.5)


async def _sdk_page(url: str, token: str) -> float:
    async with GliaClient(url, token) as client:
        started = time.perf_counter()
        await client.jobs.list(None, first=25)
        return time.perf_counter() - started


def first_load(page: Page, web_url: str, url: str, token: str, runs: int) -> None:
    loads = []
    for _ in range(runs):
        page.goto("about:blank")
        started = time.perf_counter()
        page.goto(f"{web_url}/jobs")
        _show_all(page)
        page.locator("tbody tr").nth(24).wait_for()
        loads.append(time.perf_counter() - started)
    sdk = [_run(_sdk_page(url, token)) for _ in range(runs)]
    print(f"{'jobs page, first load':30s} {summary(loads)}")
    print(f"{'the same page through the SDK':30s} {summary(sdk)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    with glia_up(web=True) as server, sync_playwright() as playwright:
        assert server.web_url and server.log
        password = re.search(r"password \(shown once\): (\S+)", server.log.read_text())
        assert password, server.log.read_text()
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _sign_in(page, server.web_url, password.group(1))
        status_changes(page, server.url, server.token, args.changes)
        _run(_fill(server.url, server.token, args.jobs))
        first_load(page, server.web_url, server.url, server.token, runs=10)
        browser.close()


if __name__ == "__main__":
    main()
