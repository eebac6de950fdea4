"""Glia's typed async client: ``GliaClient`` and the values it returns."""

from __future__ import annotations

from sdk.client import GliaClient
from sdk.config import DEFAULT_SERVER, CliConfig, config_path, load_config, save_config
from sdk.durations import format_duration, parse_duration, parse_since
from sdk.errors import (
    BadInput,
    Conflict,
    ConnectionFailed,
    Forbidden,
    GliaError,
    NotFound,
    QuotaExceeded,
    Unauthenticated,
    Unavailable,
)
from sdk.types import (
    UNFINISHED_STATUSES,
    Cluster,
    Job,
    JobStatus,
    JobStatusItem,
    LogLine,
    LogStream,
    Page,
    Preset,
    User,
    UserRole,
)

__all__ = [
    "DEFAULT_SERVER",
    "UNFINISHED_STATUSES",
    "BadInput",
    "CliConfig",
    "Cluster",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "GliaClient",
    "GliaError",
    "Job",
    "JobStatus",
    "JobStatusItem",
    "LogLine",
    "LogStream",
    "NotFound",
    "Page",
    "Preset",
    "QuotaExceeded",
    "Unauthenticated",
    "Unavailable",
    "User",
    "UserRole",
    "config_path",
    "format_duration",
    "load_config",
    "parse_duration",
    "parse_since",
    "save_config",
]
