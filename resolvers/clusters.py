from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia.acl import Action
from glia.errors import NotFound
from glia.tenancy import cluster_uri
from graph.context import Info
from graph.types.clusters import Cluster


@strawberry.type
class ClustersQuery:
    @strawberry.field(
        description="The clusters the caller may run on (cluster users, and the members of "
        "their orgs), the default one first"
    )
    async def clusters(self, info: Info) -> list[Cluster]:
        ctx = info.context
        user = await ctx.user()
        acl = ctx.platform.acl
        found = [
            cluster
            for cluster in await ctx.platform.clusters.list(ctx.session)
            if await acl.check(user.subject, cluster_uri(cluster.name), Action.READ)
        ]
        return cast(list[Cluster], found)

    @strawberry.field(
        description="A cluster by name; null when there is none or the caller may not use it"
    )
    async def cluster(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="The cluster's name")],
    ) -> Cluster | None:
        ctx = info.context
        user = await ctx.user()
        if not await ctx.platform.acl.check(user.subject, cluster_uri(name), Action.READ):
            return None
        try:
            return cast(Cluster, await ctx.platform.clusters.get(ctx.session, name))
        except NotFound:
            return None
