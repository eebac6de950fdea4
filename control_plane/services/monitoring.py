"""Observing running jobs: logs now; telemetry, exec and port-forward later."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cluster_gateway.gateway import LogLine
from glia.services.auth import User
from glia.services.clusters import GatewayRegistry
from glia.services.jobs import JobsService


class MonitoringService:
    def __init__(self, *, jobs: JobsService, gateways: GatewayRegistry) -> None:
        self._jobs = jobs
        self._gateways = gateways

    async def logs(
        self,
        session: AsyncSession,
        user: User,
        id_or_name: str,
        *,
        since: datetime | None = None,
        follow: bool = False,
    ) -> AsyncIterator[list[LogLine]]:
        """The job's log in batches of lines; with ``follow``, live until the job ends.

        Permission is checked before the first line: `JobsService.get` lets the caller have
        the job, and so its iterator, only if they may read it.
        """
        job = await self._jobs.get(session, user, id_or_name)
        gateway = self._gateways.get(job.cluster_name)
        return gateway.logs(job.id, since=since, follow=follow)
