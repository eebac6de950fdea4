"""`node(id:)` and `nodes(ids:)`: any object by its global id.

Job ids say what they are (`job-<uuid>`); users and clusters have UUIDs, unique across both
tables, so a UUID is looked up among users, then clusters. A caller learns nothing of an
object they may not read: NOT_FOUND (null in `nodes`) as for one that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated, cast

import strawberry

from glia import jobs as kernel
from glia.acl import Action
from glia.errors import BadInput, NotFound
from glia.tenancy import cluster_uri
from graph.context import Info
from graph.types.node import Node

MAX_NODES = 100


async def _find(info: Info, id: str) -> Node | None:
    ctx = info.context
    user = await ctx.user()
    platform = ctx.platform
    if kernel.is_job_id(id):
        try:
            return cast(Node, await platform.jobs.get(ctx.session, user, id))
        except NotFound:
            return None
    try:
        uuid.UUID(id)
    except ValueError:
        return None
    found = await platform.users.by_id(ctx.session, user, id)
    if found is not None:
        return cast(Node, found)
    cluster = await platform.clusters.by_id(ctx.session, id)
    # As `cluster(name:)`: only a cluster the caller may run on.
    if cluster is None or not await platform.acl.check(
        user.subject, cluster_uri(cluster.name), Action.READ
    ):
        return None
    return cast(Node, cluster)


@strawberry.type
class NodeQuery:
    @strawberry.field(description="The object with this id; NOT_FOUND when there is none")
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id")],
    ) -> Node:
        found = await _find(info, id)
        if found is None:
            raise NotFound(f"no object with id {id!r}")
        return found

    @strawberry.field(
        description=f"The objects with these ids, in order; null for an id that names none "
        f"(at most {MAX_NODES} ids)"
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="Global ids")],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise BadInput(
                f"at most {MAX_NODES} ids at once", fields={"ids": f"more than {MAX_NODES}"}
            )
        return [await _find(info, id) for id in ids]
