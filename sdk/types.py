"""What the SDK returns: the kernel's own models (one definition on every side), and pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from glia.auth import User, UserRole
from glia.clusters import Cluster, ClusterStatus, Preset, Resources
from glia.jobs import (
    UNFINISHED_STATUSES,
    EnvVar,
    Job,
    JobFilter,
    JobReason,
    JobStatus,
    JobStatusItem,
    JobSubmission,
)
from glia.model import Model
from glia.monitoring import LogLine, LogStream, LogText

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a connection; pass ``end_cursor`` as ``after`` to get the next."""

    items: tuple[T, ...]
    end_cursor: str | None
    has_next_page: bool
    total_count: int


__all__ = [
    "UNFINISHED_STATUSES",
    "Cluster",
    "ClusterStatus",
    "EnvVar",
    "Job",
    "JobFilter",
    "JobReason",
    "JobStatus",
    "JobStatusItem",
    "JobSubmission",
    "LogLine",
    "LogStream",
    "LogText",
    "Model",
    "Page",
    "Preset",
    "Resources",
    "User",
    "UserRole",
]
