"""Clusters, the presets they offer, and the resources both are measured in."""

from __future__ import annotations

from glia.model import DescribedEnum, Model


class Resources(Model):
    """Compute a job may use; `cpu` and `memory_mb` are hard limits, not requests."""

    cpu: float
    """CPU cores (fractions allowed: 0.5 is half a core)."""
    memory_mb: int
    """Memory in MiB."""
    gpu: int = 0
    """Whole GPUs, assigned exclusively."""
    pids_limit: int = 1024
    """Processes and threads the job may have at once."""


class Preset(Model):
    """A named size of job that a cluster offers."""

    name: str
    """The preset's name, unique in its cluster (`cpu-small`)."""
    resources: Resources
    """What a job of this preset gets."""


class ClusterStatus(DescribedEnum):
    """Whether a cluster takes jobs."""

    READY = "ready", "Its gateway is connected and it takes jobs"


class Cluster(Model):
    """A place where jobs run and data lives, reached through its gateway."""

    id: str
    """The cluster's id (a UUID)."""
    name: str
    """The cluster's name, unique on the platform; it is the first segment of its URIs."""
    status: ClusterStatus
    """Whether it takes jobs."""
    presets: tuple[Preset, ...]
    """Its presets; the first one is the default."""

    def preset(self, name: str | None) -> Preset | None:
        """The preset called `name`, the default one for None, or None if there is none."""
        if name is None:
            return self.presets[0] if self.presets else None
        return next((p for p in self.presets if p.name == name), None)
