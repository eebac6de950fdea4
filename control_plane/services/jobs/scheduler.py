"""Admission: which waiting jobs a cluster starts, and when.

A submitted job waits in its cluster's queue (pending, no ``scheduled_at``) until the
scheduler hands it to the cluster. A scheduling pass reads the cluster's free capacity from
its gateway and the queue from the database, and walks the queue in order — priority (high,
normal, low), then submission — starting each job whose resources fit in what is free.

Anti-starvation: the first job of the walk that does not fit (the head of the queue)
*reserves* what it needs: its resources are taken off what is free for the jobs after it,
even though it cannot start yet. Later jobs may still start in what is left (small jobs
backfill around a big one), but never in what the head needs, so the head starts as soon as
enough of the running jobs end, whatever stream of small jobs keeps coming. A job that needs
more than the whole cluster has never reserves (it would block the queue for ever); it
waits, saying so, until an admin adds capacity or it times out.

Only the process that holds the cluster's lease (``control_plane.workers``) schedules it:
it runs a pass at each job end, each reconcile tick, each schedule-timeout deadline and each
submission (a submission in another process asks for one over the bus). Passes of one
cluster never overlap, and requests that come during a pass share the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cluster_gateway.gateway import WorkloadPhase, WorkloadState
from control_plane.events import EventBus
from control_plane.services.auth import user_from_row
from control_plane.services.clusters import ClustersService, GatewayRegistry
from control_plane.services.disks import DisksService
from control_plane.services.jobs.records import job_from_row, select_jobs, waiting
from control_plane.services.jobs.status import CHANGES_CHANNEL, JobStatusMachine
from control_plane.services.jobs.submission import JobSubmitter
from control_plane.services.quotas import QuotasService, Scope
from control_plane.store.database import Database
from control_plane.store.models import JobRow, JobStatusRow, UserRow
from glia.clock import utcnow
from glia.clusters import Cluster, Resources, fit_count, shortfall
from glia.errors import QuotaExceeded, Unavailable
from glia.jobs import Job, JobPriority, JobReason, JobStatus, RestartPolicy

logger = logging.getLogger(__name__)


# Waiting jobs at the front of a queue whose description follows what they lack.
DESCRIBED_AHEAD = 10
# Waiting jobs read at a time.
_SLICE = 25
# Jobs waiting for a seat that one pass tries to seat.
_SEATS_PER_PASS = 100
# How often at least a pass looks beyond the front of a full queue (see `Scheduler._walk`).
_LOOK_BEYOND_S = 30.0


def is_preempted_stopping(status: str, reason: str | None, scheduled_at: object) -> bool:
    """`preempted_stopping` of a row already read."""
    return (
        status == JobStatus.SUSPENDED.value
        and reason == JobReason.PREEMPTED.value
        and scheduled_at is not None
    )


def preempted_stopping() -> ColumnElement[bool]:
    """The condition of a job suspended for another whose workload may still be stopping:
    preempted and still handed to the cluster (`Scheduler.requeue` takes it back)."""
    return and_(
        JobRow.status == JobStatus.SUSPENDED.value,
        JobRow.reason == JobReason.PREEMPTED.value,
        JobRow.scheduled_at.is_not(None),
    )


def request_channel(cluster: str) -> str:
    """Where a process that does not control ``cluster`` asks its controller for a pass."""
    return f"scheduler.{cluster}"


@dataclass(frozen=True)
class QueuedJob:
    """A waiting job as the scheduler sees it."""

    id: str
    priority: int  # JobPriority.rank
    created_at: datetime
    need: Resources
    schedule_timeout_s: float | None = None
    # False for a preset without the scheduler: start at once or fail.
    may_wait: bool = True
    # What its status says now, so a pass rewrites only what changed.
    reason: str | None = None
    description: str | None = None
    # Preempted earlier: it waits to start again, suspended (its status says so already).
    suspended: bool = False
    # The disks it mounts: it starts only when it can hold them all.
    disks: tuple[str, ...] = ()

    @property
    def order(self) -> tuple[int, datetime, str]:
        return (-self.priority, self.created_at, self.id)


def _queued(row: Any, waits: dict[str, bool]) -> QueuedJob:
    return QueuedJob(
        id=row.id,
        priority=row.priority,
        created_at=row.created_at,
        need=Resources(cpu=row.cpu, memory_mb=row.memory_mb, gpu=row.gpu, gpu_model=row.gpu_model),
        schedule_timeout_s=row.schedule_timeout_s,
        may_wait=waits.get(row.preset, True),
        reason=row.reason,
        description=row.status_description,
        suspended=row.status == JobStatus.SUSPENDED.value,
        disks=tuple(volume["ref"] for volume in row.volumes or () if volume.get("kind") == "disk"),
    )


@dataclass(frozen=True)
class RunningJob:
    """A running preemptible job, as the planner sees what it could suspend."""

    id: str
    priority: int
    started_at: datetime
    need: Resources


@dataclass
class Plan:
    """What one pass decides: jobs to start, jobs that wait (with what they lack), jobs that
    waited too long."""

    start: list[QueuedJob] = field(default_factory=list)
    # In queue order. Its place is not in the description: it is counted when the job is
    # read (`records.queue_position`), so a start does not rewrite every waiting job.
    wait: dict[str, str] = field(default_factory=dict)
    timed_out: dict[str, str] = field(default_factory=dict)
    # Running jobs to suspend (each with why), so that the high-priority job at the head
    # of the queue fits once they have stopped.
    preempt: dict[str, str] = field(default_factory=dict)
    # The earliest schedule-timeout deadline among the jobs left waiting.
    next_deadline: datetime | None = None


def _minus(free: Resources, need: Resources) -> Resources:
    return Resources(
        cpu=free.cpu - need.cpu, memory_mb=free.memory_mb - need.memory_mb, gpu=free.gpu - need.gpu
    )


def _plus(free: Resources, more: Resources) -> Resources:
    return Resources(
        cpu=free.cpu + more.cpu, memory_mb=free.memory_mb + more.memory_mb, gpu=free.gpu + more.gpu
    )


NOTHING = Resources(cpu=0, memory_mb=0)


class Planner:
    """The decisions of one pass, fed the queue in order, one job at a time."""

    def __init__(
        self,
        *,
        free: Resources,
        total: Resources,
        gpu_model: str | None,
        now: datetime,
        preemptible: Sequence[RunningJob] = (),
        stopping: Resources = NOTHING,
    ) -> None:
        self.free = free
        self._total = total
        self._gpu_model = gpu_model
        self._now = now
        self._reserved = False
        # Running jobs a high-priority head may suspend, the cheapest to stop first: the
        # lowest priority, then the latest started (the least work to do again).
        self._preemptible = sorted(
            preemptible, key=lambda j: (j.priority, -j.started_at.timestamp(), j.id)
        )
        # What suspended jobs still hold while they stop: free once they have.
        self._stopping = stopping
        self.result = Plan()

    def full(self, smallest: Resources) -> bool:
        """Whether a job of ``smallest``'s cpu and memory no longer fits in what is left:
        no job of the cluster's presets can start in this pass any more."""
        return fit_count(smallest.model_copy(update={"gpu": 0}), self.free) == 0

    def feed(self, job: QueuedJob) -> None:
        result, gpu_model = self.result, self._gpu_model
        deadline = None
        if job.schedule_timeout_s is not None and not job.suspended:
            deadline = job.created_at + timedelta(seconds=job.schedule_timeout_s)
            if self._now >= deadline:
                result.timed_out[job.id] = (
                    f"could not start within its schedule timeout of {job.schedule_timeout_s:g} s"
                )
                return
        if fit_count(job.need, self.free, gpu_model) >= 1:
            result.start.append(job)
            self.free = _minus(self.free, job.need)
            return
        if not job.may_wait:
            lacking = "; ".join(shortfall(job.need, self.free, gpu_model))
            result.timed_out[job.id] = (
                f"its preset does not wait for room, and the cluster lacks {lacking}"
            )
            return
        ever = fit_count(job.need, self._total, gpu_model) >= 1
        lacking = "; ".join(shortfall(job.need, self.free if ever else self._total, gpu_model))
        if not ever:
            result.wait[job.id] = f"needs more than the cluster has in all: {lacking}"
        elif not self._reserved and (waits := self._make_room(job)) is not None:
            self._reserved = True
            result.wait[job.id] = waits
            self.free = _minus(self.free, job.need)
        elif not self._reserved:
            # The head of the queue: what it needs is kept for it from now on.
            self._reserved = True
            result.wait[job.id] = f"waits for {lacking}; first in line, room is kept for it"
            self.free = _minus(self.free, job.need)
        else:
            result.wait[job.id] = f"waits for {lacking}, beside the room kept for the first in line"
        if deadline is not None and (
            result.next_deadline is None or deadline < result.next_deadline
        ):
            result.next_deadline = deadline

    def _make_room(self, job: QueuedJob) -> str | None:
        """For the head of the queue: why it waits when room is on its way — jobs suspended
        earlier are stopping, or (a high-priority job) running preemptible jobs of lower
        priority are suspended for it now; None when neither makes it fit."""
        coming = _plus(self.free, self._stopping)
        if self._stopping != NOTHING and fit_count(job.need, coming, self._gpu_model) >= 1:
            return "waits for preempted jobs to stop; first in line, room is kept for it"
        if job.priority < JobPriority.HIGH.rank:
            return None
        chosen: list[RunningJob] = []
        for victim in self._preemptible:
            if victim.priority >= job.priority:
                continue
            chosen.append(victim)
            coming = _plus(coming, victim.need)
            if fit_count(job.need, coming, self._gpu_model) >= 1:
                break
        else:
            return None  # even all of them would not make room
        for victim in chosen:
            self.result.preempt[victim.id] = (
                f"preempted for {job.id} (high priority); it starts again when room returns"
            )
            self._stopping = _plus(self._stopping, victim.need)
        taken = {victim.id for victim in chosen}
        self._preemptible = [j for j in self._preemptible if j.id not in taken]
        return (
            f"waits for {len(chosen)} preempted job{'s' if len(chosen) > 1 else ''} to stop; "
            "first in line, room is kept for it"
        )


def plan(
    queue: Sequence[QueuedJob],
    *,
    free: Resources,
    total: Resources,
    gpu_model: str | None,
    now: datetime,
    preemptible: Sequence[RunningJob] = (),
    stopping: Resources = NOTHING,
) -> Plan:
    """Decide a pass over ``queue`` (in any order: it is sorted here). Pure, for tests."""
    planner = Planner(
        free=free,
        total=total,
        gpu_model=gpu_model,
        now=now,
        preemptible=preemptible,
        stopping=stopping,
    )
    for job in sorted(queue, key=lambda j: j.order):
        planner.feed(job)
    return planner.result


# Statuses whose arrival frees room on a cluster.
_ROOM_FREED = frozenset(
    {JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value}
)


@dataclass
class _ClusterState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    requested: int = 0  # requests made
    served: int = 0  # requests a finished pass started after
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Jobs may have joined the queue since a pass last looked beyond its front.
    joined: bool = True
    # When a pass must look beyond the front again (a schedule timeout there, or the
    # periodic look).
    look_beyond_at: datetime | None = None
    # Jobs may wait for a seat: a pass looks for them while it finds some, after a
    # submission that waits for one, and on every periodic pass.
    seat_waiters: bool = True
    # The controller's loop (`Scheduler.run`) runs here: requests wake it.
    looping: bool = False


class Scheduler:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        clusters: ClustersService,
        gateways: GatewayRegistry,
        status: JobStatusMachine,
        submitter: JobSubmitter,
        quotas: QuotasService,
        disks: DisksService,
        kill_grace_s: float = 10.0,
    ) -> None:
        self._db = db
        self._quotas = quotas
        self._kill_grace_s = kill_grace_s
        self._disks = disks
        self._bus = bus
        self._clusters = clusters
        self._gateways = gateways
        self._status = status
        self._submitter = submitter
        self._controlled: set[str] = set()
        self._states: dict[str, _ClusterState] = {}
        self._deadlines: dict[str, datetime] = {}
        # The end of each job's workload already restarted (job id → finished_at): the watch
        # and a reconcile may both report one end.
        self._restarted: dict[str, datetime | None] = {}

    def _state(self, cluster: str) -> _ClusterState:
        return self._states.setdefault(cluster, _ClusterState())

    # --- who schedules ----------------------------------------------------------------------

    def control(self, cluster: str) -> None:
        """This process holds ``cluster``'s lease: it schedules it from now on."""
        self._controlled.add(cluster)

    def release(self, cluster: str) -> None:
        self._controlled.discard(cluster)

    async def request(self, cluster: str, *, seat_wait: bool = False) -> None:
        """Ask for a pass: run it here (and wait for it) where this process controls the
        cluster, else ask the controller over the bus. ``seat_wait``: a job waiting for a
        seat joined (a pass then looks for such jobs again)."""
        state = self._state(cluster)
        state.joined = True
        state.seat_waiters = state.seat_waiters or seat_wait
        if cluster in self._controlled and state.looping:
            # The controller's loop runs the pass: a submission does not wait for it, and
            # the jobs that join while a pass runs are all taken by the next one.
            state.wake.set()
        elif cluster in self._controlled:
            try:
                await self.schedule(cluster)
            except Unavailable as exc:
                # The job is stored and waits in the queue; the pass after its gateway
                # answers again hands it over (the heartbeat reports the cluster meanwhile).
                logger.warning("scheduling cluster %s: %s", cluster, exc.message)
        else:
            message = {"cluster": cluster, "seat_wait": seat_wait}
            await self._bus.publish(request_channel(cluster), message)

    def wake(self, cluster: str) -> None:
        """Ask for a pass soon, without waiting for it (a job ended)."""
        self._state(cluster).wake.set()

    async def run(self, cluster: str, *, interval_s: float) -> None:
        """The controller's loop: a pass when woken, at the next schedule timeout, and at
        least every ``interval_s``; requests from other processes wake it."""
        state = self._state(cluster)

        async def listen() -> None:
            async with self._bus.subscribe(request_channel(cluster)) as requests:
                async for message in requests:
                    state.joined = True
                    state.seat_waiters = state.seat_waiters or bool(message.get("seat_wait"))
                    state.wake.set()

        async def ends() -> None:
            # A job that ends anywhere (here, or killed through another process) frees room.
            async with self._bus.subscribe(CHANGES_CHANNEL) as changes:
                async for message in changes:
                    if message.get("status") in _ROOM_FREED:
                        state.wake.set()

        listener = asyncio.gather(
            asyncio.create_task(listen(), name=f"scheduler requests {cluster}"),
            asyncio.create_task(ends(), name=f"scheduler job ends {cluster}"),
        )
        state.looping = True
        try:
            while True:
                timeout = interval_s
                deadline = self._deadlines.get(cluster)
                if deadline is not None:
                    timeout = min(timeout, max(0.0, (deadline - utcnow()).total_seconds()))
                try:
                    async with asyncio.timeout(timeout + 0.01):
                        await state.wake.wait()
                except TimeoutError:
                    state.seat_waiters = True  # the periodic pass: a seat may have freed
                state.wake.clear()
                try:
                    await self.schedule(cluster)
                except asyncio.CancelledError:
                    raise
                except Unavailable as exc:
                    # Its gateway does not answer: the heartbeat reports it (once per
                    # outage); a pass a second would only repeat it.
                    logger.debug("scheduling cluster %s: %s", cluster, exc.message)
                except Exception:
                    logger.exception("scheduling cluster %s failed; it goes on", cluster)
        finally:
            state.looping = False
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    # --- restarts ---------------------------------------------------------------------------

    async def restart_if_due(self, cluster: str, state: WorkloadState) -> bool:
        """Start an ended workload again where its job's restart policy says so: the job
        stays running, counts the restart and records it in its history. True when the end
        is handled so (the caller then leaves the job's status alone).

        The workload is forgotten (its output with it) and started again under the same job
        id, within the cluster's scheduling lock, so no pass gives its room away between."""
        if state.phase is not WorkloadPhase.EXITED:
            return False
        # Under the lock: the watch and a reconcile may report the same end at once, and
        # only one of them may count it.
        async with self._state(cluster).lock:
            return await self._restart_locked(cluster, state)

    async def _restart_locked(self, cluster: str, state: WorkloadState) -> bool:
        if state.job_id in self._restarted and self._restarted[state.job_id] == state.finished_at:
            return True  # this end was restarted already
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(
                        JobRow.status,
                        JobRow.restart_policy,
                        JobRow.restart_count,
                        JobRow.life_span_s,
                        JobRow.started_at,
                    ).where(JobRow.id == state.job_id)
                )
            ).first()
        if row is None or row.status not in (JobStatus.PENDING.value, JobStatus.RUNNING.value):
            return False
        if not RestartPolicy(row.restart_policy).restarts(state.reason, state.exit_code):
            return False
        count = row.restart_count + 1
        how = f"exit code {state.exit_code}" if state.exit_code is not None else "no exit code"
        description = f"ended ({state.reason or 'exited'}, {how}); restart {count}"
        async with self._db.session() as session:
            if row.status == JobStatus.PENDING.value:  # it ran and ended between two looks
                await self._status.transition(
                    session, state.job_id, JobStatus.RUNNING, reason=None, at=state.started_at
                )
            counted = await session.scalar(
                update(JobRow)
                .where(
                    JobRow.id == state.job_id,
                    JobRow.status == JobStatus.RUNNING.value,
                    JobRow.restart_count == row.restart_count,
                )
                .values(
                    restart_count=count,
                    reason=JobReason.RESTARTED.value,
                    status_description=description,
                )
                .returning(JobRow.id)
                .execution_options(synchronize_session=False)
            )
            if counted is None:  # another writer moved it (a kill, or this very restart)
                await session.rollback()
                return True
            await session.execute(
                insert(JobStatusRow).values(
                    job_id=state.job_id,
                    status=JobStatus.RUNNING.value,
                    reason=JobReason.RESTARTED.value,
                    description=description,
                    exit_code=state.exit_code,
                    at=state.finished_at or utcnow(),
                )
            )
            await session.commit()
            [(job, uid)] = await self._jobs(session, [state.job_id])
        self._restarted[state.job_id] = state.finished_at
        await self._status.announce(state.job_id, JobStatus.RUNNING)
        if job.life_span_s is not None and row.started_at is not None:
            # The life span counts from the first start, not from each.
            used = (utcnow() - row.started_at).total_seconds()
            job = job.model_copy(update={"life_span_s": max(1.0, job.life_span_s - used)})
        gateway = self._gateways.get(cluster)
        await gateway.forget(state.job_id)
        await self._submitter.start_workload(job, uid)
        return True

    # --- passes -----------------------------------------------------------------------------

    async def schedule(self, cluster: str) -> Plan | None:
        """Run a pass, or share one: a pass that starts after this call serves it. Returns
        the plan of the pass this call ran itself (None when it shared another's)."""
        state = self._state(cluster)
        state.requested += 1
        ticket = state.requested
        async with state.lock:
            if state.served >= ticket:
                return None
            state.served = state.requested
            return await self._pass(cluster)

    async def _seat_waiting(self, cluster: Cluster) -> None:
        """Give seats to the cluster's jobs that wait for one, in queue order, while their
        quotas have room (`QuotasService.take_seat`, one transaction each). A scope found
        full is not tried again in this pass; a job's seat puts it in the queue below."""
        state = self._state(cluster.name)
        if not state.seat_waiters:
            return
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(JobRow.id, JobRow.org, JobRow.owner_id, UserRow.name)
                    .join(UserRow, UserRow.id == JobRow.owner_id)
                    .where(
                        JobRow.cluster_id == cluster.id,
                        JobRow.status == JobStatus.PENDING.value,
                        JobRow.seat_wait.is_(True),
                    )
                    .order_by(JobRow.priority.desc(), JobRow.created_at, JobRow.id)
                    .limit(_SEATS_PER_PASS)
                )
            ).all()
        state.seat_waiters = bool(rows)
        full: set[tuple[str, str]] = set()
        for row in rows:
            if (row.org, row.owner_id) in full:
                continue
            scope = Scope(
                org=row.org,
                cluster=cluster.name,
                cluster_id=cluster.id,
                user=row.name,
                user_id=row.owner_id,
            )
            async with self._db.session() as session:
                try:
                    why = await self._quotas.take_seat(session, scope, wait=True)
                except QuotaExceeded:  # out of credits: `Billing.enforce` cancels it
                    why = "out of credits"
                if why is not None:
                    await session.rollback()
                    full.add((row.org, row.owner_id))
                    continue
                await session.execute(
                    update(JobRow)
                    .where(
                        JobRow.id == row.id,
                        JobRow.status == JobStatus.PENDING.value,
                        JobRow.seat_wait.is_(True),
                    )
                    .values(
                        seat_wait=False,
                        reason=JobReason.CREATING.value,
                        status_description="got a seat",
                    )
                    .execution_options(synchronize_session=False)
                )
                await session.commit()

    async def _pass(self, cluster_name: str) -> Plan:
        gateway = self._gateways.get(cluster_name)
        capacity = await gateway.capacity()
        now = utcnow()
        async with self._db.session() as session:
            cluster = await self._clusters.get(session, cluster_name)
            preemptible, stopping = await self._preemption(session, cluster)
        planner = Planner(
            free=capacity.free or capacity,
            total=capacity,
            gpu_model=capacity.gpu_model,
            now=now,
            preemptible=preemptible,
            stopping=stopping,
        )
        await self._seat_waiting(cluster)
        async with self._db.session() as session:
            queue = await self._walk(session, cluster, planner, self._state(cluster_name))
            decided = planner.result
            if decided.next_deadline is None:
                self._deadlines.pop(cluster_name, None)
            else:
                self._deadlines[cluster_name] = decided.next_deadline
            started, disk_waits = await self._claim(session, decided.start, now)
            described = await self._describe(session, decided.wait, queue, now)
            described += await self._wait_for_disks(session, disk_waits, queue, now)
            await session.commit()
            for job_id, description in decided.timed_out.items():
                await self._status.transition(
                    session,
                    job_id,
                    JobStatus.FAILED,
                    reason=JobReason.SCHEDULING_TIMEOUT,
                    description=description,
                )
            for job_id, description in decided.preempt.items():
                if await self._status.transition(
                    session,
                    job_id,
                    JobStatus.SUSPENDED,
                    reason=JobReason.PREEMPTED,
                    description=description,
                ):
                    # Its workload stops as a kill stops it; once it has, `requeue` puts the
                    # job back in the queue to start again from the beginning.
                    await gateway.stop(job_id, grace_s=self._kill_grace_s)
            jobs = await self._jobs(session, started)
        for job_id in described:
            await self._status.announce(job_id, JobStatus.PENDING)
        resumed = [job.id for job, _ in jobs if job.status is JobStatus.SUSPENDED]
        # A preempted job starts again under its id: the ended workload goes first.
        await asyncio.gather(*(gateway.forget(job_id) for job_id in resumed))
        # Each start takes its resources on the cluster before it returns.
        await asyncio.gather(*(self._submitter.start_workload(job, uid) for job, uid in jobs))
        return decided

    async def _preemption(
        self, session: AsyncSession, cluster: Cluster
    ) -> tuple[list[RunningJob], Resources]:
        """The cluster's running preemptible jobs, and what the suspended jobs that are
        still stopping hold (suspended and still handed to the cluster); nothing to read
        unless a high-priority job waits or a suspended one stops (one indexed probe)."""
        needed = await session.scalar(
            select(JobRow.id)
            .where(
                JobRow.cluster_id == cluster.id,
                or_(
                    and_(waiting(), JobRow.priority >= JobPriority.HIGH.rank),
                    preempted_stopping(),
                ),
            )
            .limit(1)
        )
        if needed is None:
            return [], NOTHING
        rows = await session.execute(
            select(
                JobRow.id,
                JobRow.status,
                JobRow.priority,
                JobRow.started_at,
                JobRow.cpu,
                JobRow.memory_mb,
                JobRow.gpu,
            ).where(
                JobRow.cluster_id == cluster.id,
                or_(
                    and_(
                        JobRow.status == JobStatus.RUNNING.value,
                        JobRow.preemptible.is_(True),
                    ),
                    preempted_stopping(),
                ),
            )
        )
        running: list[RunningJob] = []
        stopping = NOTHING
        for row in rows:
            need = Resources(cpu=row.cpu, memory_mb=row.memory_mb, gpu=row.gpu)
            if row.status == JobStatus.SUSPENDED.value:
                stopping = _plus(stopping, need)
            else:
                started = row.started_at or utcnow()
                running.append(RunningJob(row.id, row.priority, started, need))
        return running, stopping

    async def requeue(self, cluster: str, job_id: str) -> None:
        """A suspended job's workload has stopped: the job waits in the queue again (it
        starts from the beginning when room returns), and the room it left is scheduled."""
        async with self._db.session() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, preempted_stopping())
                .values(scheduled_at=None)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        self._state(cluster).joined = True
        self.wake(cluster)

    async def _walk(
        self, session: AsyncSession, cluster: Cluster, planner: Planner, state: _ClusterState
    ) -> dict[str, QueuedJob]:
        """Feed the planner the cluster's queue in order, a slice at a time, until no job of
        its presets can start any more and the first `DESCRIBED_AHEAD` are seen. Beyond that
        front only two kinds of job need a look — those waiting for the first time (to say
        why) and those with a schedule timeout — and only when jobs joined the queue since
        the last look, a timeout there is due, or `_LOOK_BEYOND_S` passed. So a pass reads
        one slice, not a queue of thousands, when the cluster is full."""
        waits = {p.name: p.scheduler_enabled for p in cluster.presets}
        smallest = Resources(
            cpu=min((p.resources.cpu for p in cluster.presets), default=0.0),
            memory_mb=min((p.resources.memory_mb for p in cluster.presets), default=0),
        )
        queue: dict[str, QueuedJob] = {}
        columns = select(
            JobRow.id,
            JobRow.priority,
            JobRow.created_at,
            JobRow.cpu,
            JobRow.memory_mb,
            JobRow.gpu,
            JobRow.gpu_model,
            JobRow.schedule_timeout_s,
            JobRow.preset,
            JobRow.reason,
            JobRow.status_description,
            JobRow.status,
            JobRow.volumes,
        ).where(JobRow.cluster_id == cluster.id, waiting())
        ordered = columns.order_by(JobRow.priority.desc(), JobRow.created_at, JobRow.id)
        after: ColumnElement[bool] | None = None
        while True:
            rows = (
                await session.execute(
                    (ordered if after is None else ordered.where(after)).limit(_SLICE)
                )
            ).all()
            for row in rows:
                queue[row.id] = job = _queued(row, waits)
                planner.feed(job)
            if len(rows) < _SLICE:
                state.joined, state.look_beyond_at = False, None
                return queue
            last = rows[-1]
            after = or_(
                JobRow.priority < last.priority,
                and_(
                    JobRow.priority == last.priority,
                    or_(
                        JobRow.created_at > last.created_at,
                        and_(JobRow.created_at == last.created_at, JobRow.id > last.id),
                    ),
                ),
            )
            if len(queue) >= DESCRIBED_AHEAD and planner.full(smallest):
                break
        now = utcnow()
        if not state.joined and state.look_beyond_at is not None and now < state.look_beyond_at:
            return queue
        look_again = now + timedelta(seconds=_LOOK_BEYOND_S)
        beyond = await session.execute(
            ordered.where(
                after,
                or_(
                    JobRow.reason != JobReason.SCHEDULING.value,
                    JobRow.schedule_timeout_s.is_not(None),
                ),
            )
        )
        for row in beyond:
            queue[row.id] = job = _queued(row, waits)
            planner.feed(job)
            if job.schedule_timeout_s is not None:
                due = job.created_at + timedelta(seconds=job.schedule_timeout_s)
                look_again = min(look_again, due)
        state.joined, state.look_beyond_at = False, look_again
        return queue

    async def _claim(
        self, session: AsyncSession, jobs: list[QueuedJob], now: datetime
    ) -> tuple[list[str], dict[str, str]]:
        """Mark jobs handed to the cluster, each unless it stopped waiting meanwhile (killed)
        or one of its disks is held by another job: the ones claimed, and for each job left
        waiting for a disk, the disk."""
        claimed: list[str] = []
        disk_waits: dict[str, str] = {}
        for job in jobs:
            if job.disks:
                busy = await self._disks.hold(session, job.id, job.disks)
                if busy is not None:
                    await self._disks.release(session, job.id)
                    disk_waits[job.id] = busy
                    continue
            found = await session.scalar(
                update(JobRow)
                .where(JobRow.id == job.id, waiting())
                .values(
                    scheduled_at=now,
                    reason=JobReason.CREATING.value,
                    # A preempted job stays suspended until its workload runs again.
                    status_description=case(
                        (
                            JobRow.status == JobStatus.SUSPENDED.value,
                            "starting again after its preemption",
                        ),
                        else_=None,
                    ),
                )
                .returning(JobRow.id)
                .execution_options(synchronize_session=False)
            )
            if found is not None:
                claimed.append(job.id)
            elif job.disks:
                await self._disks.release(session, job.id)
        return claimed, disk_waits

    async def _wait_for_disks(
        self,
        session: AsyncSession,
        disk_waits: dict[str, str],
        queue: dict[str, QueuedJob],
        now: datetime,
    ) -> list[str]:
        """Say which disk each job waits for (reason DiskUnavailable), in the caller's
        transaction; the jobs whose status changed, to announce once committed."""
        changed: list[str] = []
        for job_id, disk_id in disk_waits.items():
            job = queue[job_id]
            description = f"waits for disk {disk_id}, which another job holds"
            if job.reason == JobReason.DISK_UNAVAILABLE.value and job.description == description:
                continue
            await session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, waiting())
                .values(reason=JobReason.DISK_UNAVAILABLE.value, status_description=description)
                .execution_options(synchronize_session=False)
            )
            if job.suspended:
                continue  # it says Preempted in its history already
            await session.execute(
                insert(JobStatusRow).values(
                    job_id=job_id,
                    status=JobStatus.PENDING.value,
                    reason=JobReason.DISK_UNAVAILABLE.value,
                    description=description,
                    at=now,
                )
            )
            changed.append(job_id)
        return changed

    async def _describe(
        self,
        session: AsyncSession,
        waits: dict[str, str],
        queue: dict[str, QueuedJob],
        now: datetime,
    ) -> list[str]:
        """Say why each waiting job waits (in the caller's transaction): a job that starts
        waiting gets its description and a history entry (pending, Scheduling), and is
        returned to be announced once committed; after that, only the first
        `DESCRIBED_AHEAD` of the queue have theirs rewritten when what they lack changes, so a
        pass writes a bounded number of rows however long the queue."""
        first: list[str] = []
        by_description: dict[str, list[str]] = {}  # one UPDATE for the jobs of each
        for place, (job_id, description) in enumerate(waits.items()):
            job = queue[job_id]
            if job.suspended:
                continue  # suspended, reason Preempted: its status says why already
            if job.reason == JobReason.SCHEDULING.value and (
                job.description == description or place >= DESCRIBED_AHEAD
            ):
                continue
            by_description.setdefault(description, []).append(job_id)
            if job.reason != JobReason.SCHEDULING.value:
                first.append(job_id)
        for description, job_ids in by_description.items():
            for start in range(0, len(job_ids), _SLICE * 20):
                await session.execute(
                    update(JobRow)
                    .where(JobRow.id.in_(job_ids[start : start + _SLICE * 20]), waiting())
                    .values(reason=JobReason.SCHEDULING.value, status_description=description)
                    .execution_options(synchronize_session=False)
                )
        if first:
            await session.execute(
                insert(JobStatusRow),
                [
                    {
                        "job_id": job_id,
                        "status": JobStatus.PENDING.value,
                        "reason": JobReason.SCHEDULING.value,
                        "description": waits[job_id],
                        "at": now,
                    }
                    for job_id in first
                ],
            )
        return first

    async def _jobs(
        self, session: AsyncSession, job_ids: list[str]
    ) -> list[tuple[Job, int | None]]:
        """The jobs to start, with the uid each runs as."""
        if not job_ids:
            return []
        rows = await session.execute(select_jobs(with_history=False).where(JobRow.id.in_(job_ids)))
        found: list[tuple[Job, int | None]] = []
        for row, owner, cluster in rows:
            job = job_from_row(row, user_from_row(owner), cluster, with_history=False)
            found.append((job, row.uid))
        return found
