"""Frozen values the SDK returns, parsed from the API's JSON.

Parsers read only the fields they know and tolerate missing optional ones, so an old client
keeps working against a newer server that adds fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Self, TypeVar

T = TypeVar("T")


def parse_datetime(value: str) -> datetime:
    """An ISO-8601 string as an aware datetime (UTC when the server omits the offset)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _opt_datetime(value: Any) -> datetime | None:
    return parse_datetime(value) if value else None


class _GraphQLEnum(StrEnum):
    """Lowercase values in Python (``"pending"``); the GraphQL name is the uppercase one."""

    @classmethod
    def from_graphql(cls, name: str) -> Self:
        return cls(name.lower())

    @property
    def graphql(self) -> str:
        return self.value.upper()


class JobStatus(_GraphQLEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


UNFINISHED_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUSPENDED)


class UserRole(_GraphQLEnum):
    ADMIN = "admin"
    USER = "user"


class LogStream(_GraphQLEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: UserRole
    email: str | None = None
    created_at: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> User:
        return cls(
            id=str(data["id"]),
            name=data["name"],
            role=UserRole.from_graphql(data.get("role") or "USER"),
            email=data.get("email"),
            created_at=_opt_datetime(data.get("createdAt")),
        )


@dataclass(frozen=True)
class Preset:
    name: str
    cpu: float
    memory_mb: int
    gpu: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preset:
        return cls(
            name=data["name"],
            cpu=float(data["cpu"]),
            memory_mb=int(data["memoryMb"]),
            gpu=int(data.get("gpu") or 0),
        )


@dataclass(frozen=True)
class Cluster:
    name: str
    id: str | None = None
    status: str | None = None
    presets: tuple[Preset, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cluster:
        return cls(
            name=data["name"],
            id=str(data["id"]) if data.get("id") is not None else None,
            status=data.get("status"),
            presets=tuple(Preset.from_dict(p) for p in data.get("presets") or ()),
        )


@dataclass(frozen=True)
class JobStatusItem:
    status: JobStatus
    at: datetime
    reason: str | None = None
    description: str | None = None
    exit_code: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobStatusItem:
        return cls(
            status=JobStatus.from_graphql(data["status"]),
            at=parse_datetime(data["at"]),
            reason=data.get("reason"),
            description=data.get("description"),
            exit_code=data.get("exitCode"),
        )


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    command: tuple[str, ...]
    created_at: datetime
    name: str | None = None
    uri: str | None = None
    owner: User | None = None
    cluster: str | None = None
    org: str | None = None
    project: str | None = None
    preset: str | None = None
    cpu: float | None = None
    memory_mb: int | None = None
    gpu: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None
    life_span_s: float | None = None
    reason: str | None = None
    status_description: str | None = None
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    history: tuple[JobStatusItem, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        owner = data.get("owner")
        cluster = data.get("cluster")
        return cls(
            id=str(data["id"]),
            status=JobStatus.from_graphql(data["status"]),
            command=tuple(data.get("command") or ()),
            created_at=parse_datetime(data["createdAt"]),
            name=data.get("name"),
            uri=data.get("uri"),
            owner=User.from_dict(owner) if owner else None,
            cluster=cluster.get("name") if isinstance(cluster, Mapping) else cluster,
            org=data.get("org"),
            project=data.get("project"),
            preset=data.get("preset"),
            cpu=data.get("cpu"),
            memory_mb=data.get("memoryMb"),
            gpu=data.get("gpu"),
            env=dict(data.get("env") or {}),
            working_dir=data.get("workingDir"),
            tags=tuple(data.get("tags") or ()),
            description=data.get("description"),
            life_span_s=data.get("lifeSpanSeconds"),
            reason=data.get("reason"),
            status_description=data.get("statusDescription"),
            exit_code=data.get("exitCode"),
            started_at=_opt_datetime(data.get("startedAt")),
            finished_at=_opt_datetime(data.get("finishedAt")),
            history=tuple(JobStatusItem.from_dict(h) for h in data.get("history") or ()),
        )


@dataclass(frozen=True)
class LogLine:
    time: datetime
    stream: LogStream
    text: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogLine:
        return cls(
            time=parse_datetime(data["time"]),
            stream=LogStream.from_graphql(data.get("stream") or "STDOUT"),
            text=data["text"],
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a connection; pass ``end_cursor`` as ``after`` to get the next."""

    items: tuple[T, ...]
    end_cursor: str | None
    has_next_page: bool
    total_count: int
