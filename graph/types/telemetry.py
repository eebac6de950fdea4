from __future__ import annotations

import strawberry

from glia import telemetry as kernel
from graph.types.base import field_description, object_type
from graph.types.scalars import BigInt


@object_type(kernel.GpuSample)
class GpuSample:
    memory_bytes: BigInt = strawberry.field(
        description=field_description(kernel.GpuSample, "memory_bytes")
    )


@object_type(kernel.TelemetrySample)
class TelemetrySample:
    memory_bytes: BigInt = strawberry.field(
        description=field_description(kernel.TelemetrySample, "memory_bytes")
    )
    gpus: list[GpuSample] = strawberry.field(
        description=field_description(kernel.TelemetrySample, "gpus")
    )


@object_type(kernel.TelemetryPoint)
class TelemetryPoint:
    memory_bytes: BigInt = strawberry.field(
        description=field_description(kernel.TelemetryPoint, "memory_bytes")
    )
    gpu_memory_bytes: BigInt | None = strawberry.field(
        description=field_description(kernel.TelemetryPoint, "gpu_memory_bytes")
    )


@object_type(kernel.TelemetryHistory)
class TelemetryHistory:
    points: list[TelemetryPoint] = strawberry.field(
        description=field_description(kernel.TelemetryHistory, "points")
    )
