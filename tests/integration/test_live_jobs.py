"""`jobChanges`: a live listing of the jobs a caller may read, as the web UI's table uses it."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from cluster_gateway.runtimes.fake import FakeRuntime
from sdk import GliaClient, Job, JobStatus
from tests.factories import make_settings, serving_api
from tests.polling import eventually


def test_a_live_listing_sees_the_callers_jobs_change_and_nobody_elses(tmp_path: Path) -> None:
    with serving_api(make_settings(tmp_path), FakeRuntime()) as server:
        alice, bob = server.user("alice"), server.user("bob")

        async def watch() -> list[tuple[str, JobStatus]]:
            seen: list[Job] = []
            async with GliaClient(server.url, alice) as mine, GliaClient(server.url, bob) as other:

                async def follow() -> None:
                    async for job in mine.jobs.watch_changes():
                        seen.append(job)

                follower = asyncio.create_task(follow())
                await asyncio.sleep(0.5)  # subscribed before anything happens
                theirs = await other.jobs.submit(["echo", "theirs"])
                job = await mine.jobs.submit(["echo", "mine"])

                async def reached(status: JobStatus) -> None:
                    async def seen_it() -> bool:
                        return any(j.id == job.id and j.status is status for j in seen)

                    await eventually(seen_it, within=10)

                await reached(JobStatus.RUNNING)  # the fake cluster runs it until it is killed
                await mine.jobs.kill(job.id)
                await reached(JobStatus.CANCELLED)
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            assert theirs.id not in {j.id for j in seen}
            return [(j.id, j.status) for j in seen if j.id == job.id]

        statuses = [status for _, status in asyncio.run(watch())]
        assert statuses == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.CANCELLED]
