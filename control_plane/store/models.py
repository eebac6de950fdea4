"""SQLAlchemy models of the control plane's metadata.

One migration history serves SQLite and PostgreSQL: keep types portable (JSON, not JSONB;
strings for enums, checked in services) and name every constraint through the convention.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from glia.clock import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both dialects: SQLite stores no zone and hands back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the database: use glia.clock.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="user")
    # "user", or "service_account": no password, signs in with its tokens only, and is named
    # OWNER/NAME after the user who made it (`owner_id`).
    kind: Mapped[str] = mapped_column(String(16), default="user")
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    # The project a service account was made for (it is a member of it).
    org: Mapped[str | None] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The unprivileged uid (and gid) the user's jobs run as, from GLIA_JOB_UID_BASE on.
    uid: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[TokenRow]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class TokenRow(Base):
    """A JWT's id; deleting or revoking the row revokes the token."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[UserRow] = relationship(back_populates="tokens")


class ClusterRow(Base):
    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # How the control plane reaches it: "local" (a gateway in-process) or its gateway's URL.
    gateway: Mapped[str] = mapped_column(String(2048), default="local")
    # glia.clusters.ClusterStatus, and why it is failed (or still deploying).
    status: Mapped[str] = mapped_column(String(16), default="blank")
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The life span of its jobs that ask for none; null for no limit.
    default_life_span_s: Mapped[float | None] = mapped_column(Float)
    # glia.clusters.ClusterRuntime, and its storage's and registry's endpoints (settings the
    # control plane keeps for the cluster; its gateway serves them).
    runtime: Mapped[str] = mapped_column(String(16), default="local")
    storage_url: Mapped[str | None] = mapped_column(String(2048))
    registry_url: Mapped[str | None] = mapped_column(String(2048))
    # A remote gateway's shared secret, sealed with the keyring (control_plane.keyring).
    gateway_secret: Mapped[str | None] = mapped_column(Text)
    # When its gateway last answered, and the capacity it reported then
    # (cluster_gateway.gateway.ClusterCapacity as JSON).
    last_heartbeat_at: Mapped[datetime | None] = mapped_column()
    capacity: Mapped[dict[str, Any] | None] = mapped_column()

    presets: Mapped[list[PresetRow]] = relationship(
        back_populates="cluster", cascade="all, delete-orphan", order_by="PresetRow.position"
    )


class PresetRow(Base):
    __tablename__ = "presets"
    __table_args__ = (UniqueConstraint("cluster_id", "name", name="uq_presets_cluster_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    cpu: Mapped[float] = mapped_column(Float)
    memory_mb: Mapped[int] = mapped_column(BigInteger)
    gpu: Mapped[int] = mapped_column(Integer, default=0)
    pids_limit: Mapped[int] = mapped_column(Integer, default=1024)
    position: Mapped[int] = mapped_column(Integer, default=0)
    gpu_model: Mapped[str | None] = mapped_column(String(64))
    shm_mb: Mapped[int | None] = mapped_column(Integer)
    credits_per_hour: Mapped[float] = mapped_column(Float, default=0.0)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=False)
    scheduler_enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    cluster: Mapped[ClusterRow] = relationship(back_populates="presets")


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_owner_created", "owner_id", "created_at"),
        # An owner's unfinished jobs, counted at each submission (`JobSubmitter.submit`).
        Index("ix_jobs_owner_status", "owner_id", "status"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_org_status", "org", "status"),
        Index("ix_jobs_uri", "uri"),
        UniqueConstraint("owner_id", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
        # A name is unique among its owner's unfinished jobs: `active_name` holds it from the
        # submission to the final status (`JobStatusMachine.transition` clears it), so one
        # INSERT decides a race that a check-then-insert would let through.
        Index(
            "uq_jobs_owner_active_name",
            "owner_id",
            "active_name",
            unique=True,
            sqlite_where=text("active_name IS NOT NULL"),
            postgresql_where=text("active_name IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64))
    # The name while the job is unfinished, null after (and for jobs without a name).
    active_name: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"))
    org: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(String(400))
    preset: Mapped[str] = mapped_column(String(64))
    cpu: Mapped[float] = mapped_column(Float)
    memory_mb: Mapped[int] = mapped_column(BigInteger)
    gpu: Mapped[int] = mapped_column(Integer, default=0)
    pids_limit: Mapped[int] = mapped_column(Integer, default=1024)
    # The uid and gid the job runs as (its owner's at submission).
    uid: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    command: Mapped[list[Any]] = mapped_column(JSON)
    env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    working_dir: Mapped[str | None] = mapped_column(Text)
    # A storage URI: the job starts in that directory of its project's storage instead.
    storage_workdir: Mapped[str | None] = mapped_column(Text)
    # What it mounts, resolved at submission (`glia.volumes.Volume`: storage URIs, disk ids,
    # secret keys), and its variables set from secrets (names and keys, never values).
    volumes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    secret_env: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # What a job is read with; `job_tags` holds the same tags, one row each, to filter on.
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    life_span_s: Mapped[float | None] = mapped_column(Float)
    # HTTP exposure: the port, whether the URL checks access, and the first label of the
    # job's host name (`http_host`, what the proxy and /auth/forward find the job by).
    http_port: Mapped[int | None] = mapped_column(Integer)
    http_auth: Mapped[bool] = mapped_column(Boolean, default=True)
    http_host: Mapped[str | None] = mapped_column(String(64), index=True)
    http_url: Mapped[str | None] = mapped_column(Text)
    # --pass-config: the job gets a token of its owner; this is its id (never the token),
    # revoked when the job ends.
    pass_config: Mapped[bool] = mapped_column(Boolean, default=False)
    tty: Mapped[bool] = mapped_column(Boolean, default=False)  # glia run -t
    config_token_id: Mapped[str | None] = mapped_column(String(36))

    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    status_description: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    # Scheduling (control_plane/services/jobs/scheduler.py): a pending job with no
    # `scheduled_at` waits in its cluster's queue, by `priority` (JobPriority.rank), then
    # `created_at`; `scheduled_at` is set when the scheduler hands it to the cluster.
    gpu_model: Mapped[str | None] = mapped_column(String(64))
    shm_mb: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    schedule_timeout_s: Mapped[float | None] = mapped_column(Float)
    scheduled_at: Mapped[datetime | None]
    restart_policy: Mapped[str] = mapped_column(String(16), default="never")
    restart_count: Mapped[int] = mapped_column(Integer, default=0)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=False)

    # Quotas and credits (control_plane/services/quotas.py). ``seat_wait``: submitted with
    # waitForSeat over a quota, the job holds no seat and is not in the queue yet. Its price
    # is its preset's at submission; ``charged_until`` is how far its run time is paid for
    # (null while it does not run).
    seat_wait: Mapped[bool] = mapped_column(Boolean, default=False)
    credits_per_hour: Mapped[float] = mapped_column(Float, default=0.0)
    charged_until: Mapped[datetime | None]
    credits_spent_micro: Mapped[int] = mapped_column(BigInteger, default=0)

    history: Mapped[list[JobStatusRow]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="JobStatusRow.id"
    )


class JobTagRow(Base):
    """One tag of a job: what listings filter on, in SQL on every database."""

    __tablename__ = "job_tags"
    __table_args__ = (Index("ix_job_tags_tag_job", "tag", "job_id"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


# The queue's scan: a cluster's pending jobs not yet handed to it.
Index("ix_jobs_queue", JobRow.cluster_id, JobRow.status, JobRow.scheduled_at)


class JobStatusRow(Base):
    """One transition of a job's status: the job's history, oldest first."""

    __tablename__ = "job_status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[JobRow] = relationship(back_populates="history")


class AclRuleRow(Base):
    """Casbin's policy storage: ``p`` rows are grants, ``g`` rows are role links."""

    __tablename__ = "acl_rules"
    __table_args__ = (UniqueConstraint("ptype", "v0", "v1", "v2", name="uq_acl_rules_rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ptype: Mapped[str] = mapped_column(String(8))
    v0: Mapped[str] = mapped_column(String(255))
    v1: Mapped[str] = mapped_column(String(400))
    v2: Mapped[str] = mapped_column(String(32), default="")


class OrgRow(Base):
    """An org. Its members are ACL role links (`glia.tenancy`); a deleted org keeps its row,
    so that its name, which its jobs' URIs carry, is never given out again."""

    __tablename__ = "orgs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # The user whose personal org it is; null for an org made by an admin.
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    projects: Mapped[list[ProjectRow]] = relationship(
        back_populates="org", order_by="ProjectRow.name"
    )
    clusters: Mapped[list[OrgClusterRow]] = relationship(
        back_populates="org", cascade="all, delete-orphan"
    )


class ProjectRow(Base):
    """A project of an org; like orgs, a deleted one keeps its row and its name."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_projects_org_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    default_role: Mapped[str] = mapped_column(String(16), default="writer")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    org: Mapped[OrgRow] = relationship(back_populates="projects")


class OrgClusterRow(Base):
    """A cluster an org's members may run on."""

    __tablename__ = "org_clusters"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )

    org: Mapped[OrgRow] = relationship(back_populates="clusters")
    cluster: Mapped[ClusterRow] = relationship()


class QuotaRow(Base):
    """The limits of one level of the tenancy (`glia.quotas`): its row exists once an admin
    set one. ``key`` is `glia.quotas.quota_key` of its org, cluster and user names."""

    __tablename__ = "quotas"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    org: Mapped[str | None] = mapped_column(String(64))
    cluster: Mapped[str | None] = mapped_column(String(64))
    user: Mapped[str | None] = mapped_column(String(64))
    # Null: no limit.
    max_running_jobs: Mapped[int | None] = mapped_column(Integer)
    credits_micro: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomRoleRow(Base):
    """A role a user made (`role:user/OWNER/NAME`); its members and grants are ACL rules."""

    __tablename__ = "custom_roles"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeaseRow(Base):
    """Who holds a named lease, until when: one process at a time does the work it names."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


# Tables declared beside their domain, on this Base: imported here so the metadata holds them.
from control_plane.store import blobs as _blob_rows  # noqa: E402,F401
from control_plane.store import disks as _disk_rows  # noqa: E402,F401
from control_plane.store import secrets as _secret_rows  # noqa: E402,F401
from control_plane.store import telemetry as _telemetry_rows  # noqa: E402,F401
