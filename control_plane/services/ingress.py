"""Ingress: who may reach an exposed job's URL, and where the job listens.

An exposed job (``glia run --http-port``) has a host name ``LABEL.<jobs domain>``; the job
proxy (`server/proxy.py`) and ``/auth/forward`` (for nginx's auth_request and Traefik's
ForwardAuth) find the job by that label, or by its id, and let a request through when the
job is unfinished and either its URL needs no sign-in (``--no-http-auth``) or the caller may
read the job. A caller who may not read it gets the answer a job that does not exist gets:
401 without credentials, 403 with them.

Callers prove who they are with an API token (``Authorization: Bearer``, scripts) or with a
browser session made for that one host name (the ``glia_session`` cookie, set by the login
form; `AuthService.issue_ingress_session`), which the API itself refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from control_plane.services.acl import AclService
from control_plane.services.auth import AuthService, Identity, user_from_row
from control_plane.store.database import Database
from control_plane.store.models import ClusterRow, JobRow, UserRow
from glia.acl import Action
from glia.auth import User
from glia.errors import Forbidden, Unauthenticated
from glia.jobs import UNFINISHED_STATUSES, JobStatus, is_job_id

SESSION_COOKIE = "glia_session"


@dataclass(frozen=True)
class ExposedJob:
    """What the proxy needs of an exposed, unfinished job."""

    id: str
    uri: str
    owner: str
    cluster_name: str
    status: JobStatus
    http_port: int
    http_auth: bool


@dataclass(frozen=True)
class Credentials:
    """What a request brings: an API token, a browser session cookie, the host it was for."""

    host: str
    bearer: str | None = None
    session: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.bearer or self.session)


class IngressService:
    def __init__(
        self, *, db: Database, acl: AclService, auth: AuthService, jobs_domain: str
    ) -> None:
        self._db = db
        self._acl = acl
        self._auth = auth
        self._suffix = "." + jobs_domain.lower().strip(".")

    def host_label(self, host: str) -> str | None:
        """The job label of a host name under the jobs domain; None for any other host.

        ``host_label("app--alice.jobs.localhost:8080") == "app--alice"``
        """
        name = normalize_host(host)
        if not name.endswith(self._suffix):
            return None
        label = name[: -len(self._suffix)]
        return label if label and "." not in label else None

    async def exposed_job(
        self, *, label: str | None = None, job_id: str | None = None
    ) -> ExposedJob | None:
        """The unfinished exposed job of this host label (or id); None when there is none."""
        if job_id is None and label is None:
            return None
        query = (
            select(JobRow, UserRow.name, ClusterRow.name)
            .join(UserRow, UserRow.id == JobRow.owner_id)
            .join(ClusterRow, ClusterRow.id == JobRow.cluster_id)
            .where(
                JobRow.http_port.is_not(None),
                JobRow.status.in_([s.value for s in UNFINISHED_STATUSES]),
            )
            .order_by(JobRow.created_at.desc())
            .limit(1)
        )
        if job_id is not None or (label is not None and is_job_id(label)):
            query = query.where(JobRow.id == (job_id or label))
        else:
            query = query.where(JobRow.http_host == label)
        async with self._db.session() as session:
            found = (await session.execute(query)).first()
        if found is None:
            return None
        row, owner, cluster = found
        if row.http_port is None:  # the query asked for exposed jobs only
            return None
        return ExposedJob(
            id=row.id,
            uri=row.uri,
            owner=owner,
            cluster_name=cluster,
            status=JobStatus(row.status),
            http_port=row.http_port,
            http_auth=row.http_auth,
        )

    async def identify(self, credentials: Credentials) -> Identity | None:
        """Who the credentials belong to; None without any; Unauthenticated for bad ones."""
        if credentials.bearer:
            return await self._auth.identify(credentials.bearer)
        if credentials.session:
            return await self._auth.identify_ingress_session(
                credentials.session, normalize_host(credentials.host)
            )
        return None

    async def authorize(self, job: ExposedJob | None, credentials: Credentials) -> User | None:
        """The caller let through to ``job`` (None: anyone, the job needs no sign-in).

        Unauthenticated without (valid) credentials, Forbidden for a caller who may not read
        the job, or when there is no such job: the same answers either way.
        """
        try:
            identity = await self.identify(credentials)
        except Unauthenticated:
            identity = None
            if job is not None and not job.http_auth:
                return None
            raise
        user = identity.user if identity is not None else None
        if job is not None and not job.http_auth:
            return user
        if user is None:
            raise Unauthenticated("sign in to reach this job")
        if job is None or not await self._acl.check(user.subject, job.uri, Action.READ):
            raise Forbidden("you may not reach this job, or it does not exist or is not running")
        return user

    async def browser_session(self, user: User, host: str) -> str:
        """A new ``glia_session`` cookie value for ``host``."""
        async with self._db.session() as session:
            return await self._auth.issue_ingress_session(session, user, normalize_host(host))

    async def check_password(
        self, *, username: str, password: str, client_address: str | None
    ) -> User:
        async with self._db.session() as session:
            row = await self._auth.check_password(
                session, username=username, password=password, client_address=client_address
            )
        return user_from_row(row)

    @staticmethod
    def target(job: ExposedJob) -> tuple[str, int]:
        """Where the job listens. Jobs of the embedded cluster's local runtime share this
        host's network; other clusters expose jobs through their own ingress (Kubernetes:
        an IngressRoute behind Traefik's ForwardAuth at /auth/forward)."""
        return "127.0.0.1", job.http_port


def normalize_host(host: str) -> str:
    """A Host header without its port, lowercase: ``App.Localhost:80`` → ``app.localhost``."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
