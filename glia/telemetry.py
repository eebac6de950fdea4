"""What a running job uses, sampled by its cluster: live samples and the points of its history.

A gateway samples each running job about once a second (`TelemetrySample`); the control plane
relays the samples live and keeps them, raw for an hour and then as one-minute points, until
its retention ends. A history answer is a `TelemetryHistory`: points of ``step`` seconds each.
"""

from __future__ import annotations

from datetime import datetime

from glia.model import Model

# A history answer has at most this many points: a longer range gets a longer step.
MAX_HISTORY_POINTS = 1000
# Samples are kept raw this long, then as one point a minute.
RAW_WINDOW_S = 3600
MINUTE_S = 60


class GpuSample(Model):
    """One GPU of a job, sampled."""

    device: str
    """The GPU's index on its host, as the job's CUDA_VISIBLE_DEVICES names it."""
    utilization_percent: float
    """How busy its cores were over the last sample period, 0 to 100."""
    memory_bytes: int
    """Its memory in use."""


class TelemetrySample(Model):
    """What a running job used at one moment, its whole process tree together."""

    job_id: str
    """The job sampled."""
    time: datetime
    """When it was sampled (UTC)."""
    cpu_percent: float
    """CPU time used since the previous sample, in percent of one core (200 = two busy cores)."""
    memory_bytes: int
    """Memory in use: its cgroup's, or the resident memory of its processes."""
    gpus: tuple[GpuSample, ...] = ()
    """Each GPU assigned to the job, where the cluster can see them (NVML); none elsewhere."""


# One sampling round's samples: a gateway's telemetry yields these.
TelemetryTick = tuple[TelemetrySample, ...]


class TelemetryPoint(Model):
    """What a job used over one step of its history: the samples of that step together."""

    time: datetime
    """The start of the step (UTC)."""
    cpu_percent: float
    """Mean CPU use over the step's samples, in percent of one core."""
    memory_bytes: int
    """The most memory in use at any sample of the step."""
    gpu_percent: float | None = None
    """Mean utilization of the job's GPUs over the step; null without GPU samples."""
    gpu_memory_bytes: int | None = None
    """The most GPU memory in use (all of its GPUs together); null without GPU samples."""
    samples: int
    """How many samples the point stands for."""


class TelemetryHistory(Model):
    """A job's telemetry between two times, in points of one step each, oldest first;
    steps without samples have no point."""

    step_seconds: int
    """The length of each point's step: the one asked for, or longer so that the answer has
    at most 1,000 points (and at least a minute where only one-minute points are kept)."""
    points: tuple[TelemetryPoint, ...]
    """The points, oldest first."""
