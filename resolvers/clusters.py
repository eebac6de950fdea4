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
    AddClusterInput,
    AddClusterPayload,
    Cluster,
    ClusterConfig,
    ClusterPayload,
    Preset,
    PresetInput,
    PresetPayload,
    RemoveClusterPayload,
    RemovePresetInput,
    UpdateClusterInput,
    UpdateClusterPayload,
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

    @strawberry.field(
        description="Every registered cluster with its config, life-cycle status and health "
        "(the platform's admins)"
    )
    async def cluster_configs(self, info: Info) -> list[ClusterConfig]:
        ctx = info.context
        found = await ctx.platform.lifecycle.list(ctx.session, await ctx.user())
        return cast(list[ClusterConfig], found)

    @strawberry.field(
        description="A registered cluster's config, life-cycle status and health (the "
        "platform's admins)"
    )
    async def cluster_config(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="The cluster's name")],
    ) -> ClusterConfig:
        ctx = info.context
        found = await ctx.platform.lifecycle.get(ctx.session, await ctx.user(), name)
        return cast(ClusterConfig, found)


@strawberry.type
class ClustersMutation:
    @strawberry.mutation(
        description="Register a cluster and open its gateway (the platform's admins); for a "
        "remote gateway the answer holds its shared secret, shown this once"
    )
    async def add_cluster(
        self, info: Info, input: Annotated[AddClusterInput, strawberry.argument(description="It")]
    ) -> AddClusterPayload:
        ctx = info.context
        new = model_from_input(kernel.NewCluster, input)
        registered = await ctx.platform.lifecycle.register(ctx.session, await ctx.user(), new)
        return cast(AddClusterPayload, registered)

    @strawberry.mutation(
        description="Change a cluster's config: every field is set (the platform's admins); "
        "its presets change with addPreset and updatePreset"
    )
    async def update_cluster(
        self,
        info: Info,
        input: Annotated[UpdateClusterInput, strawberry.argument(description="It")],
    ) -> UpdateClusterPayload:
        ctx = info.context
        new = model_from_input(kernel.ClusterUpdate, input)
        cluster = await ctx.platform.lifecycle.update(ctx.session, await ctx.user(), new)
        return UpdateClusterPayload(cluster=cast(ClusterConfig, cluster))

    @strawberry.mutation(
        description="Decommission a cluster (the platform's admins): its unfinished jobs are "
        "cancelled first, and named in the answer; then it is removed with its jobs' records"
    )
    async def remove_cluster(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="The cluster's name")],
    ) -> RemoveClusterPayload:
        ctx = info.context
        removed = await ctx.platform.lifecycle.decommission(ctx.session, await ctx.user(), name)
        return cast(RemoveClusterPayload, removed)

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
