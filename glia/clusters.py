"""Clusters, the presets they offer, and the resources both are measured in."""

from __future__ import annotations

import math
import re
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from glia.model import DescribedEnum, Model

PRESET_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,63}")
MAX_CPU = 4096.0
MAX_MEMORY_MB = 64 * 1024 * 1024
MAX_GPU = 1024


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
    gpu_model: str | None = None
    """The model its GPUs must be (`A100`, matched against the cluster's GPU model ignoring
    case); null for any."""
    shm_mb: int | None = None
    """The size of its shared memory (/dev/shm) in MiB; null for the cluster's default."""


def gpu_model_matches(wanted: str | None, offered: str | None) -> bool:
    """Whether GPUs of model ``offered`` (`NVIDIA A100-SXM4-80GB`) are what ``wanted`` (`a100`)
    asks for; any model does when none is asked for."""
    return wanted is None or (offered is not None and wanted.lower() in offered.lower())


def fit_count(need: Resources, free: Resources, gpu_model: str | None = None) -> int:
    """How many jobs needing ``need`` fit in ``free`` at once (0 when none does).

    >>> fit_count(Resources(cpu=1, memory_mb=1024), Resources(cpu=2.5, memory_mb=4096))
    2
    """
    if need.gpu and not gpu_model_matches(need.gpu_model, gpu_model):
        return 0
    counts = [
        math.floor(free.cpu / need.cpu + 1e-9) if need.cpu > 0 else math.inf,
        free.memory_mb // need.memory_mb if need.memory_mb > 0 else math.inf,
        free.gpu // need.gpu if need.gpu > 0 else math.inf,
    ]
    least = min(counts)
    return max(0, int(least)) if least != math.inf else 1_000_000


def shortfall(need: Resources, free: Resources, gpu_model: str | None = None) -> list[str]:
    """What ``need`` lacks in ``free``, for people: ``["1.5 CPUs (0.5 free)"]``; empty when it
    fits."""
    missing: list[str] = []
    if need.gpu and not gpu_model_matches(need.gpu_model, gpu_model):
        missing.append(f"{need.gpu_model} GPUs (the cluster has {gpu_model or 'none'})")
    if need.cpu > free.cpu + 1e-9:
        missing.append(f"{need.cpu:g} CPUs ({max(free.cpu, 0):g} free)")
    if need.memory_mb > free.memory_mb:
        missing.append(f"{need.memory_mb} MiB of memory ({max(free.memory_mb, 0)} MiB free)")
    if need.gpu > free.gpu:
        missing.append(f"{need.gpu} GPUs ({max(free.gpu, 0)} free)")
    return missing


class Preset(Model):
    """A named size of job that a cluster offers."""

    name: str
    """The preset's name, unique in its cluster (`cpu-small`)."""
    resources: Resources
    """What a job of this preset gets."""
    credits_per_hour: float = 0.0
    """What a job of this preset costs per hour it runs."""
    preemptible: bool = False
    """Whether its jobs may be suspended to make room for higher-priority jobs."""
    scheduler_enabled: bool = True
    """Whether its jobs wait in the cluster's queue for room; when false, a job that does not
    fit at once fails (SchedulingTimeout)."""
    available: int | None = None
    """How many more jobs of it fit in the cluster's free capacity right now; null where the
    cluster was not asked."""


class PresetSpec(Model):
    """A preset's values: its name and what its jobs get."""

    name: str
    """Lowercase letters, digits and '-', starting with a letter, at most 64 characters."""
    cpu: float
    """CPU cores (fractions allowed)."""
    memory_mb: int
    """Memory in MiB."""
    gpu: int = 0
    """Whole GPUs."""
    gpu_model: str | None = None
    """The GPUs' model (`A100`); null for any."""
    shm_mb: int | None = None
    """Shared memory (/dev/shm) in MiB; null for the cluster's default."""
    pids_limit: int = 1024
    """Processes and threads a job may have at once."""
    credits_per_hour: float = 0.0
    """What a job costs per hour it runs."""
    preemptible: bool = False
    """Whether its jobs may be suspended for higher-priority ones."""
    scheduler_enabled: bool = True
    """Whether its jobs wait in the queue for room (else fail when they do not fit at once)."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not PRESET_NAME_RE.fullmatch(name):
            raise ValueError(
                f"invalid preset name {name[:100]!r}: lowercase letters, digits and '-', "
                "starting with a letter, at most 64 characters"
            )
        return name

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, cpu: float) -> float:
        if not 0 < cpu <= MAX_CPU:
            raise ValueError(f"cpu must be above 0 and at most {MAX_CPU:g}")
        return cpu

    @field_validator("memory_mb")
    @classmethod
    def _memory(cls, memory_mb: int) -> int:
        if not 0 < memory_mb <= MAX_MEMORY_MB:
            raise ValueError(f"memory must be above 0 and at most {MAX_MEMORY_MB} MiB")
        return memory_mb

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, gpu: int) -> int:
        if not 0 <= gpu <= MAX_GPU:
            raise ValueError(f"gpu must be between 0 and {MAX_GPU}")
        return gpu

    @field_validator("shm_mb")
    @classmethod
    def _shm(cls, shm_mb: int | None) -> int | None:
        if shm_mb is not None and not 0 < shm_mb <= MAX_MEMORY_MB:
            raise ValueError("shared memory must be above 0 MiB")
        return shm_mb

    @field_validator("pids_limit")
    @classmethod
    def _pids(cls, pids_limit: int) -> int:
        if not 16 <= pids_limit <= 4_194_304:
            raise ValueError("the pids limit must be between 16 and 4194304")
        return pids_limit

    @field_validator("credits_per_hour")
    @classmethod
    def _credits(cls, credits_per_hour: float) -> float:
        if not 0 <= credits_per_hour < 1e9 or math.isnan(credits_per_hour):
            raise ValueError("credits per hour must be 0 or more")
        return credits_per_hour

    @property
    def preset(self) -> Preset:
        return Preset(
            name=self.name,
            resources=Resources(
                cpu=self.cpu,
                memory_mb=self.memory_mb,
                gpu=self.gpu,
                gpu_model=self.gpu_model if self.gpu else None,
                shm_mb=self.shm_mb,
                pids_limit=self.pids_limit,
            ),
            credits_per_hour=self.credits_per_hour,
            preemptible=self.preemptible,
            scheduler_enabled=self.scheduler_enabled,
        )


class PresetInput(PresetSpec):
    """A preset to add to a cluster, or the new values of one (every field given is set)."""

    cluster: str
    """The cluster it belongs to."""


class ClusterSettingsInput(Model):
    """A cluster's settings to change."""

    cluster: str
    """The cluster."""
    default_life_span_s: float | None = Field(default=None, alias="defaultLifeSpanSeconds")
    """The life span of its jobs that ask for none, in seconds (1 s to 30 days); null for no
    limit."""

    @field_validator("default_life_span_s")
    @classmethod
    def _life_span(cls, value: float | None) -> float | None:
        if value is not None and not 1 <= value <= 30 * 86400:
            raise ValueError("the default life span must be between 1 second and 30 days")
        return value


class ClusterStatus(DescribedEnum):
    """Where a cluster is in its life cycle: blank -> deploying -> deployed, failed while its
    gateway cannot be opened or does not answer (deployed again once it does), deleting while
    it is decommissioned."""

    BLANK = "blank", "Registered; its gateway has not been opened yet"
    DEPLOYING = "deploying", "Its gateway is being opened, or has not answered yet"
    DEPLOYED = "deployed", "Its gateway answers and it takes jobs"
    FAILED = "failed", "Its gateway cannot be opened or stopped answering (see the reason)"
    DELETING = "deleting", "It is being decommissioned: its jobs are stopped, then it goes"

    @property
    def takes_jobs(self) -> bool:
        return self is ClusterStatus.DEPLOYED


class ClusterRuntime(DescribedEnum):
    """What runs a cluster's jobs behind its gateway."""

    LOCAL = "local", "Processes on the gateway's host (cgroups, bubblewrap)"
    KUBERNETES = "kubernetes", "Pods on a Kubernetes cluster"


# The gateway setting of a cluster whose gateway runs inside the control plane.
LOCAL_GATEWAY = "local"
CLUSTER_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")


def _check_endpoint(value: str | None, what: str) -> str | None:
    """An http(s) URL with a host, as given (no trailing slash); None stays None."""
    if value is None or value == "":
        return None
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host")
    if parsed.username or parsed.password:
        raise ValueError(f"{what} must not carry credentials")
    return value.rstrip("/")


class ClusterConfigFields(Model):
    """What a cluster is set up with, beside its presets (shared by registration and
    update)."""

    runtime: ClusterRuntime = ClusterRuntime.LOCAL
    """What runs its jobs behind its gateway."""
    storage_url: str | None = None
    """Its storage's endpoint (an http(s) URL), where its files are served from; null for
    its gateway's own."""
    registry_url: str | None = None
    """Its image registry's endpoint (an http(s) URL); null for none."""
    default_life_span_s: float | None = Field(default=None, alias="defaultLifeSpanSeconds")
    """The life span of its jobs that ask for none, in seconds (1 s to 30 days); null for no
    limit."""

    @field_validator("storage_url")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        return _check_endpoint(value, "the storage URL")

    @field_validator("registry_url")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        return _check_endpoint(value, "the registry URL")

    @field_validator("default_life_span_s")
    @classmethod
    def _life_span(cls, value: float | None) -> float | None:
        if value is not None and not 1 <= value <= 30 * 86400:
            raise ValueError("the default life span must be between 1 second and 30 days")
        return value


class NewCluster(ClusterConfigFields):
    """A cluster to register."""

    name: str
    """Its name, unique on the platform: lowercase letters, digits and '-', starting with a
    letter, at most 63 characters; the first segment of its URIs."""
    gateway: str = LOCAL_GATEWAY
    """How the control plane reaches it: `local` (a gateway inside the control plane, with
    a data dir of its own) or the http(s) URL of its `glia gateway serve`."""
    presets: tuple[PresetSpec, ...] = ()
    """Its presets, the first the default; none for three sized to its capacity when its
    gateway first answers."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not CLUSTER_NAME_RE.fullmatch(name):
            raise ValueError(
                f"invalid cluster name {name[:100]!r}: lowercase letters, digits and '-', "
                "starting with a letter, at most 63 characters"
            )
        return name

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, gateway: str) -> str:
        if gateway == LOCAL_GATEWAY:
            return gateway
        return _check_endpoint(gateway, "the gateway") or gateway

    @field_validator("presets")
    @classmethod
    def _presets(cls, presets: tuple[PresetSpec, ...]) -> tuple[PresetSpec, ...]:
        names = [p.name for p in presets]
        if len(set(names)) != len(names):
            raise ValueError("preset names must differ")
        return presets


class ClusterUpdate(ClusterConfigFields):
    """A registered cluster's new settings: every field is set (its presets keep their own
    API: add-preset, update-preset)."""

    name: str
    """The cluster."""


class ClusterHealth(Model):
    """What a cluster's gateway last told the control plane."""

    last_heartbeat_at: datetime | None = None
    """When its gateway last answered; null if it never has."""
    capacity: Resources | None = None
    """Its capacity in all, as last reported."""
    free: Resources | None = None
    """What of it its workloads left free then."""


class ClusterConfig(Model):
    """A registered cluster as its platform's admins see it: its setup, life cycle and
    health (never its gateway's secret)."""

    id: str
    """The cluster's id (a UUID)."""
    name: str
    """The cluster's name."""
    status: ClusterStatus
    """Where it is in its life cycle."""
    status_reason: str | None = None
    """Why it is failed (or still deploying); null when deployed."""
    gateway: str
    """`local`, or its gateway's URL."""
    runtime: ClusterRuntime
    """What runs its jobs."""
    storage_url: str | None = None
    """Its storage's endpoint; null for its gateway's own."""
    registry_url: str | None = None
    """Its image registry's endpoint; null for none."""
    default_life_span_s: float | None = Field(default=None, alias="defaultLifeSpanSeconds")
    """The life span, in seconds, of its jobs that ask for none; null for no limit."""
    presets: tuple[Preset, ...] = ()
    """Its presets; the first one is the default."""
    health: ClusterHealth = ClusterHealth()
    """What its gateway last reported."""
    created_at: datetime
    """When it was registered."""


class RegisteredCluster(Model):
    """A cluster just registered, with its gateway's shared secret: shown this once."""

    cluster: ClusterConfig
    """The cluster."""
    gateway_secret: str | None = None
    """The secret to start its `glia gateway serve` with (GLIA_GATEWAY_SECRET); null for a
    local gateway. It is never shown again."""


class DecommissionedCluster(Model):
    """A cluster removed, and the jobs its removal stopped."""

    cluster: ClusterConfig
    """The cluster as it was."""
    stopped_jobs: tuple[str, ...] = ()
    """The ids of its unfinished jobs that were stopped."""


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
    default_life_span_s: float | None = Field(default=None, alias="defaultLifeSpanSeconds")
    """The life span, in seconds, of its jobs that ask for none; null for no limit."""

    def preset(self, name: str | None) -> Preset | None:
        """The preset called `name`, the default one for None, or None if there is none."""
        if name is None:
            return self.presets[0] if self.presets else None
        return next((p for p in self.presets if p.name == name), None)
