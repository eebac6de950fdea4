"""Background work of the control plane, in one place: started and drained by the lifespan.

Each cluster has a controller: the process that holds the cluster's lease follows the
cluster's state changes, reconciles it every interval and schedules its waiting jobs
(`control_plane.services.jobs.scheduler`); the others wait for the lease. Each
loop survives its own failures: an exception is logged and the loop goes on after a pause, so
one bad job or a cluster that does not answer never stops the others.

The heartbeat asks every cluster's gateway for its capacity each interval and records it
(`ClusterLifecycle.heartbeat`); while a gateway does not answer, its jobs are marked
GatewayUnreachable (their status kept), and once it answers the reconcile settles them. It
also starts a controller for each cluster registered at run time and stops that of each
cluster removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

from control_plane.leases import Leases
from control_plane.platform import Platform
from glia.errors import Unauthenticated, Unavailable

logger = logging.getLogger(__name__)

_RESTART_DELAY_S = 1.0
# How long shutting down waits for the background tasks it cancelled.
_STOP_WITHIN_S = 10.0
# How long `start` waits for the first reconcile of each cluster before serving anyway.
_FIRST_RECONCILE_S = 30.0


class LeaseLost(Exception):
    """Another process took the cluster's lease: stop controlling it."""


class BackgroundTasks:
    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._leases = Leases(platform.db)
        self._tasks: list[asyncio.Task[None]] = []
        self._controlled: set[str] = set()
        # Clusters whose control this process has announced in the log (not again on every
        # restart of their controller while their gateway is away).
        self._controlled_before: set[str] = set()
        # Each cluster's controller task, by cluster name (clusters come and go at run time).
        self._controllers: dict[str, asyncio.Task[None]] = {}
        # Clusters whose gateway did not answer the last heartbeat.
        self._unreachable: set[str] = set()

    @property
    def holder(self) -> str:
        """This process's name on the leases it holds."""
        return self._leases.holder

    @property
    def controlled_clusters(self) -> frozenset[str]:
        """The clusters this process controls now."""
        return frozenset(self._controlled)

    async def start(self) -> None:
        """Start every loop; return once each cluster is caught up (or is another process's),
        so jobs that ended or vanished while the control plane was down are settled first."""
        platform = self._platform
        settled: list[asyncio.Event] = []
        for name in platform.gateways.names():
            event = asyncio.Event()
            settled.append(event)
            self._start_controller(name, event)
        self._spawn("cluster heartbeats", self._forever("cluster heartbeats", self._heartbeats))
        self._spawn("acl changes", self._forever("acl changes", platform.acl.watch_changes))
        self._spawn(
            "token revocations",
            self._forever("token revocations", platform.auth.watch_revocations),
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FIRST_RECONCILE_S):
                await asyncio.gather(*(event.wait() for event in settled))

    async def stop(self) -> None:
        """Cancel every task and wait for them, cancelling again any that is still running
        half a second on: a task whose cancellation a library turned into another error
        (gql does, mid-connect) and went on must not hold the server's shutdown; after
        `_STOP_WITHIN_S` the stragglers are named in the log and left."""
        pending: set[asyncio.Future[None]] = {*self._tasks, *self._controllers.values()}
        deadline = asyncio.get_running_loop().time() + _STOP_WITHIN_S
        while pending:
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=0.5)
            if pending and asyncio.get_running_loop().time() > deadline:
                names = sorted(getattr(task, "get_name", lambda: "?")() for task in pending)
                logger.error("background tasks that did not stop: %s", ", ".join(names))
                break
        self._tasks.clear()
        self._controllers.clear()
        for name in list(self._controlled):
            with contextlib.suppress(Exception):
                await self._leases.release(self._lease_name(name))

    def _start_controller(self, cluster: str, settled: asyncio.Event | None = None) -> None:
        task = asyncio.ensure_future(
            self._control_cluster_forever(cluster, settled or asyncio.Event())
        )
        task.set_name(f"control cluster {cluster}")
        self._controllers[cluster] = task

    async def _stop_controller(self, cluster: str) -> None:
        task = self._controllers.pop(cluster)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._leases.release(self._lease_name(cluster))
        logger.info("cluster %s: no longer registered; its controller stopped", cluster)

    async def _heartbeats(self) -> None:
        """Each interval (at once after this process registers or removes a cluster): the
        clusters other processes registered or removed, every cluster's heartbeat, then a
        controller for each cluster registered since and none for each removed."""
        platform = self._platform
        changed = platform.lifecycle.registry_changed
        while True:
            changed.clear()
            await self._guarded("cluster registry", platform.lifecycle.sync_registry)
            for name in platform.gateways.names():
                await self._guarded(f"heartbeat of {name}", functools.partial(self._beat, name))
            registered = set(platform.gateways.names())
            for name in registered - self._controllers.keys():
                self._start_controller(name)
            for name in self._controllers.keys() - registered:
                await self._stop_controller(name)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(platform.settings.heartbeat_interval_s):
                    await changed.wait()

    async def _beat(self, cluster: str) -> None:
        platform = self._platform
        controlled = cluster in self._controlled
        if await platform.lifecycle.heartbeat(cluster, record=controlled):
            if cluster in self._unreachable:
                self._unreachable.discard(cluster)
                logger.info("cluster %s: its gateway answers again", cluster)
                if cluster in self._controlled:
                    await platform.reconciler.reconcile(cluster)  # settles its jobs now
            return
        if cluster not in platform.gateways:
            return  # removed meanwhile
        self._unreachable.add(cluster)
        if not controlled:
            return  # the process controlling it marks its jobs
        marked = await platform.reconciler.mark_unreachable(
            cluster, f"cluster {cluster}'s gateway does not answer; last known status shown"
        )
        if marked:
            logger.warning(
                "cluster %s: its gateway does not answer; %d jobs marked GatewayUnreachable",
                cluster,
                len(marked),
            )

    def _spawn(self, name: str, work: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(work))
        self._tasks[-1].set_name(name)

    async def _forever(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        while True:
            await self._guarded(name, run)
            await asyncio.sleep(_RESTART_DELAY_S)

    @staticmethod
    def _lease_name(cluster: str) -> str:
        return f"cluster-controller:{cluster}"

    async def _control_cluster_forever(self, cluster: str, settled: asyncio.Event) -> None:
        settings = self._platform.settings
        while True:
            try:
                held = await self._leases.acquire(
                    self._lease_name(cluster), ttl_s=settings.cluster_lease_ttl_s
                )
            except Exception:
                logger.exception("cluster %s: cannot take its lease", cluster)
                held = False
            if not held:
                settled.set()  # another process controls it: nothing to wait for here
                await asyncio.sleep(settings.reconcile_interval_s)
                continue
            if cluster not in self._controlled_before:
                logger.info("cluster %s: this process controls it", cluster)
                self._controlled_before.add(cluster)
            self._controlled.add(cluster)
            self._platform.scheduler.control(cluster)
            try:
                await self._control_cluster(cluster, settled)
            except* LeaseLost:
                logger.warning("cluster %s: lost its lease to another process", cluster)
                self._controlled_before.discard(cluster)
            except* (Unavailable, Unauthenticated) as unreachable:
                # Its gateway does not answer: the heartbeat marks its jobs and says so once
                # per outage; try again after a reconcile interval, without a traceback.
                logger.log(
                    logging.DEBUG if cluster in self._unreachable else logging.WARNING,
                    "cluster %s: its gateway does not answer (%s)",
                    cluster,
                    unreachable.exceptions[0],
                )
                await asyncio.sleep(settings.reconcile_interval_s)
            except* Exception:
                logger.exception("cluster %s: its controller failed; it starts again", cluster)
            finally:
                self._platform.scheduler.release(cluster)
                self._controlled.discard(cluster)
                settled.set()  # a cluster that fails to answer must not hold up serving
            await asyncio.sleep(_RESTART_DELAY_S)

    async def _control_cluster(self, cluster: str, settled: asyncio.Event) -> None:
        reconciler = self._platform.reconciler
        followed = asyncio.Event()

        async def follow() -> None:
            await reconciler.follow(cluster, ready=followed)
            raise ConnectionError(f"the watch of cluster {cluster} ended")  # gateway closed

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(follow())
            tasks.create_task(self._keep_lease(cluster))
            tasks.create_task(self._reconcile_periodically(cluster, followed, settled))
            tasks.create_task(self._schedule(cluster, followed))
            tasks.create_task(self._bill_periodically(cluster, followed))
            tasks.create_task(self._keep_telemetry(cluster))

    async def _schedule(self, cluster: str, followed: asyncio.Event) -> None:
        """Schedule the cluster's waiting jobs, once the first reconcile has settled what
        runs; a pass at once, then on every wake and at least every reconcile interval."""
        await followed.wait()
        scheduler = self._platform.scheduler
        scheduler.wake(cluster)
        await scheduler.run(cluster, interval_s=self._platform.settings.reconcile_interval_s)

    async def _bill_periodically(self, cluster: str, followed: asyncio.Event) -> None:
        """Charge the cluster's running jobs for their run time, cancel those of a spent
        balance, and delete the disks unused for their timeout, every credits interval."""
        await followed.wait()
        billing = self._platform.billing

        async def bill() -> None:
            await billing.charge(cluster)
            await billing.enforce(cluster)
            await self._platform.disks.collect_unused(cluster)

        while True:
            await self._guarded(f"billing {cluster}", bill)
            await asyncio.sleep(self._platform.settings.credits_interval_s)

    async def _keep_lease(self, cluster: str) -> None:
        """Renew the lease well before it expires; raise LeaseLost when another process has
        it (this one was too slow, or the database was away)."""
        ttl_s = self._platform.settings.cluster_lease_ttl_s
        while True:
            await asyncio.sleep(ttl_s / 3)
            if not await self._leases.acquire(self._lease_name(cluster), ttl_s=ttl_s):
                raise LeaseLost(cluster)

    async def _reconcile_periodically(
        self, cluster: str, followed: asyncio.Event, settled: asyncio.Event
    ) -> None:
        await followed.wait()  # the follower's first reconcile is done
        settled.set()
        while True:
            await asyncio.sleep(self._platform.settings.reconcile_interval_s)
            await self._guarded(
                f"reconcile {cluster}", lambda: self._platform.reconciler.reconcile(cluster)
            )

    async def _keep_telemetry(self, cluster: str) -> None:
        """Record the cluster's telemetry samples, and every compact interval fold those older
        than an hour into one-minute points and remove those past the retention."""
        telemetry, settings = self._platform.telemetry, self._platform.settings

        async def compact() -> None:
            await telemetry.compact(cluster)

        async def record() -> None:
            while True:
                await self._guarded(f"telemetry of {cluster}", lambda: telemetry.record(cluster))
                await asyncio.sleep(_RESTART_DELAY_S)

        recording = asyncio.create_task(record())
        try:
            while True:
                await self._guarded(f"telemetry compaction {cluster}", compact)
                await asyncio.sleep(settings.telemetry_compact_interval_s)
        finally:
            recording.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recording

    @staticmethod
    async def _guarded(name: str, run: Callable[[], Awaitable[None]]) -> None:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except (Unavailable, Unauthenticated) as exc:
            # A gateway that does not answer (or refuses this control plane's claims) is
            # the heartbeat's to report, once per outage; these loops retry every second.
            logger.debug("background task %r: %s", name, exc.message)
        except Exception:
            logger.exception("background task %r failed; it goes on", name)
