from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from glia.errors import NotFound
from glia.services import jobs as service
from graph.context import Info
from graph.types.auth import User
from graph.types.clusters import Cluster


@strawberry.enum
class JobStatus(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.type
class JobStatusItem:
    """One transition in a job's status history."""

    status: JobStatus
    reason: str | None
    description: str | None
    exit_code: int | None
    at: datetime

    @classmethod
    def from_domain(cls, item: service.JobStatusItem) -> JobStatusItem:
        return cls(
            status=JobStatus(item.status.value),
            reason=item.reason,
            description=item.description,
            exit_code=item.exit_code,
            at=item.at,
        )


@strawberry.type
class Job:
    id: strawberry.ID
    name: str | None
    uri: str
    org: str
    project: str
    preset: str
    cpu: float
    memory_mb: int
    gpu: int
    command: list[str]
    env: JSON
    working_dir: str | None
    tags: list[str]
    description: str | None
    life_span_seconds: float | None
    status: JobStatus
    reason: str | None
    status_description: str | None
    exit_code: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    owner_id: strawberry.Private[str]
    cluster_id: strawberry.Private[str]
    loaded_history: strawberry.Private[tuple[service.JobStatusItem, ...] | None]

    @strawberry.field
    async def owner(self, info: Info) -> User:
        user = await info.context.loaders.users.load(self.owner_id)
        if user is None:
            raise NotFound(f"the owner of job {self.id} no longer exists")
        return User.from_domain(user)

    @strawberry.field
    async def cluster(self, info: Info) -> Cluster:
        cluster = await info.context.loaders.clusters.load(self.cluster_id)
        if cluster is None:
            raise NotFound(f"the cluster of job {self.id} no longer exists")
        return Cluster.from_domain(cluster)

    @strawberry.field(description="Every status the job went through, oldest first")
    async def history(self, info: Info) -> list[JobStatusItem]:
        items = self.loaded_history
        if items is None:
            items = await info.context.loaders.job_history.load(str(self.id))
        return [JobStatusItem.from_domain(item) for item in items]

    @classmethod
    def from_domain(cls, job: service.Job) -> Job:
        env: Any = dict(job.env)
        return cls(
            id=strawberry.ID(job.id),
            name=job.name,
            uri=job.uri,
            org=job.org,
            project=job.project,
            preset=job.preset,
            cpu=job.cpu,
            memory_mb=job.memory_mb,
            gpu=job.gpu,
            command=list(job.command),
            env=env,
            working_dir=job.working_dir,
            tags=list(job.tags),
            description=job.description,
            life_span_seconds=job.life_span_s,
            status=JobStatus(job.status.value),
            reason=job.reason,
            status_description=job.status_description,
            exit_code=job.exit_code,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            owner_id=job.owner_id,
            cluster_id=job.cluster_id,
            loaded_history=job.history or None,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class JobEdge:
    cursor: str
    node: Job


@strawberry.type
class JobConnection:
    edges: list[JobEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class JobFilter:
    statuses: list[JobStatus] | None = None
    name: str | None = None
    tags: list[str] | None = strawberry.field(
        default=None, description="Jobs having all of these tags"
    )
    since: datetime | None = strawberry.field(default=None, description="Created at or after")
    cluster: str | None = None


@strawberry.input
class EnvVar:
    name: str
    value: str


@strawberry.input
class SubmitJobInput:
    command: list[str]
    cluster: str | None = None
    preset: str | None = None
    env: list[EnvVar] | None = None
    working_dir: str | None = None
    name: str | None = None
    tags: list[str] | None = None
    description: str | None = None
    life_span_seconds: float | None = None
