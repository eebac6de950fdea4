"""The async Glia client.

    async with GliaClient(url, token) as client:
        job = await client.jobs.get("job-...")

Queries and mutations go over HTTP (``POST <url>/graphql``, ``Authorization: Bearer``) with
httpx; subscriptions over one shared WebSocket (graphql-transport-ws, token in the
``connection_init`` payload) with gql, in `sdk.subscriptions`, imported on the first
subscription: a command that only queries does not pay for gql and graphql-core. Every HTTP
failure is turned into a ``GliaError`` in ``_http_errors``, every WebSocket one in
`sdk.subscriptions`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import json
import ssl
import uuid
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from glia.auth import NewUser, PasswordChange, Token, User, UserRole, UserUpdate
from glia.clusters import (
    Cluster,
    ClusterConfig,
    ClusterSettingsInput,
    ClusterUpdate,
    DecommissionedCluster,
    NewCluster,
    Preset,
    PresetInput,
    PresetSpec,
    RegisteredCluster,
)
from glia.jobs import (
    JOB_ID_PREFIX,
    EnvVar,
    Job,
    JobFilter,
    JobOrder,
    JobPriority,
    JobStatus,
    JobSubmission,
    RestartPolicy,
    is_job_id,
)
from glia.model import parse_input
from glia.monitoring import LogLine, LogText
from glia.pages import MAX_PAGE_SIZE, Page, PageRequest
from glia.tenancy import ClusterRole, Member
from glia.volumes import SecretEnv, Volume
from sdk import documents
from sdk.blobs import BlobsResource
from sdk.disks import DisksResource
from sdk.errors import (
    Ambiguous,
    BadInput,
    ConnectionFailed,
    ConnectionLost,
    Forbidden,
    GliaError,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    Unavailable,
    error_from_graphql,
)
from sdk.orgs import OrgsResource, ProjectsResource, role_name
from sdk.quotas import QuotasResource
from sdk.resource import Resource
from sdk.secrets import SecretsResource
from sdk.sharing import AclResource, ServiceAccountsResource
from sdk.storage import StorageResource
from sdk.telemetry import TelemetryResource

if TYPE_CHECKING:
    from sdk.exec import ExecResource
    from sdk.subscriptions import Subscriptions

# `job-` and a UUID.
JOB_ID_LENGTH = len(JOB_ID_PREFIX) + 36
# How many candidates an ambiguous id prefix reports.
AMBIGUITY_SHOWN = 10
# Pauses between sending a submission again after its answer was lost (the key makes it safe).
# How long a log follower tries to get back to a server that went away (a restart takes a
# few seconds) before it gives up with the connection's error.
LOG_RECONNECT_S = 60.0
SUBMIT_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying TLS context of every client in the process (httpx's default: certifi's
    CAs, or SSL_CERT_FILE/SSL_CERT_DIR). httpx builds one per client otherwise, loading the
    CA bundle each time: ~16 ms of CPU, as long as a GraphQL round trip, for every
    `GliaClient` the web UI opens per event."""
    return httpx.create_ssl_context()


@contextlib.contextmanager
def _http_errors(url: str) -> Iterator[None]:
    """Turn whatever httpx raises into the ``GliaError`` it means."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ConnectionFailed(f"timed out waiting for the Glia server at {url}") from exc
    except (httpx.TransportError, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        raise ConnectionFailed(f"cannot reach the Glia server at {url}: {detail}") from exc


def _graphql_data(url: str, response: httpx.Response) -> Any:
    """A GraphQL answer's ``data``; its first error, or its HTTP status, raised as a GliaError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        raise error_from_graphql(errors)
    status = response.status_code
    if status >= 400 or not isinstance(body, dict):
        raise _status_error(url, status)
    return body.get("data")


def _status_error(url: str, status: int) -> GliaError:
    if status == 401:
        return Unauthenticated(f"{url}: HTTP 401")
    if status == 403:
        return Forbidden(f"{url}: HTTP 403")
    if status == 404:
        return NotFound(f"{url}: HTTP 404")
    if status == 413:
        return PayloadTooLarge(f"{url}: the request is too large")
    if status in (502, 503, 504):
        return Unavailable(f"the Glia server at {url} is unavailable ({status})")
    return GliaError(f"unexpected answer from {url}: HTTP {status}")


def _byte_route_error(status: int, body: bytes) -> GliaError:
    """A byte route answers failures in the API's error shape; anything else by its status."""
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        errors = None
    if errors:
        return error_from_graphql(errors)
    return _status_error("the byte route", status)


class GliaClient:
    """An async client for one Glia server; use it as an async context manager.

    ``url`` is the server's base URL (``http://127.0.0.1:8080``); ``token`` may be None for
    ``auth.login``, which then sets the token for later calls on the same client.
    """

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._bulk: httpx.AsyncClient | None = None
        self._subscriptions: Subscriptions | None = None
        self.auth = AuthResource(self)
        self.clusters = ClustersResource(self)
        self.jobs = JobsResource(self)
        self.users = UsersResource(self)
        self.orgs = OrgsResource(self)
        self.projects = ProjectsResource(self)
        self.acl = AclResource(self)
        self.service_accounts = ServiceAccountsResource(self)
        self.blobs = BlobsResource(self)
        self.secrets = SecretsResource(self)
        self.storage = StorageResource(self)
        self.quotas = QuotasResource(self)
        self.disks = DisksResource(self)
        self.telemetry = TelemetryResource(self)

    @property
    def exec(self) -> ExecResource:
        """Exec, attach and port-forward (`sdk.exec`, imported on first use)."""
        from sdk.exec import ExecResource

        return ExecResource(self)

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def websocket_url(self) -> str:
        if self.graphql_url.startswith("https://"):
            return "wss://" + self.graphql_url.removeprefix("https://")
        return "ws://" + self.graphql_url.removeprefix("http://")

    async def __aenter__(self) -> GliaClient:
        # Connecting only creates the httpx client: no request is sent until the first call.
        self._http = httpx.AsyncClient(timeout=self.timeout, verify=tls_context())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._subscriptions is not None:
            await self._subscriptions.aclose()
            self._subscriptions = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._bulk is not None:
            await self._bulk.aclose()
            self._bulk = None

    def bulk_http(self) -> httpx.AsyncClient:
        """The client of bulk byte transfers (`sdk.bulk`), made on its first use."""
        if self._http is None:
            raise RuntimeError("use GliaClient as 'async with GliaClient(...) as client'")
        if self._bulk is None:
            from sdk.bulk import bulk_client

            self._bulk = bulk_client(self.timeout)
        return self._bulk

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def execute(self, document: str, variables: Mapping[str, Any] | None = None) -> Any:
        """Run a query or mutation; returns its ``data`` or raises the mapped ``GliaError``."""
        if self._http is None:
            raise RuntimeError("use GliaClient as 'async with GliaClient(...) as client'")
        payload: dict[str, Any] = {"query": document}
        if variables:
            payload["variables"] = dict(variables)
        with _http_errors(self.url):
            response = await self._http.post(
                self.graphql_url, json=payload, headers=self._headers()
            )
        return _graphql_data(self.url, response)

    async def download(self, url: str, *, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """The bytes of a byte route the API handed out (``url``), from ``offset``."""
        if self._http is None:
            raise RuntimeError("use GliaClient as 'async with GliaClient(...) as client'")
        params = {"offset": str(offset)} if offset else None
        with _http_errors(self.url):
            async with self._http.stream(
                "GET", url, headers=self._headers(), params=params
            ) as response:
                if response.status_code >= 400:
                    raise _byte_route_error(response.status_code, await response.aread())
                async for chunk in response.aiter_bytes():
                    yield chunk

    async def subscribe(
        self, document: str, variables: Mapping[str, Any] | None = None
    ) -> AsyncGenerator[Any, None]:
        """Each ``data`` of a subscription (see `sdk.subscriptions.Subscriptions`)."""
        if self._subscriptions is None:
            from sdk.subscriptions import Subscriptions

            self._subscriptions = Subscriptions(
                self.websocket_url, lambda: self.token, timeout=self.timeout
            )
        async for data in self._subscriptions.subscribe(document, variables):
            yield data


class AuthResource(Resource):
    async def login(self, username: str, password: str) -> tuple[str, User]:
        """Log in; returns the new token and the user, and makes the client use the token."""
        data = await self._client.execute(
            documents.LOGIN, {"input": {"username": username, "password": password}}
        )
        token = data["login"]["token"]
        self._client.token = token
        return token, User.model_validate(data["login"]["user"])

    async def logout(self) -> None:
        """Revoke the client's token on the server and forget it."""
        await self._client.execute(documents.LOGOUT)
        self._client.token = None

    async def me(self) -> User:
        data = await self._client.execute(documents.ME)
        return User.model_validate(data["me"])

    async def create_user(
        self,
        name: str,
        email: str | None = None,
        role: UserRole | str = UserRole.USER,
        password: str | None = None,
    ) -> tuple[User, str | None]:
        """Create a user (admins only); the password is returned only when the server made it."""
        new = parse_input(
            NewUser, {"name": name, "email": email, "role": role, "password": password}
        )
        data = await self._client.execute(documents.CREATE_USER, {"input": new.to_wire()})
        payload = data["createUser"]
        return User.model_validate(payload["user"]), payload.get("password")

    async def change_password(self, current: str, new: str) -> None:
        """Change the caller's own password; their other tokens are revoked."""
        change = parse_input(PasswordChange, {"current_password": current, "new_password": new})
        await self._client.execute(documents.CHANGE_PASSWORD, {"input": change.to_wire()})

    async def tokens(self) -> builtins.list[Token]:
        """The caller's tokens that still work, newest first."""
        data = await self._client.execute(documents.TOKENS)
        return [Token.model_validate(token) for token in data["tokens"]]

    async def revoke_token(self, token_id: str) -> None:
        """Revoke one of the caller's own tokens."""
        await self._client.execute(documents.REVOKE_TOKEN, {"input": {"id": token_id}})


class UsersResource(Resource):
    async def list(self) -> builtins.list[User]:
        """Every user, by name (admins only)."""
        users: builtins.list[User] = []
        after: str | None = None
        while True:
            data = await self._client.execute(
                documents.USERS, {"first": MAX_PAGE_SIZE, "after": after}
            )
            page = data["users"]
            users += [User.model_validate(edge["node"]) for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return users
            after = page["pageInfo"]["endCursor"]

    async def get(self, name: str) -> User:
        data = await self._client.execute(documents.USER, {"name": name})
        return User.model_validate(data["user"])

    async def update(
        self, name: str, *, email: str | None = None, role: UserRole | str | None = None
    ) -> User:
        """Change a user's email or role (admins only); None leaves a field as it is."""
        update = parse_input(UserUpdate, {"email": email, "role": role})
        variables = {"input": {"name": name, **update.to_wire()}}
        data = await self._client.execute(documents.UPDATE_USER, variables)
        return User.model_validate(data["updateUser"]["user"])

    async def delete(self, name: str) -> int:
        """Delete a user (admins only); returns how many of their jobs were stopped."""
        data = await self._client.execute(documents.DELETE_USER, {"input": {"name": name}})
        return int(data["deleteUser"]["stoppedJobs"])

    async def reset_password(self, name: str) -> str:
        """A new generated password for the user (admins only), returned once."""
        data = await self._client.execute(documents.RESET_PASSWORD, {"input": {"name": name}})
        return str(data["resetPassword"]["password"])


class ClustersResource(Resource):
    async def list(self) -> builtins.list[Cluster]:
        data = await self._client.execute(documents.CLUSTERS)
        return [Cluster.model_validate(c) for c in data["clusters"]]

    async def get(self, name: str) -> Cluster:
        data = await self._client.execute(documents.CLUSTER, {"name": name})
        if data["cluster"] is None:
            raise NotFound(f"no cluster {name!r}")
        return Cluster.model_validate(data["cluster"])

    async def users(self, cluster: str) -> builtins.list[Member]:
        """The users given a role on a cluster itself (its managers and admins may look);
        an org's members use the clusters of their org without one."""
        data = await self._client.execute(documents.CLUSTER_USERS, {"cluster": cluster})
        return [Member.model_validate(member) for member in data["clusterUsers"]]

    async def set_user(
        self, cluster: str, user: str, role: ClusterRole | str = ClusterRole.USER
    ) -> Member:
        """Give a user a role on a cluster: admin, manager or user."""
        variables = {
            "input": {"cluster": cluster, "user": user, "role": role_name(ClusterRole, role)}
        }
        data = await self._client.execute(documents.SET_CLUSTER_USER, variables)
        return Member.model_validate(data["setClusterUser"]["member"])

    async def remove_user(self, cluster: str, user: str) -> Member:
        """Take a user's role on a cluster away."""
        variables = {"input": {"cluster": cluster, "user": user}}
        data = await self._client.execute(documents.REMOVE_CLUSTER_USER, variables)
        return Member.model_validate(data["removeClusterUser"]["member"])

    async def add_preset(
        self,
        cluster: str,
        name: str,
        *,
        cpu: float,
        memory_mb: int,
        gpu: int = 0,
        gpu_model: str | None = None,
        shm_mb: int | None = None,
        pids_limit: int = 1024,
        credits_per_hour: float = 0.0,
        preemptible: bool = False,
        scheduler_enabled: bool = True,
    ) -> Preset:
        """Add a preset to a cluster (its admins may)."""
        new = parse_input(
            PresetInput,
            {
                "cluster": cluster,
                "name": name,
                "cpu": cpu,
                "memory_mb": memory_mb,
                "gpu": gpu,
                "gpu_model": gpu_model,
                "shm_mb": shm_mb,
                "pids_limit": pids_limit,
                "credits_per_hour": credits_per_hour,
                "preemptible": preemptible,
                "scheduler_enabled": scheduler_enabled,
            },
        )
        data = await self._client.execute(documents.ADD_PRESET, {"input": new.to_wire()})
        return Preset.model_validate(data["addPreset"]["preset"])

    async def update_preset(self, cluster: str, name: str, **changes: Any) -> Preset:
        """Change a cluster's preset (its admins may): the fields given (``add_preset``'s
        keywords), the others as they are."""
        current = (await self.get(cluster)).preset(name)
        if current is None:
            raise NotFound(f"cluster {cluster!r} has no preset {name!r}")
        resources = current.resources
        values: dict[str, Any] = {
            "cluster": cluster,
            "name": name,
            "cpu": resources.cpu,
            "memory_mb": resources.memory_mb,
            "gpu": resources.gpu,
            "gpu_model": resources.gpu_model,
            "shm_mb": resources.shm_mb,
            "pids_limit": resources.pids_limit,
            "credits_per_hour": current.credits_per_hour,
            "preemptible": current.preemptible,
            "scheduler_enabled": current.scheduler_enabled,
        }
        unknown = changes.keys() - values.keys()
        if unknown:
            raise TypeError(f"update_preset: unknown fields {sorted(unknown)}")
        new = parse_input(PresetInput, {**values, **changes})
        data = await self._client.execute(documents.UPDATE_PRESET, {"input": new.to_wire()})
        return Preset.model_validate(data["updatePreset"]["preset"])

    async def remove_preset(self, cluster: str, name: str) -> Preset:
        """Remove a preset from a cluster (its admins may)."""
        variables = {"input": {"cluster": cluster, "name": name}}
        data = await self._client.execute(documents.REMOVE_PRESET, variables)
        return Preset.model_validate(data["removePreset"]["preset"])

    async def update_settings(self, cluster: str, *, default_life_span_s: float | None) -> Cluster:
        """Set a cluster's settings (its admins may): the life span of jobs that ask for none."""
        settings = parse_input(
            ClusterSettingsInput,
            {"cluster": cluster, "default_life_span_s": default_life_span_s},
        )
        data = await self._client.execute(
            documents.UPDATE_CLUSTER_SETTINGS, {"input": settings.to_wire()}
        )
        return Cluster.model_validate(data["updateClusterSettings"]["cluster"])

    async def configs(self) -> builtins.list[ClusterConfig]:
        """Every registered cluster with its config, status and health (platform admins)."""
        data = await self._client.execute(documents.CLUSTER_CONFIGS)
        return [ClusterConfig.model_validate(c) for c in data["clusterConfigs"]]

    async def config(self, name: str) -> ClusterConfig:
        """A registered cluster's config, status and health (platform admins)."""
        data = await self._client.execute(documents.CLUSTER_CONFIG, {"name": name})
        return ClusterConfig.model_validate(data["clusterConfig"])

    async def register(
        self,
        name: str,
        *,
        gateway: str = "local",
        runtime: str = "local",
        storage_url: str | None = None,
        registry_url: str | None = None,
        default_life_span_s: float | None = None,
        presets: Sequence[PresetSpec] = (),
    ) -> RegisteredCluster:
        """Register a cluster (platform admins). ``gateway`` is ``local`` or the URL of its
        ``glia gateway serve``; for a URL, the answer's ``gateway_secret`` is that gateway's
        shared secret, shown this once."""
        new = parse_input(
            NewCluster,
            {
                "name": name,
                "gateway": gateway,
                "runtime": runtime,
                "storage_url": storage_url,
                "registry_url": registry_url,
                "default_life_span_s": default_life_span_s,
                "presets": [preset.model_dump() for preset in presets],
            },
        )
        data = await self._client.execute(documents.ADD_CLUSTER, {"input": new.to_wire()})
        return RegisteredCluster.model_validate(data["addCluster"])

    async def update(self, name: str, **changes: Any) -> ClusterConfig:
        """Change a cluster's config (platform admins): the fields given (``register``'s
        keywords but gateway and presets), the others as they are."""
        current = await self.config(name)
        values: dict[str, Any] = {
            "name": name,
            "runtime": current.runtime,
            "storage_url": current.storage_url,
            "registry_url": current.registry_url,
            "default_life_span_s": current.default_life_span_s,
        }
        unknown = changes.keys() - values.keys()
        if unknown:
            raise TypeError(f"update: unknown fields {sorted(unknown)}")
        new = parse_input(ClusterUpdate, {**values, **changes})
        data = await self._client.execute(documents.UPDATE_CLUSTER, {"input": new.to_wire()})
        return ClusterConfig.model_validate(data["updateCluster"]["cluster"])

    async def decommission(self, name: str) -> DecommissionedCluster:
        """Stop a cluster's jobs and remove it (platform admins); the answer names the jobs
        stopped."""
        data = await self._client.execute(documents.REMOVE_CLUSTER, {"name": name})
        return DecommissionedCluster.model_validate(data["removeCluster"])


def _job_filter(
    statuses: Iterable[JobStatus | str] | None,
    name: str | None,
    tags: Sequence[str] | None,
    since: datetime | None,
    cluster: str | None,
    owner: str | None = None,
    id_prefix: str | None = None,
    org: str | None = None,
    project: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    job_filter = parse_input(
        JobFilter,
        {
            "statuses": None if statuses is None else tuple(statuses),
            "name": name,
            "tags": tuple(tags or ()),
            "description": description,
            "since": since,
            "cluster": cluster,
            "owner": owner,
            "id_prefix": id_prefix,
            "org": org,
            "project": project,
        },
    )
    return job_filter.to_wire()


class JobsResource(Resource):
    async def submit(
        self,
        command: Sequence[str],
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
        share: Sequence[str] | None = None,
        preset: str | None = None,
        env: Mapping[str, str] | None = None,
        working_dir: str | None = None,
        storage_workdir: str | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        description: str | None = None,
        life_span_s: float | None = None,
        priority: JobPriority | str = JobPriority.NORMAL,
        schedule_timeout_s: float | None = None,
        restart_policy: RestartPolicy | str = RestartPolicy.NEVER,
        idempotency_key: str | None = None,
        http_port: int | None = None,
        http_auth: bool = True,
        pass_config: bool = False,
        tty: bool = False,
        wait_for_seat: bool = False,
        volumes: Sequence[Volume] = (),
        secret_env: Mapping[str, str] | None = None,
    ) -> Job:
        """Submit a job. The submission is checked here first, with the server's own rules:
        bad input raises BadInput before anything is sent.

        It runs in ``project`` of ``org`` (None: the caller's personal org and project; a
        service account's own project), and the users in ``share`` may read it at once.

        It waits for room on its cluster as long as it must (``schedule_timeout_s``: that
        long at most) and starts by ``priority``, then submission order; ``restart_policy``
        says whether its command is started again when it ends.

        It carries an idempotency key (a new one unless given), and is sent again with the
        same key when the server cannot be reached or is restarting (for up to about 15 s):
        a submission whose answer was lost is not run twice.

        ``http_port`` exposes the port the job serves HTTP on at ``job.http_url`` (to those
        who may read the job, or to anyone with ``http_auth=False``); ``tty`` runs it under a
        terminal whose input ``exec.attach_input`` feeds; ``pass_config`` gives
        the job GLIA_API_URL and a token of its owner (GLIA_TOKEN) while it runs.

        ``working_dir`` is a directory of the cluster's machine to start in;
        ``storage_workdir`` a directory of the cluster's storage (``storage://…``, see
        ``client.storage.sync``); neither: a scratch directory of the job's own.

        Over a running-jobs quota the server refuses it (QuotaExceeded), unless
        ``wait_for_seat``: it then waits, pending (QuotaExhausted), until a seat frees.

        ``volumes`` mounts storage, disks and secrets (`glia.volumes.parse_volume` reads
        the CLI's notation); ``secret_env`` sets variables from secrets (name → key).
        """
        submission = parse_input(
            JobSubmission,
            {
                "command": tuple(command),
                "cluster": cluster,
                "org": org,
                "project": project,
                "share": tuple(share or ()),
                "preset": preset,
                "env": tuple(EnvVar(name=k, value=v) for k, v in (env or {}).items()),
                "working_dir": working_dir,
                "storage_workdir": storage_workdir,
                "name": name,
                "tags": tuple(tags or ()),
                "description": description,
                "life_span_s": life_span_s,
                "priority": priority,
                "schedule_timeout_s": schedule_timeout_s,
                "restart_policy": restart_policy,
                "idempotency_key": idempotency_key or uuid.uuid4().hex,
                "http_port": http_port,
                "http_auth": http_auth,
                "pass_config": pass_config,
                "tty": tty,
                "wait_for_seat": wait_for_seat,
                "volumes": tuple(volumes),
                "secret_env": tuple(
                    SecretEnv(name=name, key=key) for name, key in (secret_env or {}).items()
                ),
            },
        )
        variables = {"input": submission.to_wire()}
        for delay in SUBMIT_RETRY_DELAYS_S:
            try:
                data = await self._client.execute(documents.SUBMIT_JOB, variables)
                return Job.model_validate(data["submitJob"]["job"])
            except (ConnectionFailed, Unavailable):
                await asyncio.sleep(delay)
        data = await self._client.execute(documents.SUBMIT_JOB, variables)
        return Job.model_validate(data["submitJob"]["job"])

    async def list(
        self,
        statuses: Iterable[JobStatus | str] | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        since: datetime | None = None,
        cluster: str | None = None,
        first: int | None = None,
        after: str | None = None,
        *,
        last: int | None = None,
        before: str | None = None,
        order_by: JobOrder | None = None,
        owner: str | None = None,
        id_prefix: str | None = None,
        org: str | None = None,
        project: str | None = None,
        description: str | None = None,
    ) -> Page[Job]:
        """One page of the jobs the caller may read (newest first unless ``order_by``):
        ``first`` after ``after``, or ``last`` before ``before``; ``statuses=None`` means
        every status. ``org`` and ``project`` narrow it to the jobs of projects of that org,
        of that name, or (both) of that one project; ``tags`` to jobs having all of them;
        ``description`` to jobs whose description contains it, ignoring case."""
        page = parse_input(
            PageRequest, {"first": first, "after": after, "last": last, "before": before}
        )
        data = await self._client.execute(
            documents.JOBS,
            {
                "filter": _job_filter(
                    statuses,
                    name,
                    tags,
                    since,
                    cluster,
                    owner,
                    id_prefix,
                    org,
                    project,
                    description,
                ),
                "orderBy": order_by.to_wire() if order_by else None,
                **page.to_wire(),
            },
        )
        jobs = data["jobs"]
        info = jobs["pageInfo"]
        return Page(
            items=tuple(Job.model_validate(edge["node"]) for edge in jobs["edges"]),
            cursors=tuple(edge["cursor"] for edge in jobs["edges"]),
            total_count=int(jobs.get("totalCount") or 0),
            has_next_page=bool(info["hasNextPage"]),
            has_previous_page=bool(info["hasPreviousPage"]),
        )

    async def iter_all(
        self,
        statuses: Iterable[JobStatus | str] | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        since: datetime | None = None,
        cluster: str | None = None,
        page_size: int = 100,
        *,
        org: str | None = None,
        project: str | None = None,
        description: str | None = None,
    ) -> AsyncGenerator[Job, None]:
        """Every matching job, following the pages."""
        status_list = None if statuses is None else builtins.list(statuses)
        after: str | None = None
        while True:
            page = await self.list(
                status_list,
                name,
                tags,
                since,
                cluster,
                page_size,
                after,
                org=org,
                project=project,
                description=description,
            )
            for job in page.items:
                yield job
            if not page.has_next_page or page.end_cursor is None:
                return
            after = page.end_cursor

    async def get(self, ref: str) -> Job:
        """A job by its id, a unique prefix of its id (`job-3f2a`), or its name (the latest
        of the caller's jobs with that name). An ambiguous prefix raises `Ambiguous`."""
        if is_job_id(ref) and len(ref) < JOB_ID_LENGTH:
            return await self._by_prefix(ref)
        if is_job_id(ref):
            data = await self._client.execute(documents.JOB, {"id": ref})
        else:
            data = await self._client.execute(documents.JOB_BY_NAME, {"name": ref})
        return Job.model_validate(data["job"])

    async def resolve(self, ref: str) -> str:
        """The id of the job ``ref`` names (as for `get`), asking the server only when ``ref``
        is not a whole id."""
        if is_job_id(ref) and len(ref) == JOB_ID_LENGTH:
            return ref
        return (await self.get(ref)).id

    async def _by_prefix(self, prefix: str) -> Job:
        try:
            page = await self.list(id_prefix=prefix, first=AMBIGUITY_SHOWN)
        except BadInput:
            raise NotFound(f"job {prefix!r} not found: a job id looks like job-<uuid>") from None
        if not page.items:
            raise NotFound(f"job {prefix!r} not found")
        if len(page.items) > 1:
            more = page.total_count - len(page.items)
            raise Ambiguous(
                f"{prefix!r} is the start of {page.total_count} job ids: give more of it"
                + (f" ({more} more not shown)" if more > 0 else ""),
                candidates=page.items,
            )
        return page.items[0]

    async def kill(self, ref: str) -> Job:
        """Kill a job; killing a finished job returns it unchanged (see `kill_job`)."""
        return (await self.kill_job(ref))[0]

    async def bump_life_span(self, ref: str, seconds: float) -> Job:
        """Extend a job's life span by ``seconds`` (its writers may)."""
        variables = {"input": {"id": await self.resolve(ref), "seconds": seconds}}
        data = await self._client.execute(documents.BUMP_JOB_LIFE_SPAN, variables)
        return Job.model_validate(data["bumpJobLifeSpan"]["job"])

    async def kill_job(self, ref: str) -> tuple[Job, bool]:
        """Kill a job; returns it and whether it had already finished before."""
        job_id = await self.resolve(ref)
        data = await self._client.execute(documents.KILL_JOB, {"input": {"id": job_id}})
        payload = data["killJob"]
        return Job.model_validate(payload["job"]), bool(payload["alreadyFinished"])

    async def watch_changes(self) -> AsyncGenerator[Job, None]:
        """Every job the caller may read, each time it is submitted or changes status."""
        async for data in self._client.subscribe(documents.JOB_CHANGES):
            yield Job.model_validate(data["jobChanges"])

    async def watch_status(self, ref: str) -> AsyncGenerator[Job, None]:
        """The job now, then on every status change; ends after a terminal status."""
        job_id = await self.resolve(ref)
        async for data in self._client.subscribe(documents.JOB_STATUS, {"id": job_id}):
            yield Job.model_validate(data["jobStatus"])

    async def logs(
        self,
        ref: str,
        since: datetime | None = None,
        follow: bool = True,
        *,
        tail: int | None = None,
    ) -> AsyncGenerator[LogLine, None]:
        """The job's log lines (all, ``since`` a time, or the last ``tail``); with ``follow``
        it waits while pending and ends with the job. A connection that breaks is made
        again and the log goes on where it stopped (see `_log_chunks`)."""
        chunks = self._log_chunks(documents.JOB_LOGS, ref, since, follow, tail)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                for line in chunk["lines"]:
                    yield LogLine.model_validate(line)

    async def log_text(
        self,
        ref: str,
        since: datetime | None = None,
        follow: bool = True,
        *,
        tail: int | None = None,
    ) -> AsyncGenerator[LogText, None]:
        """What `logs` yields, as runs of one stream's lines in one string each: several times
        cheaper to follow than single lines, for a reader that needs no line times."""
        chunks = self._log_chunks(documents.JOB_LOG_TEXT, ref, since, follow, tail)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield LogText.model_validate(chunk)

    async def _log_chunks(
        self,
        document: str,
        ref: str,
        since: datetime | None,
        follow: bool,
        tail: int | None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The ``jobLogs`` chunks, each once and in order across lost connections.

        Each chunk carries the offset where the output goes on after it; when the
        connection breaks (the server restarts, the network drops), the subscription is
        made again from the last offset received, for up to `LOG_RECONNECT_S` without an
        answer. A follow that ends while the job has not (a server shutting down ends its
        subscriptions cleanly) goes on the same way. A server that cannot be reached at
        the start is an error at once.
        """
        job_id = await self.resolve(ref)
        variables: dict[str, Any] = {"id": job_id, "follow": follow}
        if since is not None:
            variables["since"] = since.isoformat()
        if tail is not None:
            variables["tail"] = tail
        connected = False
        retry = _Backoff(LOG_RECONNECT_S)
        while True:
            try:
                async for data in self._client.subscribe(document, variables):
                    connected = True
                    retry.reset()
                    chunk = data["jobLogs"]
                    # From here on the log goes on at an offset, wherever it started.
                    variables.pop("since", None)
                    variables.pop("tail", None)
                    variables["offset"] = chunk["offset"]
                    yield chunk
                if not follow or (await self.get(job_id)).status.is_finished:
                    return
                connected = True
            except ConnectionFailed as error:
                if not (connected or isinstance(error, ConnectionLost)):
                    raise
                connected = True
                await retry.wait(error)
            else:
                await retry.wait()

    async def read_log(self, ref: str, *, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """The job's whole output as bytes, from ``offset`` (what it printed, as it printed
        it), streamed from the URL the API hands out for it."""
        data = await self._client.execute(documents.JOB_LOG_URL, {"id": await self.resolve(ref)})
        async for chunk in self._client.download(data["job"]["logUrl"], offset=offset):
            yield chunk


class _Backoff:
    """Waits between tries to reach the server again, growing from 0.2 s to 2 s; `wait`
    with the error that made a try fail raises it once ``limit_s`` have passed since the
    first failure after the last `reset`."""

    def __init__(self, limit_s: float) -> None:
        self._limit_s = limit_s
        self.reset()

    def reset(self) -> None:
        self._delay = 0.2
        self._since: float | None = None

    async def wait(self, error: GliaError | None = None) -> None:
        now = asyncio.get_running_loop().time()
        if error is not None:
            if self._since is None:
                self._since = now
            elif now - self._since >= self._limit_s:
                raise error
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, 2.0)
