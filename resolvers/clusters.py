from __future__ import annotations

import strawberry

from glia.errors import NotFound
from graph.context import Info
from graph.types.clusters import Cluster


@strawberry.type
class ClustersQuery:
    # Every authenticated user sees the clusters and their presets; per-cluster access
    # arrives with orgs and projects.
    @strawberry.field
    async def clusters(self, info: Info) -> list[Cluster]:
        ctx = info.context
        await ctx.user()
        return [Cluster.from_domain(c) for c in await ctx.platform.clusters.list(ctx.session)]

    @strawberry.field
    async def cluster(self, info: Info, name: str) -> Cluster | None:
        ctx = info.context
        await ctx.user()
        try:
            return Cluster.from_domain(await ctx.platform.clusters.get(ctx.session, name))
        except NotFound:
            return None
