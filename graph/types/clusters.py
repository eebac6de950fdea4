from __future__ import annotations

import strawberry

from glia import clusters as kernel
from graph.types.base import expose_enum, field_description, input_type, object_type
from graph.types.node import Node

ClusterStatus = expose_enum(kernel.ClusterStatus)


@object_type(kernel.Resources)
class Resources:
    pass


@object_type(kernel.Preset)
class Preset:
    pass


@object_type(kernel.Cluster)
class Cluster(Node):
    id: strawberry.ID = strawberry.field(description=field_description(kernel.Cluster, "id"))


@input_type(kernel.PresetInput, name="PresetInput")
class PresetInput:
    pass


@input_type(kernel.ClusterSettingsInput, name="UpdateClusterSettingsInput")
class UpdateClusterSettingsInput:
    pass


@strawberry.input(description="A preset to remove from a cluster")
class RemovePresetInput:
    cluster: str = strawberry.field(description="The cluster's name")
    name: str = strawberry.field(description="The preset's name")


@strawberry.type(description="The preset added, changed or removed")
class PresetPayload:
    preset: Preset = strawberry.field(description="The preset (as it was, when removed)")


@strawberry.type(description="The cluster with its settings now")
class ClusterPayload:
    cluster: Cluster = strawberry.field(description="The cluster")


ClusterRuntime = expose_enum(kernel.ClusterRuntime)


@object_type(kernel.ClusterHealth)
class ClusterHealth:
    pass


@object_type(kernel.ClusterConfig)
class ClusterConfig:
    pass


@input_type(kernel.PresetSpec, name="PresetSpecInput")
class PresetSpecInput:
    pass


@input_type(kernel.NewCluster, name="AddClusterInput")
class AddClusterInput:
    pass


@input_type(kernel.ClusterUpdate, name="UpdateClusterInput")
class UpdateClusterInput:
    pass


@object_type(kernel.RegisteredCluster, name="AddClusterPayload")
class AddClusterPayload:
    pass


@strawberry.type(description="The cluster's config as it is now")
class UpdateClusterPayload:
    cluster: ClusterConfig = strawberry.field(description="The cluster")


@object_type(kernel.DecommissionedCluster, name="RemoveClusterPayload")
class RemoveClusterPayload:
    pass
