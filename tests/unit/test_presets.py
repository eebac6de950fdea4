"""The presets `glia up` makes for its own machine."""

from __future__ import annotations

import pytest

from cluster_gateway.gateway import ClusterCapacity
from control_plane.services.clusters import presets_for_host


@pytest.mark.parametrize(
    ("cpu", "memory_mb", "expected"),
    [
        (2, 23960, [(0.5, 1024), (1.0, 5120), (2.0, 11264)]),
        (4, 16000, [(0.5, 1024), (1.0, 3072), (2.0, 7168)]),
        (8, 32000, [(0.5, 1024), (2.0, 7168), (4.0, 15360)]),
        (16, 64000, [(0.5, 1024), (4.0, 15360), (8.0, 31744)]),
        (1, 1000, [(0.5, 256), (1.0, 1024), (1.0, 1024)]),  # one core allows no more
    ],
)
def test_presets_are_distinct_and_round(
    cpu: float, memory_mb: int, expected: list[tuple[float, int]]
) -> None:
    presets = presets_for_host(ClusterCapacity(cpu=cpu, memory_mb=memory_mb))

    assert [p.name for p in presets] == ["cpu-small", "cpu-medium", "cpu-large"]
    assert [(p.resources.cpu, p.resources.memory_mb) for p in presets] == expected
    for preset in presets:
        assert preset.resources.cpu <= max(cpu, 1)
        assert preset.resources.memory_mb % 256 == 0


def test_a_gpu_host_gets_a_gpu_preset() -> None:
    presets = presets_for_host(ClusterCapacity(cpu=8, memory_mb=32768, gpu=2))
    assert presets[-1].name == "gpu-1" and presets[-1].resources.gpu == 1
