from __future__ import annotations

import strawberry

from glia.services import clusters as service


@strawberry.type
class Preset:
    name: str
    cpu: float
    memory_mb: int
    gpu: int

    @classmethod
    def from_domain(cls, preset: service.Preset) -> Preset:
        return cls(name=preset.name, cpu=preset.cpu, memory_mb=preset.memory_mb, gpu=preset.gpu)


@strawberry.type
class Cluster:
    id: strawberry.ID
    name: str
    status: str
    presets: list[Preset]

    @classmethod
    def from_domain(cls, cluster: service.Cluster) -> Cluster:
        return cls(
            id=strawberry.ID(cluster.id),
            name=cluster.name,
            status=cluster.status,
            presets=[Preset.from_domain(p) for p in cluster.presets],
        )
