"""DataLoaders of one operation: a page of jobs loads its owners and clusters in one query each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from glia.services.auth import User
from glia.services.clusters import Cluster
from glia.services.jobs import JobStatusItem

if TYPE_CHECKING:
    from glia.platform import Platform


class Loaders:
    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        async def users(ids: Sequence[str]) -> list[User | None]:
            return await platform.auth.users_by_ids(session, ids)

        async def clusters(ids: Sequence[str]) -> list[Cluster | None]:
            return await platform.clusters.by_ids(session, ids)

        async def job_history(ids: Sequence[str]) -> list[tuple[JobStatusItem, ...]]:
            return await platform.jobs.history(session, ids)

        self.users: DataLoader[str, User | None] = DataLoader(load_fn=users)
        self.clusters: DataLoader[str, Cluster | None] = DataLoader(load_fn=clusters)
        self.job_history: DataLoader[str, tuple[JobStatusItem, ...]] = DataLoader(
            load_fn=job_history
        )
