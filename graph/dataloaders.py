"""DataLoaders of one operation: a page of jobs loads its histories and clusters in one go."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from glia.clusters import Cluster
from glia.jobs import JobStatusItem

if TYPE_CHECKING:
    from control_plane.platform import Platform


class Loaders:
    """Built per operation; ``session`` opens the operation's session when first needed."""

    def __init__(self, platform: Platform, session: Callable[[], AsyncSession]) -> None:
        async def clusters(names: Sequence[str]) -> list[Cluster | None]:
            return await platform.clusters.by_names(session(), names)

        async def job_history(ids: Sequence[str]) -> list[tuple[JobStatusItem, ...]]:
            return await platform.jobs.history(session(), ids)

        self.clusters: DataLoader[str, Cluster | None] = DataLoader(load_fn=clusters)
        self.job_history: DataLoader[str, tuple[JobStatusItem, ...]] = DataLoader(
            load_fn=job_history
        )
