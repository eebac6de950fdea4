from __future__ import annotations

import strawberry

from glia import clusters as kernel
from graph.types.base import expose_enum, field_description, object_type
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
