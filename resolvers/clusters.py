from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia.errors import NotFound
from graph.context import Info
from graph.types.clusters import Cluster


@strawberry.type
class ClustersQuery:
    # Every authenticated user sees the clusters and their presets; per-cluster access
    # arrives with orgs and projects.
    @strawberry.field(description="Every cluster, the default one first")
    async def clusters(self, info: Info) -> list[Cluster]:
        ctx = info.context
        await ctx.user()
        return cast(list[Cluster], await ctx.platform.clusters.list(ctx.session))

    @strawberry.field(description="A cluster by name; null when there is none")
    async def cluster(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="The cluster's name")],
    ) -> Cluster | None:
        ctx = info.context
        await ctx.user()
        try:
            return cast(Cluster, await ctx.platform.clusters.get(ctx.session, name))
        except NotFound:
            return None
