"""What the SDK returns: the kernel's own models (one definition on every side)."""

from __future__ import annotations

from glia.acl import Action
from glia.auth import Token, User, UserKind, UserRole
from glia.clusters import (
    Cluster,
    ClusterSettingsInput,
    ClusterStatus,
    Preset,
    PresetInput,
    Resources,
)
from glia.disks import Disk, DiskStatus
from glia.jobs import (
    UNFINISHED_STATUSES,
    EnvVar,
    Job,
    JobFilter,
    JobOrder,
    JobOrderField,
    JobPriority,
    JobReason,
    JobStatus,
    JobStatusItem,
    JobSubmission,
    RestartPolicy,
)
from glia.model import Model
from glia.monitoring import LogLine, LogStream, LogText
from glia.pages import OrderDirection, Page
from glia.quotas import Quota, QuotaLevel
from glia.telemetry import GpuSample, TelemetryHistory, TelemetryPoint, TelemetrySample
from glia.tenancy import (
    ClusterRole,
    GrantEntry,
    Member,
    NewOrg,
    NewProject,
    Org,
    OrgRole,
    Project,
    ProjectRole,
    Role,
    ServiceAccount,
)

__all__ = [
    "UNFINISHED_STATUSES",
    "Action",
    "Cluster",
    "ClusterRole",
    "ClusterSettingsInput",
    "ClusterStatus",
    "Disk",
    "DiskStatus",
    "EnvVar",
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
    "OrderDirection",
    "Org",
    "OrgRole",
    "Page",
    "Preset",
    "Quota",
    "QuotaLevel",
    "PresetInput",
    "Project",
    "ProjectRole",
    "Resources",
    "RestartPolicy",
    "Role",
    "ServiceAccount",
    "TelemetryHistory",
    "TelemetryPoint",
    "TelemetrySample",
    "Token",
    "User",
    "UserKind",
    "UserRole",
]
