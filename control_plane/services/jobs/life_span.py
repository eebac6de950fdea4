"""Extending a running job's life span (`glia job bump-life-span`)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.acl import AclService
from control_plane.services.clusters import GatewayRegistry
from control_plane.services.jobs.records import find_job
from control_plane.store.models import JobRow
from glia.acl import Action
from glia.auth import User
from glia.errors import BadInput, Conflict, NotFound
from glia.jobs import MAX_LIFE_SPAN_S, Job


class LifeSpans:
    def __init__(self, *, acl: AclService, gateways: GatewayRegistry) -> None:
        self._acl = acl
        self._gateways = gateways

    async def bump(self, session: AsyncSession, user: User, id_or_name: str, seconds: float) -> Job:
        """Add ``seconds`` to an unfinished job's life span (its writers may); the cluster
        stops it that much later. A job with no life span has nothing to extend."""
        if not 1 <= seconds <= MAX_LIFE_SPAN_S:
            raise BadInput(
                f"bump a life span by 1 second to {MAX_LIFE_SPAN_S // 86400} days",
                fields={"seconds": "out of range"},
            )
        job = await find_job(session, user, id_or_name)
        if not await self._acl.check(user.subject, job.uri, Action.READ):
            raise NotFound(f"job {id_or_name!r} not found")
        await self._acl.require(user.subject, job.uri, Action.WRITE)
        if job.status.is_finished:
            raise Conflict(f"job {job.id} has ended ({job.status.value})")
        if job.life_span_s is None:
            raise BadInput(
                f"job {job.id} has no life span: it runs until it ends or is killed",
                fields={"id": "no life span"},
            )
        life_span_s = job.life_span_s + seconds
        bumped = await session.scalar(
            update(JobRow)
            .where(JobRow.id == job.id, JobRow.life_span_s == job.life_span_s)
            .values(life_span_s=life_span_s)
            .returning(JobRow.id)
            .execution_options(synchronize_session=False)
        )
        if bumped is None:
            await session.rollback()
            raise Conflict(f"the life span of job {job.id} changed meanwhile: try again")
        await session.commit()
        try:
            await self._gateways.get(job.cluster_name).set_life_span(job.id, life_span_s)
        except NotFound:
            pass  # not started yet: it starts with the new life span
        return await find_job(session, user, job.id)
