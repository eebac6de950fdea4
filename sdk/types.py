"""What the SDK returns: the kernel's own models (one definition on every side)."""

from __future__ import annotations

from glia.auth import Token, User, UserRole
from glia.clusters import Cluster, ClusterStatus, Preset, Resources
from glia.jobs import (
    UNFINISHED_STATUSES,
    EnvVar,
    Job,
    JobFilter,
    JobOrder,
    JobOrderField,
    JobReason,
    JobStatus,
    JobStatusItem,
    JobSubmission,
)
from glia.model import Model
from glia.monitoring import LogLine, LogStream, LogText
from glia.pages import OrderDirection, Page

__all__ = [
    "UNFINISHED_STATUSES",
    "Cluster",
    "ClusterStatus",
    "EnvVar",
    "Job",
    "JobFilter",
    "JobOrder",
    "JobOrderField",
    "JobReason",
    "JobStatus",
    "JobStatusItem",
    "JobSubmission",
    "LogLine",
    "LogStream",
    "LogText",
    "Model",
    "OrderDirection",
    "Page",
    "Preset",
    "Resources",
    "Token",
    "User",
    "UserRole",
]
