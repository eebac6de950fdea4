"""Jobs' telemetry: live samples from the cluster, and the history the control plane keeps.

- `live` relays a job's samples from its gateway to a caller who may read the job.
- `record` (run by the cluster's controller) follows every running job's samples from the
  gateway and writes them in batches every ``flush_interval_s``; what waits to be written is
  bounded (``MAX_PENDING``, the oldest dropped past it).
- `compact` (the controller's periodic step) folds samples older than an hour into one-minute
  points and removes points older than the retention.
- `history` answers a job's points between two times, at most ``MAX_HISTORY_POINTS`` of
  them: the step grows with the range.

Every path keeps at most one sample per job a second (`MIN_GAP`), whatever a gateway sends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.clusters import GatewayRegistry
from control_plane.services.jobs import JobsService
from control_plane.store.database import Database
from control_plane.store.telemetry import MINUTE, RAW, TelemetryRow
from glia.auth import User
from glia.clock import utcnow
from glia.errors import BadInput, NotFound
from glia.jobs import Job, JobStatus
from glia.telemetry import (
    MAX_HISTORY_POINTS,
    MINUTE_S,
    RAW_WINDOW_S,
    TelemetryHistory,
    TelemetryPoint,
    TelemetrySample,
)

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Samples of one job closer than this to the one before are dropped: one a second at most
# (a little less than a second, for a sampler's jitter).
MIN_GAP = timedelta(seconds=0.9)
# Samples waiting to be written, and rows folded per transaction when compacting.
MAX_PENDING = 50_000
# A follower of a job its cluster reports no workload for, though it runs, looks again after.
RECHECK_S = 1.0
COMPACT_BATCH = 10_000


def to_ms(time: datetime) -> int:
    return (time - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class _Gaps:
    """The last kept sample's time of each job, to keep one a second at most."""

    def __init__(self) -> None:
        self._last: dict[str, datetime] = {}

    def keep(self, sample: TelemetrySample) -> bool:
        last = self._last.get(sample.job_id)
        if last is not None and sample.time - last < MIN_GAP:
            return False
        self._last[sample.job_id] = sample.time
        return True

    def __len__(self) -> int:
        return len(self._last)

    def forget_except(self, job_ids: Iterable[str]) -> None:
        keep = set(job_ids)
        self._last = {job_id: t for job_id, t in self._last.items() if job_id in keep}


@dataclass
class _Point:
    """Samples of one job and minute being merged: means with their counts, maxima."""

    samples: int = 0
    cpu_sum: float = 0.0
    memory: int = 0
    gpu_samples: int = 0
    gpu_sum: float = 0.0
    gpu_memory: int | None = None

    def add(self, row: TelemetryRow) -> None:
        self.samples += row.samples
        self.cpu_sum += row.cpu_percent * row.samples
        self.memory = max(self.memory, row.memory_bytes)
        if row.gpu_percent is not None and row.gpu_samples:
            self.gpu_samples += row.gpu_samples
            self.gpu_sum += row.gpu_percent * row.gpu_samples
        if row.gpu_memory_bytes is not None:
            self.gpu_memory = max(self.gpu_memory or 0, row.gpu_memory_bytes)

    def write(self, row: TelemetryRow) -> None:
        row.samples = self.samples
        row.cpu_percent = self.cpu_sum / self.samples if self.samples else 0.0
        row.memory_bytes = self.memory
        row.gpu_samples = self.gpu_samples
        row.gpu_percent = self.gpu_sum / self.gpu_samples if self.gpu_samples else None
        row.gpu_memory_bytes = self.gpu_memory


def _row(cluster: str, sample: TelemetrySample) -> TelemetryRow:
    gpus = sample.gpus
    return TelemetryRow(
        job_id=sample.job_id,
        span_s=RAW,
        at_ms=to_ms(sample.time),
        cluster=cluster,
        samples=1,
        cpu_percent=sample.cpu_percent,
        memory_bytes=sample.memory_bytes,
        gpu_percent=sum(g.utilization_percent for g in gpus) / len(gpus) if gpus else None,
        gpu_samples=1 if gpus else 0,
        gpu_memory_bytes=sum(g.memory_bytes for g in gpus) if gpus else None,
    )


class TelemetryService:
    def __init__(
        self,
        *,
        db: Database,
        jobs: JobsService,
        gateways: GatewayRegistry,
        retention_s: float,
        flush_interval_s: float = 5.0,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._gateways = gateways
        self._retention = timedelta(seconds=retention_s)
        self._flush_interval_s = flush_interval_s

    # --- for callers --------------------------------------------------------------------------

    async def live(self, user: User, id_or_name: str) -> AsyncGenerator[TelemetrySample, None]:
        """The job's samples as its cluster takes them: while it waits (pending, suspended)
        nothing, then its samples while it runs, across restarts; ends when it has ended (at
        once for a job that has)."""
        job = await self._readable_job(user, id_or_name)
        gateway = self._gateways.get(job.cluster_name)
        gaps = _Gaps()
        while True:
            if job.status is not JobStatus.RUNNING:
                job = await self._until_running(user, job)
            if job.status.is_finished:
                return
            sampled = False
            try:
                async with contextlib.aclosing(gateway.telemetry(job.id)) as ticks:
                    async for tick in ticks:
                        for sample in tick:
                            if sample.job_id == job.id and gaps.keep(sample):
                                sampled = True
                                yield sample
            except NotFound:
                pass  # not handed to the cluster yet, or forgotten there: the job says which
            # Its workload ended: the job did too, or it starts again (a restart).
            job = await self._readable_job(user, job.id)
            if not sampled and job.status is JobStatus.RUNNING:
                await asyncio.sleep(RECHECK_S)  # the job and its cluster disagree for a moment

    async def _until_running(self, user: User, job: Job) -> Job:
        """The job once it runs or has ended."""
        async with contextlib.aclosing(self._jobs.status_changes(user, job.id)) as changes:
            async for job in changes:
                if job.status is JobStatus.RUNNING or job.status.is_finished:
                    break
        return job

    async def history(
        self,
        user: User,
        id_or_name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        step_s: int | None = None,
        now: datetime | None = None,
    ) -> TelemetryHistory:
        """The job's points from ``since`` (its creation) to ``until`` (now), each
        ``step_s`` long or longer (see `TelemetryHistory.step_seconds`)."""
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.utcoffset() is None:
                raise BadInput(
                    f"{name} {value.isoformat()} has no time zone: add one (Z for UTC)",
                    fields={name: "no time zone"},
                )
        if step_s is not None and step_s < 1:
            raise BadInput("step must be at least 1 second", fields={"step": "below 1"})
        job = await self._readable_job(user, id_or_name)
        now = now or utcnow()
        start = since or job.created_at
        end = until or now
        if end <= start:
            raise BadInput("until must be after since", fields={"until": "not after since"})
        start_ms, end_ms = to_ms(start), to_ms(end)
        span_s = (end_ms - start_ms) / 1000
        step = max(step_s or 1, math.ceil(span_s / MAX_HISTORY_POINTS))
        if start < now - timedelta(seconds=RAW_WINDOW_S):
            step = max(step, MINUTE_S)  # only minute points are kept there
        step_ms = step * 1000
        row = TelemetryRow
        bucket = ((row.at_ms - start_ms) // step_ms).label("bucket")
        gpu_weight = case((row.gpu_percent.is_not(None), row.gpu_samples), else_=0)
        query = (
            select(
                bucket,
                func.sum(row.samples),
                func.sum(row.cpu_percent * row.samples),
                func.max(row.memory_bytes),
                func.sum(gpu_weight),
                func.sum(func.coalesce(row.gpu_percent, 0.0) * gpu_weight),
                func.max(row.gpu_memory_bytes),
            )
            .where(row.job_id == job.id, row.at_ms >= start_ms, row.at_ms < end_ms)
            .group_by(bucket)
            .order_by(bucket)
            .limit(MAX_HISTORY_POINTS + 1)
        )
        async with self._db.session() as session:
            found = (await session.execute(query)).all()
        points = []
        for index, samples, cpu_sum, memory, gpu_samples, gpu_sum, gpu_memory in found:
            points.append(
                TelemetryPoint(
                    time=from_ms(start_ms + int(index) * step_ms),
                    cpu_percent=round(float(cpu_sum) / samples, 2) if samples else 0.0,
                    memory_bytes=int(memory),
                    gpu_percent=round(float(gpu_sum) / gpu_samples, 2) if gpu_samples else None,
                    gpu_memory_bytes=int(gpu_memory) if gpu_memory is not None else None,
                    samples=int(samples),
                )
            )
        return TelemetryHistory(step_seconds=step, points=tuple(points[:MAX_HISTORY_POINTS]))

    # --- for the cluster's controller ---------------------------------------------------------

    async def record(self, cluster: str) -> None:
        """Follow the cluster's samples and write them every flush interval; returns when the
        gateway's feed ends (the gateway closed)."""
        gateway = self._gateways.get(cluster)
        pending: collections.deque[TelemetrySample] = collections.deque(maxlen=MAX_PENDING)
        gaps = _Gaps()

        async def follow() -> None:
            async with contextlib.aclosing(gateway.telemetry()) as ticks:
                async for tick in ticks:
                    pending.extend(sample for sample in tick if gaps.keep(sample))
                    if tick and len(gaps) > 2 * len(tick) + 1000:  # ended jobs' marks
                        gaps.forget_except(sample.job_id for sample in tick)

        async def flush() -> None:
            batch = list(pending)
            pending.clear()
            if batch:
                try:
                    await self.store(cluster, batch)
                except Exception:
                    logger.exception("cluster %s: %d telemetry samples lost", cluster, len(batch))

        following = asyncio.create_task(follow(), name=f"telemetry {cluster}")
        try:
            while not following.done():
                await asyncio.wait({following}, timeout=self._flush_interval_s)
                await flush()
            following.result()
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following

    async def store(self, cluster: str, samples: Sequence[TelemetrySample]) -> None:
        """Write samples as they came (a sample already stored is left as it is)."""
        rows = {(s.job_id, to_ms(s.time)): _row(cluster, s) for s in samples}
        async with self._db.session() as session:
            for job_id, at in await self._existing(session, rows):
                del rows[(job_id, at)]
            session.add_all(rows.values())
            await session.commit()

    @staticmethod
    async def _existing(
        session: AsyncSession, rows: dict[tuple[str, int], TelemetryRow]
    ) -> list[tuple[str, int]]:
        """Those of ``rows`` already stored (a controller that took over may resend)."""
        if not rows:
            return []
        by_job: dict[str, list[int]] = collections.defaultdict(list)
        for job_id, at in rows:
            by_job[job_id].append(at)
        conditions = [
            and_(TelemetryRow.job_id == job_id, TelemetryRow.at_ms.between(min(ats), max(ats)))
            for job_id, ats in by_job.items()
        ]
        query = select(TelemetryRow.job_id, TelemetryRow.at_ms).where(
            TelemetryRow.span_s == RAW, or_(*conditions)
        )
        return [
            (job_id, at)
            for job_id, at in (await session.execute(query)).all()
            if (job_id, at) in rows
        ]

    async def compact(self, cluster: str, *, now: datetime | None = None) -> tuple[int, int]:
        """Fold the cluster's samples older than an hour into one-minute points, then remove
        points older than the retention; returns (samples folded, rows removed)."""
        now = now or utcnow()
        folded = 0
        # Only whole minutes: a minute's samples are folded together, once.
        window_ms = to_ms(now - timedelta(seconds=RAW_WINDOW_S))
        cutoff_ms = window_ms - window_ms % (MINUTE_S * 1000)
        while True:
            count = await self._fold(cluster, cutoff_ms)
            folded += count
            if count < COMPACT_BATCH:
                break
        async with self._db.session() as session:
            result = await session.execute(
                delete(TelemetryRow).where(
                    TelemetryRow.cluster == cluster,
                    TelemetryRow.at_ms < to_ms(now - self._retention),
                )
            )
            await session.commit()
        return folded, int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _fold(self, cluster: str, cutoff_ms: int) -> int:
        """Fold one batch of samples before ``cutoff_ms`` into minute points; their count."""
        minute_ms = MINUTE_S * 1000
        async with self._db.session() as session:
            raw = (
                await session.scalars(
                    select(TelemetryRow)
                    .where(
                        TelemetryRow.cluster == cluster,
                        TelemetryRow.span_s == RAW,
                        TelemetryRow.at_ms < cutoff_ms,
                    )
                    .order_by(TelemetryRow.job_id, TelemetryRow.at_ms)
                    .limit(COMPACT_BATCH)
                )
            ).all()
            if not raw:
                return 0
            points: dict[tuple[str, int], _Point] = collections.defaultdict(_Point)
            last: dict[str, int] = {}
            for row in raw:
                points[(row.job_id, row.at_ms - row.at_ms % minute_ms)].add(row)
                last[row.job_id] = row.at_ms
            # Points of these minutes written by an earlier batch are merged with, not repeated.
            minutes = [at for _, at in points]
            existing = (
                await session.scalars(
                    select(TelemetryRow).where(
                        TelemetryRow.span_s == MINUTE,
                        TelemetryRow.job_id.in_(list(last)),
                        TelemetryRow.at_ms.between(min(minutes), max(minutes)),
                    )
                )
            ).all()
            rows = {(row.job_id, row.at_ms): row for row in existing}
            for (job_id, at), point in points.items():
                known = rows.get((job_id, at))
                if known is None:
                    known = TelemetryRow(job_id=job_id, span_s=MINUTE, at_ms=at, cluster=cluster)
                    session.add(known)
                else:
                    point.add(known)
                point.write(known)
            # The batch is, per job, every sample up to its last one (the order is by job, time).
            for job_id, at in last.items():
                await session.execute(
                    delete(TelemetryRow).where(
                        TelemetryRow.job_id == job_id,
                        TelemetryRow.span_s == RAW,
                        TelemetryRow.at_ms <= at,
                    )
                )
            await session.commit()
            return len(raw)

    async def _readable_job(self, user: User, id_or_name: str) -> Job:
        async with self._db.session() as session:
            return await self._jobs.get(session, user, id_or_name)
