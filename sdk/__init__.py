"""Glia's typed async client: ``GliaClient`` and the values it returns.

``GliaClient`` is imported on first use (PEP 562): a program that only reads the CLI config or
the kernel's types (`glia --help`) does not pay for the HTTP and GraphQL libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glia.durations import format_duration, parse_duration, parse_since
from sdk.config import DEFAULT_SERVER, CliConfig, config_path, load_config, save_config
from sdk.errors import (
    Ambiguous,
    BadInput,
    Conflict,
    ConnectionFailed,
    ConnectionLost,
    Forbidden,
    GliaError,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)
from sdk.types import (
    UNFINISHED_STATUSES,
    Action,
    Cluster,
    ClusterConfig,
    ClusterHealth,
    ClusterRole,
    ClusterRuntime,
    ClusterSettingsInput,
    ClusterStatus,
    DecommissionedCluster,
    Disk,
    DiskStatus,
    EnvVar,
    GpuSample,
    GrantEntry,
    Job,
    JobFilter,
    JobOrder,
    JobOrderField,
    JobPriority,
    JobReason,
    JobStatus,
    JobStatusItem,
    JobSubmission,
    LogLine,
    LogStream,
    LogText,
    Member,
    Model,
    NewOrg,
    NewProject,
    OrderDirection,
    Org,
    OrgRole,
    Page,
    Preset,
    PresetInput,
    PresetSpec,
    Project,
    ProjectRole,
    Quota,
    QuotaLevel,
    RegisteredCluster,
    Resources,
    RestartPolicy,
    Role,
    ServiceAccount,
    TelemetryHistory,
    TelemetryPoint,
    TelemetrySample,
    Token,
    User,
    UserKind,
    UserRole,
)

if TYPE_CHECKING:
    from sdk.client import GliaClient


def __getattr__(name: str) -> Any:
    if name == "GliaClient":
        from sdk.client import GliaClient

        return GliaClient
    raise AttributeError(f"module 'sdk' has no attribute {name!r}")


def to_wire(model: Model) -> dict[str, Any]:
    """A value as the API writes it: camelCase names, enums by their GraphQL names (what
    ``-o json`` prints)."""
    return model.to_wire()


__all__ = [
    "DEFAULT_SERVER",
    "UNFINISHED_STATUSES",
    "Action",
    "Ambiguous",
    "BadInput",
    "CliConfig",
    "Cluster",
    "ClusterConfig",
    "ClusterHealth",
    "ClusterRole",
    "ClusterRuntime",
    "ClusterSettingsInput",
    "ClusterStatus",
    "DecommissionedCluster",
    "Disk",
    "DiskStatus",
    "Conflict",
    "ConnectionFailed",
    "ConnectionLost",
    "EnvVar",
    "Forbidden",
    "GliaClient",
    "GliaError",
    "GpuSample",
    "GrantEntry",
    "Job",
    "JobFilter",
    "JobOrder",
    "JobOrderField",
    "JobPriority",
    "JobReason",
    "JobStatus",
    "JobStatusItem",
    "JobSubmission",
    "LogLine",
    "LogStream",
    "LogText",
    "Member",
    "Model",
    "NewOrg",
    "NewProject",
    "NotFound",
    "OrderDirection",
    "Org",
    "OrgRole",
    "Page",
    "PayloadTooLarge",
    "Preset",
    "Quota",
    "QuotaLevel",
    "PresetInput",
    "PresetSpec",
    "RegisteredCluster",
    "Project",
    "ProjectRole",
    "QuotaExceeded",
    "Resources",
    "RestartPolicy",
    "Role",
    "ServiceAccount",
    "TelemetryHistory",
    "TelemetryPoint",
    "TelemetrySample",
    "Token",
    "TooManyRequests",
    "Unauthenticated",
    "Unavailable",
    "User",
    "UserKind",
    "UserRole",
    "config_path",
    "format_duration",
    "load_config",
    "parse_duration",
    "parse_since",
    "save_config",
    "to_wire",
]
