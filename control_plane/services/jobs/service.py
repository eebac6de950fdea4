"""Jobs: submission, the status machine, kill, listing, and reconciliation with the clusters.

The control plane is the source of truth for what should run; gateways report what does.
Every status change goes through `JobsService._transition`, a compare-and-set on the row
(``UPDATE … WHERE status = old``) so the watch loop, a kill and the reconcile loop racing on
one job record each transition exactly once, in any number of processes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import enum
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from cluster_gateway.gateway import (
    ExitReason,
    Resources,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadState,
)
from glia.clock import utcnow
from glia.errors import BadInput, Conflict, GliaError, NotFound
from glia.events import EventBus
from glia.metrics import Metrics
from glia.services.acl import AclService, Action, visible_filter
from glia.services.auth import User
from glia.services.clusters import ClustersService, GatewayRegistry
from glia.store.database import Database
from glia.store.models import ClusterRow, JobRow, JobStatusRow, UserRow

logger = logging.getLogger(__name__)


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
UNFINISHED_STATUSES = frozenset(JobStatus) - TERMINAL_STATUSES

_TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.SUSPENDED, *TERMINAL_STATUSES}),
    JobStatus.RUNNING: frozenset({JobStatus.SUSPENDED, *TERMINAL_STATUSES}),
    JobStatus.SUSPENDED: frozenset({JobStatus.PENDING, JobStatus.RUNNING, *TERMINAL_STATUSES}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(old: JobStatus, new: JobStatus) -> bool:
    return new in _TRANSITIONS[old]


# How a workload's end maps to the job's final status.
_EXIT_STATUS: Mapping[ExitReason, JobStatus] = {
    ExitReason.COMPLETED: JobStatus.SUCCEEDED,
    ExitReason.ERROR: JobStatus.FAILED,
    ExitReason.OOM_KILLED: JobStatus.FAILED,
    ExitReason.KILLED: JobStatus.FAILED,
    ExitReason.LOST: JobStatus.FAILED,
    ExitReason.START_FAILED: JobStatus.FAILED,
    ExitReason.USER_REQUESTED: JobStatus.CANCELLED,
    ExitReason.LIFE_SPAN_ENDED: JobStatus.CANCELLED,
}


def status_for_exit(reason: ExitReason | None, exit_code: int | None) -> JobStatus:
    if reason is None:
        return JobStatus.SUCCEEDED if exit_code == 0 else JobStatus.FAILED
    return _EXIT_STATUS[reason]


@dataclass(frozen=True)
class JobStatusItem:
    status: JobStatus
    reason: str | None
    description: str | None
    exit_code: int | None
    at: datetime


@dataclass(frozen=True)
class Job:
    id: str
    name: str | None
    uri: str
    owner_id: str
    owner_name: str
    cluster_id: str
    cluster_name: str
    org: str
    project: str
    preset: str
    cpu: float
    memory_mb: int
    gpu: int
    command: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str | None
    tags: tuple[str, ...]
    description: str | None
    life_span_s: float | None
    status: JobStatus
    reason: str | None
    status_description: str | None
    exit_code: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    history: tuple[JobStatusItem, ...] = field(default=())


@dataclass(frozen=True)
class JobFilter:
    statuses: frozenset[JobStatus] | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()
    since: datetime | None = None
    cluster: str | None = None


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    total_count: int
    end_cursor: str | None
    has_next_page: bool


JOB_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:=/-]{0,63}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_ENV_PREFIX = "GLIA_"
MAX_TAGS = 20
MAX_COMMAND_BYTES = 64 * 1024
MAX_ENV_BYTES = 256 * 1024
MAX_DESCRIPTION = 1000
MAX_LIFE_SPAN_S = 30 * 24 * 3600
# A pending job the gateway does not know yet is (re)started by reconcile; a running job the
# gateway lost is failed. Jobs younger than this are left alone: their start is in flight.
_RECONCILE_GRACE = timedelta(seconds=30)
# How long `kill` waits for the workload to end before returning the job as it is.
_KILL_WAIT_S = 3.0


def job_uri(cluster: str, org: str, project: str, job_id: str) -> str:
    return f"job://{cluster}/{org}/{project}/{job_id}"


def project_uri(cluster: str, org: str, project: str) -> str:
    return f"job://{cluster}/{org}/{project}"


def is_job_id(value: str) -> bool:
    """Job ids look like ``job-<uuid>``; anything else given where a job is expected is a name."""
    return value.startswith("job-")


def status_channel(job_id: str) -> str:
    return f"jobs.status.{job_id}"


def _status_item(row: JobStatusRow) -> JobStatusItem:
    return JobStatusItem(
        status=JobStatus(row.status),
        reason=row.reason,
        description=row.description,
        exit_code=row.exit_code,
        at=row.at,
    )


def _job(row: JobRow, owner_name: str, cluster_name: str, *, with_history: bool) -> Job:
    history: tuple[JobStatusItem, ...] = ()
    if with_history:
        history = tuple(_status_item(h) for h in row.history)
    return Job(
        id=row.id,
        name=row.name,
        uri=row.uri,
        owner_id=row.owner_id,
        owner_name=owner_name,
        cluster_id=row.cluster_id,
        cluster_name=cluster_name,
        org=row.org,
        project=row.project,
        preset=row.preset,
        cpu=row.cpu,
        memory_mb=row.memory_mb,
        gpu=row.gpu,
        command=tuple(row.command),
        env=dict(row.env),
        working_dir=row.working_dir,
        tags=tuple(row.tags),
        description=row.description,
        life_span_s=row.life_span_s,
        status=JobStatus(row.status),
        reason=row.reason,
        status_description=row.status_description,
        exit_code=row.exit_code,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        history=history,
    )


def encode_cursor(row_created: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{row_created.isoformat()}|{row_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadInput(f"invalid cursor {cursor!r}") from None


@dataclass(frozen=True)
class SubmitRequest:
    command: Sequence[str]
    cluster: str | None = None
    preset: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    name: str | None = None
    tags: Sequence[str] = ()
    description: str | None = None
    life_span_s: float | None = None


def validate_submit(request: SubmitRequest) -> None:
    """Reject bad input before anything is stored, naming the field at fault."""
    if not request.command or not all(isinstance(a, str) for a in request.command):
        raise BadInput("the command must be a non-empty list of strings", fields={"command": None})
    if not request.command[0].strip():
        raise BadInput("the command must not start with an empty string")
    if sum(len(a.encode()) for a in request.command) > MAX_COMMAND_BYTES:
        raise BadInput(f"the command is longer than {MAX_COMMAND_BYTES} bytes")
    env_size = 0
    for key, value in request.env.items():
        if not ENV_NAME_RE.match(key):
            raise BadInput(f"invalid environment variable name {key!r}", fields={"env": key})
        if key.startswith(RESERVED_ENV_PREFIX):
            raise BadInput(f"{key}: variables starting with GLIA_ are set by the platform")
        if "\0" in value:
            raise BadInput(f"environment variable {key} contains a NUL byte")
        env_size += len(key) + len(value.encode())
    if env_size > MAX_ENV_BYTES:
        raise BadInput(f"the environment is larger than {MAX_ENV_BYTES} bytes")
    if request.name is not None and not JOB_NAME_RE.match(request.name):
        raise BadInput(
            f"invalid job name {request.name!r}: lowercase letters, digits and '-', "
            "starting with a letter, at most 40 characters",
            fields={"name": request.name},
        )
    if len(request.tags) > MAX_TAGS:
        raise BadInput(f"at most {MAX_TAGS} tags")
    for tag in request.tags:
        if not TAG_RE.match(tag):
            raise BadInput(f"invalid tag {tag!r}", fields={"tags": tag})
    if request.description is not None and len(request.description) > MAX_DESCRIPTION:
        raise BadInput(f"the description is longer than {MAX_DESCRIPTION} characters")
    if request.working_dir is not None and not request.working_dir.startswith("/"):
        raise BadInput(
            f"the working directory must be an absolute path, got {request.working_dir!r}"
        )
    if request.life_span_s is not None and not 0 < request.life_span_s <= MAX_LIFE_SPAN_S:
        raise BadInput(
            f"the life span must be between 1 second and {MAX_LIFE_SPAN_S // 86400} days"
        )


class JobsService:
    def __init__(
        self,
        *,
        db: Database,
        acl: AclService,
        bus: EventBus,
        clusters: ClustersService,
        gateways: GatewayRegistry,
        metrics: Metrics,
        org: str,
        base_env: Mapping[str, str],
        kill_grace_s: float,
    ) -> None:
        self._db = db
        self._acl = acl
        self._bus = bus
        self._clusters = clusters
        self._gateways = gateways
        self._metrics = metrics
        self._org = org
        self._base_env = dict(base_env)
        self._kill_grace_s = kill_grace_s

    # -- submission -------------------------------------------------------------------------

    async def submit(self, session: AsyncSession, user: User, request: SubmitRequest) -> Job:
        validate_submit(request)
        cluster_name = request.cluster or await self._clusters.default_name(session)
        cluster = await self._clusters.get(session, cluster_name)
        preset = cluster.preset(request.preset)
        if preset is None:
            known = ", ".join(p.name for p in cluster.presets) or "none"
            raise BadInput(
                f"unknown preset {request.preset!r} on cluster {cluster.name!r} (presets: {known})",
                fields={"preset": request.preset},
            )
        project = user.name
        project_root = project_uri(cluster.name, self._org, project)
        # Owners manage their own project (which covers writing this job); the grant is
        # made once, on first use.
        if not await self._acl.check(user.subject, project_root, Action.MANAGE):
            await self._acl.grant(user.subject, project_root, Action.MANAGE)
        job_id = f"job-{uuid.uuid4()}"
        uri = job_uri(cluster.name, self._org, project, job_id)
        if request.name is not None:
            clash = await session.scalar(
                select(JobRow.id).where(
                    JobRow.owner_id == user.id,
                    JobRow.name == request.name,
                    JobRow.status.in_([s.value for s in UNFINISHED_STATUSES]),
                )
            )
            if clash is not None:
                raise Conflict(
                    f"you already have an unfinished job named {request.name!r} ({clash})",
                    fields={"name": request.name},
                )
        now = utcnow()
        row = JobRow(
            id=job_id,
            name=request.name,
            owner_id=user.id,
            cluster_id=cluster.id,
            org=self._org,
            project=project,
            uri=uri,
            preset=preset.name,
            cpu=preset.cpu,
            memory_mb=preset.memory_mb,
            gpu=preset.gpu,
            command=list(request.command),
            env=dict(request.env),
            working_dir=request.working_dir,
            tags=list(dict.fromkeys(request.tags)),
            description=request.description,
            life_span_s=request.life_span_s,
            status=JobStatus.PENDING.value,
            reason="Creating",
            created_at=now,
        )
        row.history = [JobStatusRow(status=JobStatus.PENDING.value, reason="Creating", at=now)]
        session.add(row)
        await session.commit()
        job = _job(row, user.name, cluster.name, with_history=True)
        await self._publish(job)
        await self._start_workload(job)
        return job

    def workload_spec(self, job: Job) -> WorkloadSpec:
        env = {**self._base_env, **job.env}
        env.update(
            GLIA_JOB_ID=job.id,
            GLIA_JOB_NAME=job.name or "",
            GLIA_JOB_OWNER=job.owner_name,
            GLIA_CLUSTER=job.cluster_name,
            GLIA_PRESET=job.preset,
        )
        return WorkloadSpec(
            job_id=job.id,
            command=job.command,
            resources=Resources(cpu=job.cpu, memory_mb=job.memory_mb, gpu=job.gpu),
            env=env,
            working_dir=job.working_dir,
            life_span_s=job.life_span_s,
        )

    async def _start_workload(self, job: Job) -> None:
        try:
            gateway = self._gateways.get(job.cluster_name)
            state = await gateway.start(self.workload_spec(job))
        except Exception as exc:  # the cluster's failure must not lose the job record
            logger.exception("starting job %s on cluster %s failed", job.id, job.cluster_name)
            description = exc.message if isinstance(exc, GliaError) else str(exc)
            async with self._db.session() as session:
                await self._transition(
                    session,
                    job.id,
                    JobStatus.FAILED,
                    reason=ExitReason.START_FAILED.value,
                    description=f"the cluster could not start the job: {description}",
                )
            return
        await self.apply_workload_state(state)

    # -- reading ----------------------------------------------------------------------------

    async def get(self, session: AsyncSession, user: User, id_or_name: str) -> Job:
        job = await self._find(session, user, id_or_name)
        await self._acl.require(user.subject, job.uri, Action.READ)
        return job

    async def _find(self, session: AsyncSession, user: User, id_or_name: str) -> Job:
        query = self._select(with_history=True)
        if is_job_id(id_or_name):
            query = query.where(JobRow.id == id_or_name)
        else:
            # A name is the caller's own: the latest of their jobs with it.
            query = (
                query.where(JobRow.owner_id == user.id, JobRow.name == id_or_name)
                .order_by(JobRow.created_at.desc())
                .limit(1)
            )
        found = (await session.execute(query)).unique().first()
        if found is None:
            raise NotFound(f"job {id_or_name!r} not found")
        row, owner_name, cluster_name = found
        return _job(row, owner_name, cluster_name, with_history=True)

    def _select(self, *, with_history: bool) -> Select[JobRow, str, str]:
        query = (
            select(JobRow, UserRow.name, ClusterRow.name)
            .join(UserRow, UserRow.id == JobRow.owner_id)
            .join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
        )
        if with_history:
            # One statement: a job has a handful of history rows to repeat its columns for.
            query = query.options(joinedload(JobRow.history))
        return query

    async def list(
        self,
        session: AsyncSession,
        user: User,
        job_filter: JobFilter,
        *,
        first: int,
        after: str | None = None,
    ) -> JobPage:
        if first < 0:
            raise BadInput("first must not be negative")
        conditions: list[ColumnElement[bool]] = []
        prefixes = self._acl.visible_prefixes(user.subject, "job", Action.READ)
        if prefixes is not None and not prefixes:
            return JobPage(items=[], total_count=0, end_cursor=None, has_next_page=False)
        conditions.append(visible_filter(JobRow.uri, prefixes))
        if job_filter.statuses:
            conditions.append(JobRow.status.in_([s.value for s in job_filter.statuses]))
        if job_filter.name is not None:
            conditions.append(JobRow.name == job_filter.name)
        if job_filter.since is not None:
            conditions.append(JobRow.created_at >= job_filter.since)
        if job_filter.cluster is not None:
            conditions.append(ClusterRow.name == job_filter.cluster)
        total = (
            await session.scalar(
                select(func.count())
                .select_from(JobRow)
                .join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
                .where(*conditions)
            )
            if not job_filter.tags
            else None
        )
        page_conditions = list(conditions)
        if after is not None:
            created, job_id = _decode_cursor(after)
            page_conditions.append(
                or_(
                    JobRow.created_at < created,
                    and_(JobRow.created_at == created, JobRow.id < job_id),
                )
            )
        query = (
            self._select(with_history=False)
            .where(*page_conditions)
            .order_by(JobRow.created_at.desc(), JobRow.id.desc())
        )
        items: list[Job] = []
        if job_filter.tags:
            # Tags live in a JSON list: filter them here, portable across dialects.
            wanted = set(job_filter.tags)
            matching = [
                _job(row, owner, cluster, with_history=False)
                for row, owner, cluster in (await session.execute(query)).all()
                if wanted <= set(row.tags)
            ]
            items = matching[: first + 1]
            total = len(matching) if after is None else None
        else:
            rows = (await session.execute(query.limit(first + 1))).all()
            items = [_job(row, owner, cluster, with_history=False) for row, owner, cluster in rows]
        has_next = len(items) > first
        items = items[:first]
        end_cursor = encode_cursor(items[-1].created_at, items[-1].id) if items else None
        return JobPage(
            items=items,
            total_count=total if total is not None else len(items),
            end_cursor=end_cursor,
            has_next_page=has_next,
        )

    async def history(
        self, session: AsyncSession, job_ids: Sequence[str]
    ) -> builtins.list[tuple[JobStatusItem, ...]]:
        rows = await session.scalars(
            select(JobStatusRow)
            .where(JobStatusRow.job_id.in_(set(job_ids)))
            .order_by(JobStatusRow.id)
        )
        by_job: dict[str, list[JobStatusItem]] = {job_id: [] for job_id in job_ids}
        for h in rows:
            by_job[h.job_id].append(_status_item(h))
        return [tuple(by_job[job_id]) for job_id in job_ids]

    async def count_by_status(self, session: AsyncSession) -> dict[JobStatus, int]:
        rows = await session.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
        counts = {status: 0 for status in JobStatus}
        for status, count in rows.all():
            counts[JobStatus(status)] = count
        return counts

    # -- kill -------------------------------------------------------------------------------

    async def kill(self, session: AsyncSession, user: User, id_or_name: str) -> Job:
        job = await self._find(session, user, id_or_name)
        await self._acl.require(user.subject, job.uri, Action.WRITE)
        if job.status.is_finished:
            return job
        async with self._bus.subscribe(status_channel(job.id)) as updates:
            gateway = self._gateways.get(job.cluster_name)
            state = await gateway.state(job.id)
            if state.phase in (WorkloadPhase.MISSING, WorkloadPhase.EXITED) and state.reason in (
                None,
                ExitReason.LOST,
            ):
                # Nothing runs: the kill is the end of it.
                await self._transition(
                    session,
                    job.id,
                    JobStatus.CANCELLED,
                    reason=ExitReason.USER_REQUESTED.value,
                    description=f"killed by {user.name}",
                )
            else:
                await gateway.stop(job.id, grace_s=self._kill_grace_s)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_KILL_WAIT_S):
                        async for message in updates:
                            if JobStatus(message["status"]).is_finished:
                                break
        session.expire_all()
        return await self._find(session, user, job.id)

    # -- status machine -----------------------------------------------------------------------

    async def apply_workload_state(self, state: WorkloadState) -> None:
        """Bring a job's status in line with what its cluster reports."""
        if state.phase not in (WorkloadPhase.RUNNING, WorkloadPhase.EXITED):
            return  # pending is where every job starts; missing is reconcile's call
        async with self._db.session() as session:
            row = await session.get(JobRow, state.job_id)
            if row is None:
                return
            current = JobStatus(row.status)
            if current.is_finished:
                return
            if state.phase is WorkloadPhase.RUNNING and current is not JobStatus.RUNNING:
                await self._transition(
                    session,
                    row.id,
                    JobStatus.RUNNING,
                    reason=None,
                    at=state.started_at,
                )
            elif state.phase is WorkloadPhase.EXITED:
                if state.started_at is not None and current is JobStatus.PENDING:
                    # It ran and ended between two looks: keep the running step in the history.
                    await self._transition(
                        session, row.id, JobStatus.RUNNING, reason=None, at=state.started_at
                    )
                final = status_for_exit(state.reason, state.exit_code)
                await self._transition(
                    session,
                    row.id,
                    final,
                    reason=(state.reason.value if state.reason else None),
                    description=state.description,
                    exit_code=state.exit_code,
                    at=state.finished_at,
                )

    async def _transition(
        self,
        session: AsyncSession,
        job_id: str,
        new: JobStatus,
        *,
        reason: str | None,
        description: str | None = None,
        exit_code: int | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Move a job to ``new`` unless another writer moved it first; True when this one did.

        The status check and the write are one statement, so it holds across processes.
        """
        at = at or utcnow()
        predecessors = [old.value for old in JobStatus if can_transition(old, new)]
        values: dict[str, object] = {
            "status": new.value,
            "reason": reason,
            "status_description": description,
            "exit_code": exit_code,
        }
        if new is JobStatus.RUNNING:
            values["started_at"] = at
        if new.is_finished:
            values["finished_at"] = at
        created_at = await session.scalar(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status.in_(predecessors))
            .values(**values)
            .returning(JobRow.created_at)
            .execution_options(synchronize_session=False)
        )
        if created_at is None:
            await session.rollback()
            return False
        await session.execute(
            insert(JobStatusRow).values(
                job_id=job_id,
                status=new.value,
                reason=reason,
                description=description,
                exit_code=exit_code,
                at=at,
            )
        )
        await session.commit()
        if new is JobStatus.RUNNING:
            self._metrics.job_start_latency.observe(max(0.0, (at - created_at).total_seconds()))
        await self._bus.publish(
            status_channel(job_id),
            {"job_id": job_id, "status": new.value, "reason": reason, "exit_code": exit_code},
        )
        return True

    async def _publish(self, job: Job) -> None:
        await self._bus.publish(
            status_channel(job.id),
            {"job_id": job.id, "status": job.status.value, "reason": job.reason, "exit_code": None},
        )

    # -- reconciliation ---------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Compare every cluster's workloads with the unfinished jobs, and fix what differs.

        - a workload's state the control plane missed (it was down, a message was lost) is
          applied;
        - a pending job its cluster does not know is started (the control plane stopped
          between storing it and starting it);
        - a running job its cluster lost is failed with reason Lost;
        - a workload with no unfinished job is stopped: nothing runs that nobody tracks.
        """
        for cluster_name, gateway in self._gateways.items():
            try:
                workloads = {w.job_id: w for w in await gateway.list_workloads()}
            except Exception:
                logger.exception("reconcile: cluster %s did not answer", cluster_name)
                continue
            async with self._db.session() as session:
                rows = (
                    await session.execute(
                        self._select(with_history=False).where(
                            ClusterRow.name == cluster_name,
                            JobRow.status.in_([s.value for s in UNFINISHED_STATUSES]),
                        )
                    )
                ).all()
            unfinished = {
                row.id: _job(row, owner, cluster, with_history=False)
                for row, owner, cluster in rows
            }
            now = utcnow()
            for job_id, job in unfinished.items():
                workload = workloads.get(job_id)
                try:
                    if workload is not None and workload.phase is not WorkloadPhase.MISSING:
                        await self.apply_workload_state(workload)
                    elif now - job.created_at < _RECONCILE_GRACE:
                        continue
                    elif job.status is JobStatus.PENDING:
                        logger.info("reconcile: starting job %s its cluster does not know", job_id)
                        await self._start_workload(job)
                    else:
                        async with self._db.session() as session:
                            await self._transition(
                                session,
                                job_id,
                                JobStatus.FAILED,
                                reason=ExitReason.LOST.value,
                                description=f"cluster {cluster_name} has no record of this job",
                            )
                except Exception:
                    logger.exception("reconcile: job %s", job_id)
            for job_id, workload in workloads.items():
                if job_id in unfinished or workload.phase in (
                    WorkloadPhase.EXITED,
                    WorkloadPhase.MISSING,
                ):
                    continue
                logger.warning(
                    "reconcile: stopping workload %s that no unfinished job owns", job_id
                )
                try:
                    await gateway.stop(job_id, grace_s=self._kill_grace_s)
                except Exception:
                    logger.exception("reconcile: stopping orphan %s", job_id)

    async def follow_cluster(self, cluster_name: str) -> None:
        """Apply every state change a cluster reports, as it happens (a background task)."""
        gateway = self._gateways.get(cluster_name)
        async for state in gateway.watch():
            try:
                await self.apply_workload_state(state)
            except Exception:
                logger.exception("applying the state of job %s", state.job_id)
