"""One controller per cluster however many API processes share the database: the leases,
the takeover, and a follower that survives an expired watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import ClusterCapacity, WatchExpired, WorkloadEvent, WorkloadWatch
from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.leases import Leases
from control_plane.platform import Platform
from control_plane.store.database import Database
from control_plane.store.models import ClusterRow, LeaseRow
from control_plane.workers import BackgroundTasks
from glia.auth import NewUser
from glia.clock import utcnow
from glia.clusters import ClusterStatus
from glia.errors import Unavailable
from glia.jobs import JobStatus, JobSubmission
from tests.factories import make_settings
from tests.polling import eventually


async def test_a_lease_has_one_holder_until_released(database: Database) -> None:
    first, second = Leases(database, holder="first"), Leases(database, holder="second")
    assert await first.acquire("work", ttl_s=30)
    assert not await second.acquire("work", ttl_s=30)
    assert await first.acquire("work", ttl_s=30)  # a renewal
    await second.release("work")  # not its lease: nothing happens
    assert not await second.acquire("work", ttl_s=30)
    await first.release("work")
    assert await second.acquire("work", ttl_s=30)


async def test_an_expired_lease_goes_to_the_next_taker(database: Database) -> None:
    first, second = Leases(database, holder="first"), Leases(database, holder="second")
    assert await first.acquire("work", ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await second.acquire("work", ttl_s=30)
    assert not await first.acquire("work", ttl_s=30)  # too late to renew


async def test_racing_takers_get_one_lease(database: Database) -> None:
    takers = [Leases(database, holder=f"p{i}") for i in range(8)]
    won = await asyncio.gather(*(taker.acquire("fresh", ttl_s=30) for taker in takers))
    assert sum(won) == 1


@asynccontextmanager
async def controller(
    tmp_path: Path, database_url: str, runtime: FakeRuntime | None = None
) -> AsyncIterator[BackgroundTasks]:
    settings = make_settings(
        tmp_path,
        database_url,
        reconcile_interval_s=0.1,
        cluster_lease_ttl_s=0.6,
        heartbeat_interval_s=0.1,
    )
    platform = await Platform.create(settings, runtime=runtime or FakeRuntime())
    tasks = BackgroundTasks(platform)
    try:
        await tasks.start()
        yield tasks
    finally:
        await tasks.stop()
        await platform.close()


async def _holder(database: Database) -> str | None:
    async with database.session() as session:
        return await session.scalar(
            select(LeaseRow.holder).where(LeaseRow.name == "cluster-controller:default")
        )


async def test_one_process_controls_a_cluster_and_another_takes_over(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    async with controller(tmp_path / "a", database_url) as first:
        assert first.controlled_clusters == {"default"}
        assert await _holder(database) == first.holder
        async with controller(tmp_path / "b", database_url) as second:
            await asyncio.sleep(0.5)  # several renewals and attempts
            assert second.controlled_clusters == frozenset()
            assert await _holder(database) == first.holder
            await first.stop()  # releases the lease at once

            async def taken_over() -> bool:
                return second.controlled_clusters == {"default"}

            await eventually(taken_over)
            assert await _holder(database) == second.holder


async def test_a_controller_that_loses_its_lease_stops(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    async with controller(tmp_path, database_url) as tasks:
        assert tasks.controlled_clusters == {"default"}
        async with database.session() as session:  # another process took it over
            await session.execute(
                update(LeaseRow).values(
                    holder="elsewhere", expires_at=utcnow() + timedelta(hours=1)
                )
            )
            await session.commit()

        async def stopped() -> bool:
            return tasks.controlled_clusters == frozenset()

        await eventually(stopped)
        assert await _holder(database) == "elsewhere"


class CutOffRuntime(FakeRuntime):
    """A runtime this process cannot reach once ``cut`` (its view alone: others can)."""

    cut = False

    async def capacity(self) -> ClusterCapacity:
        if self.cut:
            raise Unavailable("this process is cut off from the cluster")
        return await super().capacity()


async def test_only_the_controlling_process_records_a_clusters_heartbeat(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    """A process cut off from a gateway the controlling process reaches does not flip the
    cluster's status; once it controls the cluster, its view is the one recorded."""

    async def status() -> str | None:
        async with database.session() as session:
            return await session.scalar(
                select(ClusterRow.status).where(ClusterRow.name == "default")
            )

    cut_off = CutOffRuntime()
    async with controller(tmp_path / "a", database_url) as first:
        async with controller(tmp_path / "b", database_url, cut_off) as second:
            cut_off.cut = True
            await asyncio.sleep(1.0)  # ten heartbeats of each
            assert second.controlled_clusters == frozenset()
            assert await status() == ClusterStatus.DEPLOYED.value
            await first.stop()

            async def failed() -> bool:
                return await status() == ClusterStatus.FAILED.value

            await eventually(failed)
            assert second.controlled_clusters == {"default"}


class ExpiringGateway(EmbeddedGateway):
    """The embedded gateway, except that its first watch expires after one event."""

    def __init__(self, runtime: FakeRuntime) -> None:
        super().__init__("default", runtime)
        self.watches = 0

    @asynccontextmanager
    async def watch(self, *, after: str | None = None) -> AsyncIterator[WorkloadWatch]:
        self.watches += 1
        async with self.runtime.watch(after=after) as inner:
            yield _ExpiresAfterOne(inner) if self.watches == 1 else inner


class _ExpiresAfterOne:
    def __init__(self, inner: WorkloadWatch) -> None:
        self._inner = inner

    @property
    def cursor(self) -> str:
        return self._inner.cursor

    async def __aiter__(self) -> AsyncIterator[WorkloadEvent]:
        async for event in self._inner:
            yield event
            raise WatchExpired("fell behind")


async def test_an_expired_watch_is_replaced_and_nothing_is_missed(
    database_url: str, tmp_path: Path
) -> None:
    runtime = FakeRuntime()
    platform = await Platform.create(make_settings(tmp_path, database_url), runtime=runtime)
    gateway = ExpiringGateway(runtime)
    platform.gateways.add("default", gateway)
    try:
        ready = asyncio.Event()
        follower = asyncio.create_task(platform.reconciler.follow("default", ready=ready))
        await ready.wait()
        platform.scheduler.control("default")  # as the lease holder does (no workers here)
        async with platform.db.session() as session:
            user, _ = await platform.auth.create_user(session, NewUser(name="alice"))
            job = await platform.jobs.submit(session, user, JobSubmission(command=("true",)))

        async def status_is(wanted: JobStatus) -> bool:
            async with platform.db.session() as session:
                return (await platform.jobs.get(session, user, job.id)).status is wanted

        await eventually(lambda: status_is(JobStatus.RUNNING))
        assert gateway.watches == 2
        runtime.finish(job.id, 0)
        await eventually(lambda: status_is(JobStatus.SUCCEEDED))
        follower.cancel()
    finally:
        await platform.close()
