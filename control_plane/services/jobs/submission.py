"""Submission: from a validated `JobSubmission` to a stored job whose workload is starting."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import NoReturn

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cluster_gateway.gateway import WorkloadSpec
from control_plane.services.acl import AclService
from control_plane.services.auth import AuthService
from control_plane.services.clusters import ClustersService, GatewayRegistry
from control_plane.services.jobs.records import find_job, job_from_row
from control_plane.services.jobs.status import JobStatusMachine
from control_plane.services.orgs import OrgsService
from control_plane.services.projects import ProjectsService
from control_plane.services.quotas import QuotasService, Scope
from control_plane.services.storage import check_storage_workdir
from control_plane.services.volumes import JobPlace, VolumesService
from control_plane.store.database import Database
from control_plane.store.models import JobRow, JobStatusRow, JobTagRow, UserRow
from glia.acl import Action
from glia.auth import User, UserKind
from glia.clock import utcnow
from glia.errors import (
    BadInput,
    Conflict,
    Forbidden,
    GliaError,
    NotFound,
    QuotaExceeded,
    Unavailable,
)
from glia.jobs import (
    JOB_ID_PREFIX,
    UNFINISHED_STATUSES,
    Job,
    JobReason,
    JobStatus,
    JobSubmission,
    job_host_label,
    job_uri,
)
from glia.tenancy import cluster_uri, project_resources_uri
from glia.volumes import VolumeKind

logger = logging.getLogger(__name__)


class JobSubmitter:
    def __init__(
        self,
        *,
        db: Database,
        acl: AclService,
        auth: AuthService,
        clusters: ClustersService,
        gateways: GatewayRegistry,
        status: JobStatusMachine,
        orgs: OrgsService,
        projects: ProjectsService,
        quotas: QuotasService,
        volumes: VolumesService,
        base_env: Mapping[str, str],
        max_unfinished: int,
        job_url: Callable[[str], str] = lambda label: f"http://{label}.jobs.localhost/",
        api_url: str = "http://127.0.0.1:8080",
    ) -> None:
        self._db = db
        self._acl = acl
        self._auth = auth
        self._clusters = clusters
        self._gateways = gateways
        self._status = status
        self._orgs = orgs
        self._projects = projects
        self._quotas = quotas
        self._volumes = volumes
        self._base_env = dict(base_env)
        # Unfinished jobs one user may have (GLIA_MAX_UNFINISHED_JOBS_PER_USER).
        self._max_unfinished = max_unfinished
        # Asks for a scheduling pass of the cluster named (`Scheduler.request`): a stored job
        # waits in its cluster's queue until the scheduler starts it.
        self.on_submitted: Callable[..., Awaitable[None]] = _nothing
        # An exposed job's URL from its host label, and the API's URL (for --pass-config).
        self._job_url = job_url
        self._api_url = api_url

    async def submit(self, session: AsyncSession, user: User, submission: JobSubmission) -> Job:
        if submission.idempotency_key is not None:
            earlier = await self._submitted(session, user, submission)
            if earlier is not None:
                return earlier
        cluster_name = submission.cluster or await self._clusters.default_name(session)
        cluster = await self._clusters.get(session, cluster_name)
        if not cluster.status.takes_jobs:
            # Refused at once rather than queued: a job stored for a cluster that may never
            # come back would wait unseen (docs/clusters.md).
            raise Unavailable(
                f"cluster {cluster.name!r} takes no jobs now: it is {cluster.status.value}; "
                "try again later or choose another cluster with --cluster",
                fields={"cluster": cluster.status.value},
            )
        preset = cluster.preset(submission.preset)
        if preset is None:
            known = ", ".join(p.name for p in cluster.presets) or "none"
            raise BadInput(
                f"unknown preset {submission.preset!r} on cluster {cluster.name!r} "
                f"(presets: {known})",
                fields={"preset": f"unknown on cluster {cluster.name!r}"},
            )
        org, project = await self._place(session, user, submission)
        await self._projects.row(session, user, org, project)  # NotFound unless visible
        if not await self._acl.check(user.subject, cluster_uri(cluster.name), Action.READ):
            raise NotFound(f"cluster {cluster.name!r} not found", fields={"cluster": "not found"})
        jobs_root = project_resources_uri("job", cluster.name, org, project)
        if not await self._acl.check(user.subject, jobs_root, Action.WRITE):
            if cluster.name not in await self._orgs.cluster_names(session, org):
                raise Forbidden(
                    f"org {org!r} may not use cluster {cluster.name!r}: its admins can ask a "
                    "platform admin to add it",
                    fields={"cluster": f"not one of org {org!r}'s clusters"},
                )
            raise Forbidden(
                f"you may read project {org}/{project} but not run jobs in it: its writers may",
                fields={"project": "not a writer"},
            )
        if submission.storage_workdir is not None:
            await check_storage_workdir(self._acl, user, cluster.name, submission.storage_workdir)
        volumes, secret_env = await self._volumes.resolve(
            session,
            user,
            JobPlace(cluster=cluster.name, org=org, project=project),
            submission.volumes,
            submission.secret_env,
        )
        shares = [await self._orgs.member_subject(session, name) for name in submission.share]
        await self._check_unfinished(session, user)
        job_id = f"{JOB_ID_PREFIX}{uuid.uuid4()}"
        uid = (await self._auth.uids_by_ids(session, [user.id])).get(user.id)
        # The seat is taken last before the job's row is written: what it locks is held to
        # the commit, and on SQLite its lock must be the transaction's first write.
        scope = Scope(
            org=org, cluster=cluster.name, cluster_id=cluster.id, user=user.name, user_id=user.id
        )
        try:
            seat_wait = await self._quotas.take_seat(session, scope, wait=submission.wait_for_seat)
        except QuotaExceeded:
            await session.rollback()
            raise
        now = utcnow()
        row = JobRow(
            id=job_id,
            name=submission.name,
            active_name=submission.name,
            owner_id=user.id,
            cluster_id=cluster.id,
            org=org,
            project=project,
            uri=job_uri(cluster.name, org, project, job_id),
            preset=preset.name,
            cpu=preset.resources.cpu,
            memory_mb=preset.resources.memory_mb,
            gpu=preset.resources.gpu,
            pids_limit=preset.resources.pids_limit,
            uid=uid,
            idempotency_key=submission.idempotency_key,
            command=list(submission.command),
            env=submission.environment,
            working_dir=submission.working_dir,
            storage_workdir=submission.storage_workdir,
            volumes=[volume.model_dump(mode="json") for volume in volumes],
            secret_env=[var.model_dump(mode="json") for var in secret_env],
            tags=list(submission.tags),
            description=submission.description,
            life_span_s=submission.life_span_s
            if submission.life_span_s is not None
            else cluster.default_life_span_s,
            gpu_model=preset.resources.gpu_model,
            shm_mb=preset.resources.shm_mb,
            priority=submission.priority.rank,
            schedule_timeout_s=submission.schedule_timeout_s,
            restart_policy=submission.restart_policy.value,
            restart_count=0,
            http_port=submission.http_port,
            http_auth=submission.http_auth,
            pass_config=submission.pass_config,
            tty=submission.tty,
            preemptible=preset.preemptible,
            credits_per_hour=preset.credits_per_hour,
            seat_wait=seat_wait is not None,
            status=JobStatus.PENDING.value,
            reason=(JobReason.CREATING if seat_wait is None else JobReason.QUOTA_EXHAUSTED).value,
            status_description=seat_wait,
            created_at=now,
        )
        row.history = [
            JobStatusRow(
                status=JobStatus.PENDING.value,
                reason=row.reason,
                description=seat_wait,
                at=now,
            )
        ]
        if submission.http_port is not None:
            row.http_host = await self._host_label(session, job_id, submission.name, user)
            row.http_url = self._job_url(row.http_host)
        session.add(row)
        session.add_all(JobTagRow(job_id=job_id, tag=tag) for tag in submission.tags)
        # The owner manages their job (shares it, kills it) whatever their project role; the
        # grants commit with the job.
        grants = self._acl.stage_grants(
            session,
            [(user.subject, row.uri, Action.MANAGE)]
            + [(subject, row.uri, Action.READ) for subject in shares if subject != user.subject],
        )
        try:
            await session.commit()
        except IntegrityError:
            # A race the unique indexes decided: the same idempotency key submitted at the same
            # moment by a retry, or the name taken by another unfinished job of the owner.
            await session.rollback()
            if submission.idempotency_key is not None:
                earlier = await self._submitted(session, user, submission)
                if earlier is not None:
                    return earlier
            if submission.name is not None:
                await self._name_taken(session, user, submission.name)
            raise
        job = job_from_row(row, user, cluster.name, with_history=True)
        await self._acl.grants_committed(grants)
        await self._status.announce(job.id, job.status)
        await self.on_submitted(cluster.name, seat_wait=seat_wait is not None)
        return job

    async def _check_unfinished(self, session: AsyncSession, user: User) -> None:
        """QuotaExceeded when ``user`` has as many unfinished jobs as one user may have. A
        count, not a lock: submissions at the same moment may pass it together, by as many
        as they are; what it bounds is a queue that one account fills without end."""
        held = await session.scalar(
            select(func.count()).select_from(
                select(JobRow.id)
                .where(
                    JobRow.owner_id == user.id,
                    JobRow.status.in_([s.value for s in UNFINISHED_STATUSES]),
                )
                .limit(self._max_unfinished)
                .subquery()
            )
        )
        if held is not None and held >= self._max_unfinished:
            raise QuotaExceeded(
                f"you have {self._max_unfinished} unfinished jobs, the most one user may "
                "have: wait for some to finish, or kill some (glia ps, glia kill)",
                fields={"jobs": f"at most {self._max_unfinished} unfinished"},
            )

    async def _host_label(
        self, session: AsyncSession, job_id: str, name: str | None, user: User
    ) -> str:
        """`NAME--OWNER`, unless an unfinished job of another owner holds it (a user named
        ``alice--ci`` beside the service account ``alice/ci``): the job's id then."""
        label = job_host_label(job_id, name, user.name)
        holder = await session.scalar(
            select(JobRow.owner_id).where(
                JobRow.http_host == label,
                JobRow.status.in_([s.value for s in UNFINISHED_STATUSES]),
                JobRow.owner_id != user.id,
            )
        )
        return job_id if holder is not None else label

    async def _place(
        self, session: AsyncSession, user: User, submission: JobSubmission
    ) -> tuple[str, str]:
        """The org and project a job goes in: the ones named, else the caller's personal
        project (a service account's own project)."""
        if submission.project is not None:
            return submission.org or user.name, submission.project
        if user.kind is UserKind.SERVICE_ACCOUNT:
            row = await session.get(UserRow, user.id)
            if row is None or row.org is None or row.project is None:
                raise BadInput(
                    "this service account was made for no project: name the project to run in",
                    fields={"project": "required"},
                )
            return row.org, row.project
        if submission.org is not None and submission.org != user.name:
            raise BadInput(
                f"name the project to run in, in org {submission.org!r}",
                fields={"project": "required with org"},
            )
        return user.name, user.name

    async def _name_taken(self, session: AsyncSession, user: User, name: str) -> NoReturn:
        """The Conflict for a submission whose insert found ``name`` held by another of
        ``user``'s unfinished jobs."""
        holder = await session.scalar(
            select(JobRow.id).where(JobRow.owner_id == user.id, JobRow.active_name == name)
        )
        if holder is None:  # it finished between the insert and this read
            raise Conflict(
                f"the name {name!r} was held by a job that has just finished: submit again",
                fields={"name": "held by a job that has just finished"},
            )
        raise Conflict(
            f"you already have an unfinished job named {name!r} ({holder})",
            fields={"name": f"taken by unfinished job {holder}"},
        )

    async def _submitted(
        self, session: AsyncSession, user: User, submission: JobSubmission
    ) -> Job | None:
        """The job an earlier submission with the same idempotency key made, if any."""
        job_id = await session.scalar(
            select(JobRow.id).where(
                JobRow.owner_id == user.id, JobRow.idempotency_key == submission.idempotency_key
            )
        )
        if job_id is None:
            return None
        job = await find_job(session, user, job_id)
        if job.command != submission.command:
            raise Conflict(
                f"the idempotency key {submission.idempotency_key!r} was used for another job "
                f"({job.id}, {' '.join(job.command)!r})",
                fields={"idempotencyKey": f"used for job {job.id}"},
            )
        return job

    def workload_spec(
        self, job: Job, uid: int | None, *, config_token: str | None = None
    ) -> WorkloadSpec:
        env = {**self._base_env, **{k: v for k, v in job.env.items() if v is not None}}
        env.update(
            GLIA_JOB_ID=job.id,
            GLIA_JOB_NAME=job.name or "",
            GLIA_JOB_OWNER=job.owner.name,
            GLIA_JOB_ORG=job.org,
            GLIA_JOB_PROJECT=job.project,
            GLIA_CLUSTER=job.cluster_name,
            GLIA_PRESET=job.preset,
        )
        if job.http_port is not None and job.http_url is not None:
            env.update(GLIA_HTTP_PORT=str(job.http_port), GLIA_JOB_URL=job.http_url)
        if config_token is not None:
            # What the CLI and SDK read when they find no config file (sdk/config.py).
            env.update(GLIA_API_URL=self._api_url, GLIA_TOKEN=config_token)
        return WorkloadSpec(
            job_id=job.id,
            command=job.command,
            resources=job.resources,
            env=env,
            working_dir=job.working_dir,
            storage_workdir=job.storage_workdir,
            volumes=job.volumes,
            life_span_s=job.life_span_s,
            uid=uid,
            gid=uid,
            tty=job.tty,
            priority=job.priority,
        )

    async def start_workload(self, job: Job, uid: int | None) -> None:
        """Ask the job's cluster to run it (as ``uid``); a cluster that fails to fails the job,
        it never loses the record."""
        try:
            gateway = self._gateways.get(job.cluster_name)
            config_token = await self._config_token(job) if job.pass_config else None
            spec = self.workload_spec(job, uid, config_token=config_token)
            async with self._db.session() as session:
                limit = await self._quotas.org_running_limit(session, job.org, job.cluster_name)
                sizes = await self._volumes.disk_sizes(session, job.volumes)
            spec = spec.model_copy(update={"disk_sizes": sizes, "running_limit": limit})
            if job.secret_env or any(v.kind is VolumeKind.SECRET for v in job.volumes):
                # Opened now, for the owner as they are allowed now: never stored opened.
                async with self._db.session() as session:
                    files, values = await self._volumes.reveal(
                        session, job.owner, job.volumes, job.secret_env
                    )
                spec = spec.model_copy(update={"secret_files": tuple(files), "secret_env": values})
            state = await gateway.start(spec)
        except Unavailable as exc:
            # The gateway does not answer: the job stays pending, marked so, and the
            # reconcile starts it once the gateway answers again (it does not know the job).
            logger.warning(
                "starting job %s: cluster %s unreachable: %s", job.id, job.cluster_name, exc.message
            )
            async with self._db.session() as session:
                await session.execute(
                    update(JobRow)
                    .where(JobRow.id == job.id, JobRow.status == JobStatus.PENDING.value)
                    .values(
                        reason=JobReason.GATEWAY_UNREACHABLE.value,
                        status_description=f"waiting for cluster {job.cluster_name}: {exc.message}",
                    )
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
            await self._status.announce(job.id, JobStatus.PENDING)
            return
        except Exception as exc:
            # The spec holds the job's token (--pass-config): its message and traceback, not
            # the spec, go to the log and the job's status.
            logger.error(
                "starting job %s on cluster %s failed: %s",
                job.id,
                job.cluster_name,
                type(exc).__name__,
            )
            description = exc.message if isinstance(exc, GliaError) else type(exc).__name__
            async with self._db.session() as session:
                await self._status.transition(
                    session,
                    job.id,
                    JobStatus.FAILED,
                    reason=JobReason.START_FAILED,
                    description=f"the cluster could not start the job: {description}",
                )
            return
        await self._status.apply(state)

    async def _config_token(self, job: Job) -> str:
        """A token acting for the job's owner while it runs (--pass-config); it replaces the
        one an earlier start gave (a reconcile that starts the job again), and the job's end
        revokes it (`JobStatusMachine.transition`). Only its id is stored."""
        ttl = timedelta(seconds=job.life_span_s + 60) if job.life_span_s else None
        async with self._db.session() as session:
            earlier = await session.scalar(
                select(JobRow.config_token_id).where(JobRow.id == job.id)
            )
            if earlier is not None:
                await self._auth.revoke_token(session, earlier)
            token_id, token = await self._auth.issue_token_with_id(
                session, job.owner.id, description=f"job {job.id} (--pass-config)", ttl=ttl
            )
            stored = await session.scalar(
                update(JobRow)
                .where(
                    JobRow.id == job.id,
                    JobRow.status.in_([s.value for s in UNFINISHED_STATUSES]),
                )
                .values(config_token_id=token_id)
                .returning(JobRow.id)
            )
            await session.commit()
            if stored is None:  # it ended meanwhile: nothing would revoke the token later
                await self._auth.revoke_token(session, token_id)
        return token


async def _nothing(cluster: str, *, seat_wait: bool = False) -> None:
    """No scheduler attached: jobs wait until one is (the platform attaches its own)."""
