from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia import clusters as kernel
from glia.acl import Action
from glia.errors import NotFound
from glia.tenancy import cluster_uri
from graph.context import Info
from graph.types.base import model_from_input
from graph.types.clusters import (
    Cluster,
    ClusterPayload,
    Preset,
    PresetInput,
    PresetPayload,
    RemovePresetInput,
    UpdateClusterSettingsInput,
)


@strawberry.type
class ClustersQuery:
    @strawberry.field(
        description="The clusters the caller may run on (cluster users, and the members of "
        "their orgs), the default one first, with how many more jobs of each preset fit now"
    )
    async def clusters(self, info: Info) -> list[Cluster]:
        ctx = info.context
        user = await ctx.user()
        acl = ctx.platform.acl
        found = [
            await ctx.platform.presets.with_availability(cluster)
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
            cluster = await ctx.platform.clusters.get(ctx.session, name)
        except NotFound:
            return None
        return cast(Cluster, await ctx.platform.presets.with_availability(cluster))


@strawberry.type
class ClustersMutation:
    @strawberry.mutation(description="Add a preset to a cluster (the cluster's admins)")
    async def add_preset(
        self, info: Info, input: Annotated[PresetInput, strawberry.argument(description="It")]
    ) -> PresetPayload:
        ctx = info.context
        new = model_from_input(kernel.PresetInput, input)
        preset = await ctx.platform.presets.add(ctx.session, await ctx.user(), new)
        return PresetPayload(preset=cast(Preset, preset))

    @strawberry.mutation(
        description="Change a cluster's preset: every field is set (the cluster's admins); "
        "jobs submitted before keep the resources they had"
    )
    async def update_preset(
        self, info: Info, input: Annotated[PresetInput, strawberry.argument(description="It")]
    ) -> PresetPayload:
        ctx = info.context
        new = model_from_input(kernel.PresetInput, input)
        preset = await ctx.platform.presets.update(ctx.session, await ctx.user(), new)
        return PresetPayload(preset=cast(Preset, preset))

    @strawberry.mutation(description="Remove a preset from a cluster (the cluster's admins)")
    async def remove_preset(
        self,
        info: Info,
        input: Annotated[RemovePresetInput, strawberry.argument(description="Which")],
    ) -> PresetPayload:
        ctx = info.context
        preset = await ctx.platform.presets.remove(
            ctx.session, await ctx.user(), input.cluster, input.name
        )
        return PresetPayload(preset=cast(Preset, preset))

    @strawberry.mutation(description="Change a cluster's settings (the cluster's admins)")
    async def update_cluster_settings(
        self,
        info: Info,
        input: Annotated[UpdateClusterSettingsInput, strawberry.argument(description="Them")],
    ) -> ClusterPayload:
        ctx = info.context
        new = model_from_input(kernel.ClusterSettingsInput, input)
        cluster = await ctx.platform.presets.update_settings(ctx.session, await ctx.user(), new)
        return ClusterPayload(cluster=cast(Cluster, cluster))
