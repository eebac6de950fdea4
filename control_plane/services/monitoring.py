"""Observing jobs: their output, line by line or as bytes; exec, attach and port-forward.

Both forms are streams: they check access first, then hold no database connection while they
read or wait.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from cluster_gateway.gateway import Gateway
from control_plane.services.clusters import GatewayRegistry
from control_plane.services.jobs import JobsService
from control_plane.store.database import Database
from glia.auth import User
from glia.errors import BadInput, Conflict, Forbidden, NotFound
from glia.jobs import Job, JobStatus
from glia.monitoring import LogBatch, check_log_start


@dataclass(frozen=True)
class LogBytes:
    """A job's whole output as bytes: ``size`` so far, and `read` from an offset."""

    job: Job
    size: int
    _gateway: Gateway

    def read(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._gateway.read_log(self.job.id, offset=offset, length=length)


class MonitoringService:
    def __init__(self, *, db: Database, jobs: JobsService, gateways: GatewayRegistry) -> None:
        self._db = db
        self._jobs = jobs
        self._gateways = gateways

    async def logs(
        self,
        user: User,
        id_or_name: str,
        *,
        since: datetime | None = None,
        offset: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncGenerator[LogBatch, None]:
        """The job's log in batches of lines, from the start, ``since`` a time, from an
        ``offset`` an earlier reader reached, or its last ``tail`` lines; with ``follow``,
        live until the job ends."""
        check_log_start(since, offset, tail)
        if since is not None and since.utcoffset() is None:
            raise BadInput(
                f"since {since.isoformat()} has no time zone: add one (Z for UTC)",
                fields={"since": "no time zone"},
            )
        job = await self._readable_job(user, id_or_name)
        if follow and job.status is not JobStatus.RUNNING and not job.status.is_finished:
            # Not started yet (waiting for room, a seat, a disk, or still starting): its
            # cluster has no output for it until it runs.
            async for current in self._jobs.status_changes(user, job.id):
                job = current
                if job.status is JobStatus.RUNNING or job.status.is_finished:
                    break
        if job.status.is_finished and job.started_at is None:
            return  # it never ran: there is no output, and none is lost
        gateway = self._gateways.get(job.cluster_name)
        try:
            async for batch in gateway.logs(
                job.id, since=since, offset=offset, tail=tail, follow=follow
            ):
                yield batch
        except NotFound:
            raise self._gone(job) from None

    async def log_bytes(self, user: User, id_or_name: str) -> LogBytes:
        """The job's output as bytes (what `GET /api/jobs/{id}/log` serves)."""
        job = await self._readable_job(user, id_or_name)
        gateway = self._gateways.get(job.cluster_name)
        try:
            size = await gateway.log_size(job.id)
        except NotFound:
            raise self._gone(job) from None
        return LogBytes(job=job, size=size, _gateway=gateway)

    async def running_job(self, user: User, id_or_name: str) -> tuple[Job, Gateway]:
        """A running job ``user`` may write, and its cluster's gateway: for exec, attach and
        port-forward (NotFound for a caller who may not read it, Forbidden for a reader)."""
        job = await self._readable_job(user, id_or_name)
        if not await self._jobs.may_write(user, job):
            raise Forbidden(f"you may read job {job.id} but not write it (exec, attach, ports)")
        if job.status is not JobStatus.RUNNING:
            raise Conflict(f"job {job.id} is not running ({job.status.value})")
        return job, self._gateways.get(job.cluster_name)

    async def _readable_job(self, user: User, id_or_name: str) -> Job:
        async with self._db.session() as session:
            return await self._jobs.get(session, user, id_or_name)

    @staticmethod
    def _gone(job: Job) -> NotFound:
        return NotFound(
            f"the output of job {job.id} is no longer kept by cluster {job.cluster_name}"
        )
