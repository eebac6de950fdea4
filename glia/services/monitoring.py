"""Observing running jobs: logs now; telemetry, exec and port-forward later."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cluster_gateway.gateway import LogLine
from glia.services.acl import AclService, Action
from glia.services.auth import User
from glia.services.clusters import GatewayRegistry
from glia.services.jobs import JobsService


class MonitoringService:
    def __init__(self, *, acl: AclService, jobs: JobsService, gateways: GatewayRegistry) -> None:
        self._acl = acl
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

        Permission is checked before the first line: the caller gets the iterator only if
        they may read the job.
        """
        job = await self._jobs.get(session, user, id_or_name)
        await self._acl.require(user.subject, job.uri, Action.READ)
        gateway = self._gateways.get(job.cluster_name)
        return gateway.logs(job.id, since=since, follow=follow)
