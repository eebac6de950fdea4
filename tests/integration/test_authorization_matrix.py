"""Who may do what: every GraphQL operation and every HTTP route, for every kind of caller.

`OPERATIONS` has an entry for each field of Query, Mutation and Subscription, `ROUTES` one
for each HTTP route of the app beside ``/graphql``, `WEBSOCKET_ROUTES` one for each WebSocket
route beside it; `test_every_operation_and_route_has_an_entry` fails for one added without an
entry. An entry says what each subject gets:

- ``OK``: allowed (for a listing or a nullable answer: allowed, and the resource is in it);
- ``HIDDEN``: allowed, and the resource is absent (from the list and its ``totalCount``, or
  null): a stranger learns nothing;
- an error code: NOT_FOUND for a caller who may not see the resource (the answer for one that
  does not exist), FORBIDDEN for one who may see it but not do this, UNAUTHENTICATED without a
  token; CONFLICT where the permission check passed and the target refuses for another reason
  (deleting a project that still runs a job). A byte route answers the code's HTTP status.

The world is built once per database (SQLite; PostgreSQL with Redis), through the API, on one
in-process server (WebSockets too, through its ASGI interface): an org
``acme`` with a project ``vision``; ``owner``, a writer there, runs the job everyone is asked
about, and shared it for reading with ``shared_read`` and for writing with ``shared_write``;
``reader`` and ``writer`` are members of the project; ``org_admin`` administers acme;
``cluster_admin`` administers the cluster ``default``; ``service_account`` was made by the org
admin for acme/vision (it joined it as a writer); ``stranger`` belongs to no org but their own;
``platform_admin`` is a platform admin (and made acme). A second cluster, ``gpu``, is used by no
org. A case whose success would change the world for the cases after it works on a target
made for the call (a fresh job, user, org, role or token). The table is long because it is
the point: one place to read who may do what.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import graphql
import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.routing import Host, Route, WebSocketRoute

from cluster_gateway.gateway import ClusterCapacity
from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.platform import Platform
from control_plane.settings import Settings
from glia.clusters import Preset, Resources
from graph.schema import create_schema
from server.app import create_app
from tests.conftest import POSTGRES_ADMIN_DSN, REDIS_URL
from tests.factories import Api, GraphQLErrors, create_user, make_settings
from tests.polling import eventually

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

OK = "OK"
HIDDEN = "HIDDEN"
NOT_FOUND = "NOT_FOUND"
FORBIDDEN = "FORBIDDEN"
UNAUTHENTICATED = "UNAUTHENTICATED"
CONFLICT = "CONFLICT"
HTTP_STATUS = {OK: 200, NOT_FOUND: 404, FORBIDDEN: 403, UNAUTHENTICATED: 401}

ANONYMOUS = "anonymous"
SUBJECTS = (
    "owner",
    "shared_read",
    "shared_write",
    "stranger",
    "reader",
    "writer",
    "org_admin",
    "cluster_admin",
    "service_account",
    "platform_admin",
    ANONYMOUS,
)
SIGNED_IN = tuple(subject for subject in SUBJECTS if subject != ANONYMOUS)
# Who may read the job: its owner, those it was shared with, the project's members, the admins
# of its org and of its cluster, and platform admins.
JOB_READERS = (
    "owner",
    "shared_read",
    "shared_write",
    "reader",
    "writer",
    "org_admin",
    "cluster_admin",
    "service_account",
    "platform_admin",
)
# Who belongs to acme and vision but may not manage them.
ACME_MEMBERS = ("owner", "reader", "writer", "service_account")
ACME_MANAGERS = ("org_admin", "platform_admin")

ORG, PROJECT, CLUSTER, GPU = "acme", "vision", "default", "gpu"
SERVICE_ACCOUNT = "org_admin/ci"
SERVICE_ACCOUNT_SEERS = ("org_admin", "service_account", "platform_admin")


def expect(
    default: str,
    *,
    ok: Iterable[str] = (),
    hidden: Iterable[str] = (),
    not_found: Iterable[str] = (),
    forbidden: Iterable[str] = (),
    conflict: Iterable[str] = (),
    anonymous: str = UNAUTHENTICATED,
) -> dict[str, str]:
    """Every subject's outcome: ``default`` but for those named (anonymous: UNAUTHENTICATED)."""
    table = dict.fromkeys(SIGNED_IN, default)
    for outcome, subjects in (
        (OK, ok),
        (HIDDEN, hidden),
        (NOT_FOUND, not_found),
        (FORBIDDEN, forbidden),
        (CONFLICT, conflict),
    ):
        for subject in subjects:
            table[subject] = outcome
    table[ANONYMOUS] = anonymous
    return table


# -- the world -------------------------------------------------------------------------------


@dataclass
class World:
    api: Api
    app: Starlette
    runtime: FakeRuntime
    tokens: dict[str, str | None]
    job: dict[str, Any]
    gpu_id: str
    account_id: str
    names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def platform(self) -> Platform:
        return self.api.platform

    def token_of(self, subject: str) -> str:
        token = self.tokens[subject]
        assert token is not None, subject
        return token

    def name(self, prefix: str) -> str:
        """A name nobody has used yet."""
        return f"{prefix}{next(self.names)}"

    async def gql(self, subject: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        return await self.api.gql(query, variables, token=self.tokens[subject])

    async def user(self) -> str:
        """A new user, who is nobody in the matrix."""
        name = self.name("u")
        await create_user(self.platform, name)
        return name

    async def token(self, subject: str) -> str:
        """Another token of ``subject``'s (what `logout` or `revokeToken` may spend)."""
        name = SERVICE_ACCOUNT if subject == "service_account" else subject
        async with self.platform.db.session() as session:
            row = await self.platform.auth.user_row(session, name)
            return await self.platform.auth.issue_token(session, row.id, description="spare")

    async def fresh_job(self) -> dict[str, Any]:
        """A job of the owner's in acme/vision, shared as the matrix's job is."""
        job = await self.api.submit_job(
            self.token_of("owner"), org=ORG, project=PROJECT, command=["sleep", "1000"]
        )
        for subject, action in (("shared_read", "read"), ("shared_write", "write")):
            await self.gql(
                "owner", GRANT, {"uri": job["uri"], "subject": subject, "action": action}
            )
        return job


GRANT = """mutation($uri: String!, $subject: String!, $action: String!) {
  grant(input: {uri: $uri, subject: $subject, action: $action}) { grant { uri } } }"""
SET_ORG_MEMBER = """mutation($org: String!, $user: String!, $role: OrgRole!) {
  setOrgMember(input: {org: $org, user: $user, role: $role}) { member { user } } }"""
SET_PROJECT_MEMBER = """mutation($org: String!, $project: String!, $user: String!,
  $role: ProjectRole) {
  setProjectMember(input: {org: $org, project: $project, user: $user, role: $role}) {
    member { user } } }"""
SET_CLUSTER_USER = """mutation($cluster: String!, $user: String!, $role: ClusterRole!) {
  setClusterUser(input: {cluster: $cluster, user: $user, role: $role}) { member { user } } }"""
SET_QUOTA = """mutation($org: String, $cluster: String, $user: String) {
  setQuota(input: {org: $org, cluster: $cluster, user: $user, maxRunningJobs: 3}) {
    quota { level maxRunningJobs } } }"""
CREATE_ORG = "mutation($name: String!) { createOrg(input: {name: $name}) { org { name } } }"
CREATE_SERVICE_ACCOUNT = """mutation($name: String!, $org: String, $project: String) {
  createServiceAccount(input: {name: $name, org: $org, project: $project}) {
    serviceAccount { name } token } }"""


@contextlib.asynccontextmanager
async def database(dialect: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Settings for a fresh database of the dialect: SQLite, or PostgreSQL with Redis."""
    if dialect == "sqlite":
        yield {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'glia.db'}"}
        return
    name = f"glia_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield {
            "database_url": f"{base}/{name}",
            "redis_url": REDIS_URL,
            "redis_prefix": f"glia-test-{uuid.uuid4().hex}:",
        }
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, dialect: str) -> AsyncIterator[tuple[Api, Starlette]]:
    """The app in this event loop, driven over HTTP in-process (as `running_api`), with the
    app itself at hand for WebSockets."""
    started: list[Platform] = []

    async def capture(platform: Platform) -> None:
        started.append(platform)

    # Room for every job the matrix submits: none waits for capacity.
    runtime = FakeRuntime(capacity=ClusterCapacity(cpu=1000, memory_mb=10_000_000))
    async with database(dialect, tmp_path) as values:
        settings = make_settings(tmp_path, **values)
        async with _running(settings, runtime, capture) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://glia.test") as http:
                yield Api(http=http, platform=started[0], runtime=runtime), app


@contextlib.asynccontextmanager
async def _running(
    settings: Settings, runtime: FakeRuntime, capture: Callable[[Platform], Awaitable[None]]
) -> AsyncIterator[Starlette]:
    app = create_app(settings, runtime=runtime, on_startup=capture)
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async with serving(tmp_path_factory.mktemp("matrix"), request.param) as (api, app):
        platform = api.platform
        tokens: dict[str, str | None] = {ANONYMOUS: None}
        for subject in SIGNED_IN:
            if subject != "service_account":
                role = "admin" if subject == "platform_admin" else "user"
                tokens[subject] = await create_user(platform, subject, role=role)
        for name in ("bystander",):
            await create_user(platform, name)

        async def as_admin(query: str, variables: dict[str, Any]) -> Any:
            return await api.gql(query, variables, token=tokens["platform_admin"])

        await as_admin(CREATE_ORG, {"name": ORG})
        await as_admin(SET_ORG_MEMBER, {"org": ORG, "user": "org_admin", "role": "ADMIN"})
        create_project = """mutation($org: String!, $name: String!) {
          createProject(input: {org: $org, name: $name}) { project { name } } }"""
        await api.gql(create_project, {"org": ORG, "name": PROJECT}, token=tokens["org_admin"])
        for subject, role in (("owner", "WRITER"), ("reader", "READER"), ("writer", "WRITER")):
            variables = {"org": ORG, "project": PROJECT, "user": subject, "role": role}
            await api.gql(SET_PROJECT_MEMBER, variables, token=tokens["org_admin"])
        await as_admin(
            SET_CLUSTER_USER, {"cluster": CLUSTER, "user": "cluster_admin", "role": "ADMIN"}
        )
        made = await api.gql(
            CREATE_SERVICE_ACCOUNT,
            {"name": "ci", "org": ORG, "project": PROJECT},
            token=tokens["org_admin"],
        )
        tokens["service_account"] = made["createServiceAccount"]["token"]
        async with platform.db.session() as session:
            account_id = (await platform.auth.user_row(session, SERVICE_ACCOUNT)).id
        await as_admin(CREATE_ORG, {"name": "scratch"})  # where the org-cluster cases work
        await _make_bucket(platform, BUCKET_NAME, objects=("k",))

        # A cluster that no org uses: only platform admins may see it.
        async with platform.db.session() as session:
            preset = Preset(name="gpu-1", resources=Resources(cpu=1, memory_mb=1024, gpu=1))
            gpu = await platform.clusters.ensure(session, name=GPU, presets=[preset])
            await platform.orgs.sync(session)

        owner = tokens["owner"]
        assert owner is not None
        # Exposed on a port where nothing listens: the proxy answers 502 to whoever it lets by.
        job = await api.submit_job(
            owner, org=ORG, project=PROJECT, command=["sleep", "1000"], httpPort=1
        )
        world = World(
            api=api,
            app=app,
            runtime=runtime_of(api),
            tokens=tokens,
            job=job,
            gpu_id=gpu.id,
            account_id=account_id,
        )
        await world.gql(
            "owner", GRANT, {"uri": job["uri"], "subject": "shared_read", "action": "read"}
        )
        await world.gql(
            "owner", GRANT, {"uri": job["uri"], "subject": "shared_write", "action": "write"}
        )

        async def running() -> bool:
            found = await world.gql(
                "owner", "query($id: ID!) { job(id: $id) { status } }", {"id": job["id"]}
            )
            return bool(found["job"]["status"] == "RUNNING")

        await eventually(running)
        world.runtime.emit_log(job["id"], "hello from the matrix")
        yield world


def runtime_of(api: Api) -> FakeRuntime:
    assert isinstance(api.runtime, FakeRuntime)
    return api.runtime


# -- the table -------------------------------------------------------------------------------

Variables = Callable[["World", str], "dict[str, Any] | Awaitable[dict[str, Any]]"]


def no_variables(_world: World, _subject: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Case:
    """One call of an operation, made by each subject in turn."""

    document: str
    expected: Mapping[str, str]
    variables: Variables = no_variables
    # Whether the answer holds the resource the case is about (for OK against HIDDEN).
    found: Callable[[Any, World], bool] | None = None
    # The call spends its token (logout): each subject makes it with a token of its own.
    spends_token: bool = False


def _job_id(world: World, _subject: str) -> dict[str, Any]:
    return {"id": world.job["id"]}


def _acme(world: World, _subject: str) -> dict[str, Any]:
    return {"org": ORG}


def _vision(world: World, _subject: str) -> dict[str, Any]:
    return {"org": ORG, "project": PROJECT}


def _static(**values: Any) -> Variables:
    def variables(_world: World, _subject: str) -> dict[str, Any]:
        return dict(values)

    return variables


def _names(answer: Any, *path: str) -> list[Any]:
    for key in path:
        answer = answer[key]
    return [edge["node"] for edge in answer["edges"]] if "edges" in answer else answer


async def _login_user(world: World, _subject: str) -> dict[str, Any]:
    name = await world.user()
    return {"username": name, "password": f"password-{name}"}


async def _fresh_user(world: World, _subject: str) -> dict[str, Any]:
    return {"name": await world.user()}


async def _owner_token_id(world: World, _subject: str) -> dict[str, Any]:
    identity = await world.platform.auth.identify(await world.token("owner"))
    return {"id": identity.token_id}


async def _fresh_org(world: World, _subject: str) -> dict[str, Any]:
    name = world.name("org")
    await world.gql("platform_admin", CREATE_ORG, {"name": name})
    return {"name": name}


async def _acme_user(world: World, _subject: str) -> dict[str, Any]:
    user = await world.user()
    await world.gql("platform_admin", SET_ORG_MEMBER, {"org": ORG, "user": user, "role": "USER"})
    return {"org": ORG, "user": user}


async def _vision_reader(world: World, _subject: str) -> dict[str, Any]:
    user = await world.user()
    variables = {"org": ORG, "project": PROJECT, "user": user, "role": "READER"}
    await world.gql("platform_admin", SET_PROJECT_MEMBER, variables)
    return {"org": ORG, "project": PROJECT, "user": user}


async def _cluster_user(world: World, _subject: str) -> dict[str, Any]:
    user = await world.user()
    variables = {"cluster": CLUSTER, "user": user, "role": "USER"}
    await world.gql("platform_admin", SET_CLUSTER_USER, variables)
    return {"cluster": CLUSTER, "user": user}


async def _job_share(world: World, _subject: str) -> dict[str, Any]:
    user = await world.user()
    variables = {"uri": world.job["uri"], "subject": user, "action": "read"}
    await world.gql("owner", GRANT, variables)
    return {"uri": world.job["uri"], "subject": user}


async def _owners_role(world: World, _subject: str) -> dict[str, Any]:
    name = f"user/owner/{world.name('role')}"
    await world.gql(
        "owner",
        "mutation($n: String!) { createRole(input: {name: $n}) { role { name } } }",
        {"n": name},
    )
    return {"name": name}


async def _org_admins_account(world: World, _subject: str) -> dict[str, Any]:
    name = world.name("sa")
    await world.gql("org_admin", CREATE_SERVICE_ACCOUNT, {"name": name})
    return {"name": f"org_admin/{name}"}


async def _fresh_job(world: World, _subject: str) -> dict[str, Any]:
    return {"id": (await world.fresh_job())["id"]}


async def _fresh_job_with_life_span(world: World, _subject: str) -> dict[str, Any]:
    job = await world.api.submit_job(
        world.token_of("owner"),
        org=ORG,
        project=PROJECT,
        command=["sleep", "1000"],
        lifeSpanSeconds=1000,
    )
    for subject, action in (("shared_read", "read"), ("shared_write", "write")):
        await world.gql("owner", GRANT, {"uri": job["uri"], "subject": subject, "action": action})
    return {"id": job["id"]}


PRESET_FIELDS = "cpu: 0.5, memoryMb: 256"


async def _fresh_preset(world: World, _subject: str) -> dict[str, Any]:
    """A preset of the default cluster, made for the call."""
    name = world.name("preset-")
    await world.gql(
        "platform_admin",
        f"""mutation($name: String!) {{ addPreset(input: {{cluster: "{CLUSTER}", name: $name,
          {PRESET_FIELDS}}}) {{ preset {{ name }} }} }}""",
        {"name": name},
    )
    return {"cluster": CLUSTER, "name": name}


# A remote gateway nobody serves: registering one is cheap (no runtime starts), and the
# cluster is simply not deployed.
UNSERVED_GATEWAY = "http://127.0.0.1:9"


async def _fresh_cluster(world: World, _subject: str) -> dict[str, Any]:
    """A cluster registered for the call (seen by platform admins alone)."""
    name = world.name("cluster-")
    await world.gql(
        "platform_admin",
        """mutation($name: String!, $gateway: String!) {
          addCluster(input: {name: $name, gateway: $gateway}) { cluster { name } } }""",
        {"name": name, "gateway": UNSERVED_GATEWAY},
    )
    return {"name": name}


def _password(_world: World, subject: str) -> dict[str, Any]:
    return {"current": f"password-{subject}", "new": f"password-{subject}-changed"}


def _named(name: str) -> Variables:
    return _static(name=name)


# Who may see acme/vision's storage: its members, the admins of its org and of its cluster,
# platform admins (a job shared with someone shares no file); all but readers may write.
STORAGE = f"storage://{CLUSTER}/{ORG}/{PROJECT}"
STORAGE_READERS = (
    "owner",
    "reader",
    "writer",
    "org_admin",
    "cluster_admin",
    "service_account",
    "platform_admin",
)
STORAGE_WRITE = expect(NOT_FOUND, ok=set(STORAGE_READERS) - {"reader"}, forbidden=["reader"])
MKDIR = """mutation($uri: String!) {
  makeStorageDirectory(input: {uri: $uri}) { entry { path } } }"""


async def _storage_entry(world: World, _subject: str) -> dict[str, Any]:
    """A directory of vision's storage made for the call."""
    uri = f"{STORAGE}/{world.name('dir')}"
    await world.gql("platform_admin", MKDIR, {"uri": uri})
    return {"uri": uri}


async def _storage_pair(world: World, subject: str) -> dict[str, Any]:
    source = (await _storage_entry(world, subject))["uri"]
    return {"source": source, "target": f"{STORAGE}/{world.name('target')}"}


def _storage_file(world: World) -> str:
    """The byte route of a file of vision's storage (written on the cluster's disk)."""
    tree = world.platform.settings.runtime_dir / "storage" / ORG / PROJECT
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "matrix.txt").write_text("bytes")
    (tree / "archive-source").mkdir(exist_ok=True)
    return f"/api/storage/{CLUSTER}/{ORG}/{PROJECT}/matrix.txt"


async def _fresh_disk(world: World, _subject: str) -> dict[str, Any]:
    """A disk of acme/vision made for the call."""
    made = await world.gql(
        "platform_admin",
        """mutation($org: String!, $project: String!) {
          createDisk(input: {org: $org, project: $project, sizeBytes: 16777216}) {
            disk { id } } }""",
        {"org": ORG, "project": PROJECT},
    )
    return {"id": made["createDisk"]["disk"]["id"], "org": ORG, "project": PROJECT}


# -- buckets ---------------------------------------------------------------------------------

# Who may read acme/vision's buckets: its members, the admins of its org and of its cluster,
# and platform admins; all but readers write them, those who manage them make them public.
BUCKET_NAME = "data"
BUCKET = f"blob://{CLUSTER}/{ORG}/{PROJECT}/{BUCKET_NAME}"
BUCKET_READERS = (
    "owner",
    "reader",
    "writer",
    "org_admin",
    "cluster_admin",
    "service_account",
    "platform_admin",
)
BUCKET_WRITE = expect(NOT_FOUND, ok=set(BUCKET_READERS) - {"reader"}, forbidden=["reader"])
BUCKET_READ = expect(NOT_FOUND, ok=BUCKET_READERS)
BLOB_ROUTE = "/api/blob/{cluster}/{org}/{project}/{bucket}/{key:path}"
BLOB_URL = f"/api/blob/{CLUSTER}/{ORG}/{PROJECT}/{BUCKET_NAME}"


async def _user_of(platform: Platform, name: str) -> Any:
    from control_plane.services.auth import user_from_row

    async with platform.db.session() as session:
        return user_from_row(await platform.auth.user_row(session, name))


async def _make_bucket(platform: Platform, name: str, *, objects: Iterable[str] = ()) -> str:
    """A bucket of acme/vision made by its org's admin, with ``objects`` in it."""
    from control_plane.services.blobs import Accessor
    from glia.blobs import NewBucket

    admin = await _user_of(platform, "org_admin")
    async with platform.db.session() as session:
        made = await platform.blobs.create_bucket(
            session, admin, NewBucket(name=name, org=ORG, project=PROJECT)
        )

    async def body() -> AsyncIterator[bytes]:
        yield b"matrix"

    for key in objects:
        await platform.blobs.put(Accessor.of(admin), f"{made.uri}/{key}", body())
    return made.uri


async def _fresh_bucket(world: World, _subject: str) -> dict[str, Any]:
    return {"uri": await _make_bucket(world.platform, world.name("bucket-"))}


async def _owner_blob_credential(world: World, _subject: str) -> dict[str, Any]:
    owner = await _user_of(world.platform, "owner")
    async with world.platform.db.session() as session:
        made, _ = await world.platform.blobs.create_credentials(
            session, owner, name="matrix", buckets=[BUCKET], read_only=True
        )
    return {"id": made.id}


BLOB_OPERATIONS: dict[str, tuple[Case, ...]] = {
    "buckets": (
        Case(
            """query($org: String!, $project: String!) {
              buckets(org: $org, project: $project) { uri } }""",
            expect(HIDDEN, ok=BUCKET_READERS),
            _vision,
            found=lambda answer, _: any(b["uri"] == BUCKET for b in answer["buckets"]),
        ),
    ),
    "bucket": (
        Case(
            "query($uri: String!) { bucket(uri: $uri) { name } }", BUCKET_READ, _static(uri=BUCKET)
        ),
    ),
    "blobObjects": (
        Case(
            "query($uri: String!) { blobObjects(uri: $uri) { objects { key } } }",
            BUCKET_READ,
            _static(uri=BUCKET),
        ),
    ),
    "blobObject": (
        Case(
            "query($uri: String!) { blobObject(uri: $uri) { size } }",
            BUCKET_READ,
            _static(uri=f"{BUCKET}/k"),
        ),
    ),
    "blobGlob": (
        Case(
            'query($uri: String!) { blobGlob(uri: $uri, pattern: "*") { key } }',
            BUCKET_READ,
            _static(uri=BUCKET),
        ),
    ),
    # Each caller's own access keys.
    "blobCredentials": (Case("{ blobCredentials { id } }", expect(OK)),),
    # Disks follow the project as buckets do.
    "disks": (
        Case(
            """query($org: String!, $project: String!) {
              disks(org: $org, project: $project) { id } }""",
            expect(HIDDEN, ok=BUCKET_READERS),
            _fresh_disk,
            found=lambda answer, _: bool(answer["disks"]),
        ),
    ),
    "disk": (
        Case(
            "query($id: String!) { disk(disk: $id) { id } }",
            BUCKET_READ,
            _fresh_disk,
        ),
    ),
    "createDisk": (
        Case(
            """mutation($org: String!, $project: String!) {
              createDisk(input: {org: $org, project: $project, sizeBytes: 16777216}) {
                disk { id } } }""",
            {**BUCKET_WRITE, "cluster_admin": NOT_FOUND},
            _vision,
        ),
    ),
    "deleteDisk": (
        Case(
            "mutation($id: String!) { deleteDisk(input: {disk: $id}) { disk { id } } }",
            BUCKET_WRITE,
            _fresh_disk,
        ),
    ),
    "createBucket": (
        Case(
            """mutation($org: String!, $project: String!, $name: String!) {
              createBucket(input: {org: $org, project: $project, name: $name}) {
                bucket { uri } } }""",
            {**BUCKET_WRITE, "cluster_admin": NOT_FOUND},
            lambda world, _: {"org": ORG, "project": PROJECT, "name": world.name("new-")},
        ),
    ),
    # Allowed callers reach the endpoint check: one on this host is refused (GLIA_BLOB_IMPORT_
    # PRIVATE_ENDPOINTS is off), before the server connects anywhere.
    "importBucket": (
        Case(
            """mutation($org: String!, $project: String!, $name: String!) {
              importBucket(input: {org: $org, project: $project, name: $name,
                remoteName: "remote", endpointUrl: "http://127.0.0.1:9",
                accessKeyId: "id", secretAccessKey: "secret"}) { bucket { uri } } }""",
            {
                **BUCKET_WRITE,
                **dict.fromkeys(
                    set(BUCKET_READERS) - {"reader", "cluster_admin"}, "BAD_USER_INPUT"
                ),
                "cluster_admin": NOT_FOUND,
            },
            lambda world, _: {"org": ORG, "project": PROJECT, "name": world.name("imp-")},
        ),
    ),
    "updateBucket": (
        Case(
            """mutation($uri: String!) {
              updateBucket(input: {uri: $uri, public: false}) { bucket { public } } }""",
            expect(
                NOT_FOUND,
                ok=["org_admin", "cluster_admin", "platform_admin"],
                forbidden=["owner", "reader", "writer", "service_account"],
            ),
            _static(uri=BUCKET),
        ),
    ),
    "deleteBucket": (
        Case(
            "mutation($uri: String!) { deleteBucket(input: {uri: $uri}) { bucket { uri } } }",
            BUCKET_WRITE,
            _fresh_bucket,
        ),
    ),
    "deleteBlobObject": (
        Case(
            "mutation($uri: String!) { deleteBlobObject(input: {uri: $uri}) { existed } }",
            BUCKET_WRITE,
            _static(uri=f"{BUCKET}/scratch"),
        ),
    ),
    "signBlobUrl": (
        Case(
            "mutation($uri: String!) { signBlobUrl(input: {uri: $uri}) { signedUrl { url } } }",
            BUCKET_READ,
            _static(uri=f"{BUCKET}/k"),
        ),
    ),
    "createBlobCredentials": (
        Case(
            """mutation($uri: String!) { createBlobCredentials(input: {name: "m",
              buckets: [$uri]}) { secret } }""",
            BUCKET_WRITE,
            _static(uri=BUCKET),
        ),
    ),
    # Only its owner sees (and deletes) an access key.
    "deleteBlobCredentials": (
        Case(
            "mutation($id: ID!) { deleteBlobCredentials(input: {id: $id}) { credential { id } } }",
            expect(NOT_FOUND, ok=["owner"]),
            _owner_blob_credential,
        ),
    ),
}

# -- secrets ---------------------------------------------------------------------------------

# acme/vision's secrets: its members list the keys, all but readers set and delete them; the
# project's invisible to the others (cluster admins included, as for creating a bucket).
SECRETS = f"secret://{CLUSTER}/{ORG}/{PROJECT}"
SECRET_READERS = ("owner", "reader", "writer", "org_admin", "service_account", "platform_admin")
SECRET_WRITE = expect(NOT_FOUND, ok=set(SECRET_READERS) - {"reader"}, forbidden=["reader"])
SECRET_ROUTE = "/api/secrets/{cluster}/{org}/{project}/{key}"


async def _make_secret(world: World, key: str) -> str:
    admin = await _user_of(world.platform, "org_admin")
    async with world.platform.db.session() as session:
        made, _ = await world.platform.secrets.put(session, admin, f"{SECRETS}/{key}", b"m")
    return made.uri


async def _vision_secrets(world: World, _subject: str) -> dict[str, Any]:
    await _make_secret(world, "listed")
    return {"org": ORG, "project": PROJECT}


async def _fresh_secret(world: World, _subject: str) -> dict[str, Any]:
    return {"uri": await _make_secret(world, world.name("s"))}


SECRET_OPERATIONS: dict[str, tuple[Case, ...]] = {
    "secrets": (
        Case(
            """query($org: String!, $project: String!) {
              secrets(org: $org, project: $project) { totalCount edges { node { uri } } } }""",
            expect(NOT_FOUND, ok=SECRET_READERS),
            _vision_secrets,
            found=lambda answer, _: any(
                edge["node"]["uri"] == f"{SECRETS}/listed" for edge in answer["secrets"]["edges"]
            ),
        ),
    ),
    "deleteSecret": (
        Case(
            "mutation($uri: String!) { deleteSecret(input: {uri: $uri}) { secret { uri } } }",
            SECRET_WRITE,
            _fresh_secret,
        ),
    ),
    # Every secret of every project: platform admins only.
    "rotateSecretsKey": (
        Case(
            "mutation { rotateSecretsKey { rotation { secrets } } }",
            expect(FORBIDDEN, ok=["platform_admin"]),
        ),
    ),
}

OPERATIONS: dict[str, tuple[Case, ...]] = {
    **BLOB_OPERATIONS,
    **SECRET_OPERATIONS,
    # -- Query --
    "node": (
        Case(
            "query($id: ID!) { node(id: $id) { id } }",
            expect(NOT_FOUND, ok=JOB_READERS),
            _job_id,
        ),
        # A cluster by its id: only for those who may use it, as `cluster(name:)`.
        Case(
            "query($id: ID!) { node(id: $id) { id } }",
            expect(NOT_FOUND, ok=["platform_admin"]),
            lambda world, _: {"id": world.gpu_id},
        ),
    ),
    "nodes": (
        Case(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            expect(HIDDEN, ok=JOB_READERS),
            lambda world, _: {"ids": [world.job["id"]]},
            found=lambda answer, _: answer["nodes"] != [None],
        ),
        Case(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            expect(HIDDEN, ok=SERVICE_ACCOUNT_SEERS),
            lambda world, _: {"ids": [world.account_id]},
            found=lambda answer, _: answer["nodes"] != [None],
        ),
    ),
    "me": (Case("{ me { name } }", expect(OK)),),
    "tokens": (Case("{ tokens { id } }", expect(OK)),),
    "users": (
        Case(
            "{ users(first: 500) { totalCount edges { node { name } } } }",
            expect(FORBIDDEN, ok=["platform_admin"]),
        ),
    ),
    # Anyone signed in may look a user up by name, to share with them.
    "user": (
        Case("query($name: String!) { user(name: $name) { name } }", expect(OK), _named("owner")),
        # A service account is for its owner (and itself, and user managers) to see.
        Case(
            "query($name: String!) { user(name: $name) { name } }",
            expect(NOT_FOUND, ok=SERVICE_ACCOUNT_SEERS),
            _named(SERVICE_ACCOUNT),
        ),
    ),
    "orgs": (
        Case(
            "{ orgs(first: 500) { totalCount edges { node { name } } } }",
            expect(HIDDEN, ok=ACME_MEMBERS + ACME_MANAGERS),
            found=lambda answer, _: {"name": ORG} in _names(answer, "orgs"),
        ),
    ),
    "org": (
        Case(
            "query($name: String!) { org(name: $name) { name } }",
            expect(NOT_FOUND, ok=ACME_MEMBERS + ACME_MANAGERS),
            _named(ORG),
        ),
    ),
    "orgMembers": (
        Case(
            "query($org: String!) { orgMembers(org: $org) { user role } }",
            expect(NOT_FOUND, ok=ACME_MEMBERS + ACME_MANAGERS),
            _acme,
        ),
    ),
    "projects": (
        Case(
            "{ projects(first: 500) { totalCount edges { node { org name } } } }",
            expect(HIDDEN, ok=ACME_MEMBERS + ACME_MANAGERS),
            found=lambda answer, _: {"org": ORG, "name": PROJECT} in _names(answer, "projects"),
        ),
    ),
    "project": (
        Case(
            "query($org: String!, $name: String!) { project(org: $org, name: $name) { name } }",
            expect(NOT_FOUND, ok=ACME_MEMBERS + ACME_MANAGERS),
            _static(org=ORG, name=PROJECT),
        ),
    ),
    "projectMembers": (
        Case(
            """query($org: String!, $project: String!) {
              projectMembers(org: $org, project: $project) { user role } }""",
            expect(NOT_FOUND, ok=ACME_MEMBERS + ACME_MANAGERS),
            _vision,
        ),
    ),
    "clusterUsers": (
        # Everyone may run on `default` (their personal org uses it); its managers list users.
        Case(
            "query($cluster: String!) { clusterUsers(cluster: $cluster) { user role } }",
            expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]),
            _static(cluster=CLUSTER),
        ),
        Case(
            "query($cluster: String!) { clusterUsers(cluster: $cluster) { user role } }",
            expect(NOT_FOUND, ok=["platform_admin"]),
            _static(cluster=GPU),
        ),
    ),
    "permissions": (
        Case(
            "query($subject: String) { permissions(subject: $subject) { uri } }",
            expect(NOT_FOUND, ok=["owner", "platform_admin"]),
            _static(subject="owner"),
        ),
        Case("{ permissions { uri } }", expect(OK)),
    ),
    "shared": (
        Case(
            "query($subject: String) { shared(subject: $subject) { uri } }",
            expect(NOT_FOUND, ok=["owner", "platform_admin"]),
            _static(subject="owner"),
        ),
        Case("{ shared { uri } }", expect(OK)),
    ),
    "roles": (
        Case(
            "query($subject: String) { roles(subject: $subject) { name } }",
            expect(NOT_FOUND, ok=["owner", "platform_admin"]),
            _static(subject="owner"),
        ),
        Case("{ roles { name } }", expect(OK)),
    ),
    "roleMembers": (
        Case(
            f'{{ roleMembers(role: "role://project/{ORG}/{PROJECT}/writer") {{ subject }} }}',
            expect(
                NOT_FOUND,
                ok=["org_admin", "platform_admin"],
                forbidden=["owner", "writer", "service_account"],
            ),
        ),
    ),
    "serviceAccounts": (
        Case(
            "{ serviceAccounts { name } }",
            expect(HIDDEN, ok=["org_admin", "platform_admin"]),
            found=lambda answer, _: {"name": SERVICE_ACCOUNT} in answer["serviceAccounts"],
        ),
    ),
    "serviceAccount": (
        Case(
            "query($name: String!) { serviceAccount(name: $name) { name } }",
            expect(NOT_FOUND, ok=["org_admin", "platform_admin"]),
            _named(SERVICE_ACCOUNT),
        ),
    ),
    "clusters": (
        Case(
            "{ clusters { name } }",
            expect(HIDDEN, ok=["platform_admin"]),
            found=lambda answer, _: {"name": GPU} in answer["clusters"],
        ),
        Case(
            "{ clusters { name } }",
            expect(OK),
            found=lambda answer, _: {"name": CLUSTER} in answer["clusters"],
        ),
    ),
    "cluster": (
        Case(
            "query($name: String!) { cluster(name: $name) { name } }",
            expect(HIDDEN, ok=["platform_admin"]),
            _named(GPU),
            found=lambda answer, _: answer["cluster"] is not None,
        ),
        Case(
            "query($name: String!) { cluster(name: $name) { name } }",
            expect(OK),
            _named(CLUSTER),
            found=lambda answer, _: answer["cluster"] is not None,
        ),
    ),
    "jobs": (
        Case(
            "{ jobs(first: 500) { totalCount edges { node { id } } } }",
            expect(HIDDEN, ok=JOB_READERS),
            found=lambda answer, world: {"id": world.job["id"]} in _names(answer, "jobs"),
        ),
    ),
    "job": (
        Case("query($id: ID!) { job(id: $id) { id } }", expect(NOT_FOUND, ok=JOB_READERS), _job_id),
    ),
    "jobTelemetryHistory": (
        Case(
            "query($id: ID!) { jobTelemetryHistory(id: $id) { stepSeconds } }",
            expect(NOT_FOUND, ok=JOB_READERS),
            _job_id,
        ),
    ),
    # -- Mutation --
    "login": (
        Case(
            """mutation($username: String!, $password: String!) {
              login(input: {username: $username, password: $password}) { token } }""",
            expect(OK, anonymous=OK),
            _login_user,
        ),
    ),
    "logout": (Case("mutation { logout { tokenId } }", expect(OK), spends_token=True),),
    "createUser": (
        Case(
            """mutation($name: String!) {
              createUser(input: {name: $name, role: USER}) { password } }""",
            expect(FORBIDDEN, ok=["platform_admin"]),
            lambda world, _: {"name": world.name("new")},
        ),
    ),
    "changePassword": (
        Case(
            """mutation($current: String!, $new: String!) {
              changePassword(input: {currentPassword: $current, newPassword: $new}) {
                user { name } } }""",
            # A service account has no password to change.
            expect(OK, forbidden=["service_account"]),
            _password,
        ),
    ),
    "revokeToken": (
        Case(
            "mutation($id: ID!) { revokeToken(input: {id: $id}) { tokenId } }",
            expect(NOT_FOUND, ok=["owner"]),
            _owner_token_id,
        ),
    ),
    "updateUser": (
        Case(
            """mutation($name: String!) {
              updateUser(input: {name: $name, email: "b@example.com"}) { user { name } } }""",
            expect(FORBIDDEN, ok=["platform_admin"]),
            _named("bystander"),
        ),
    ),
    "deleteUser": (
        Case(
            "mutation($name: String!) { deleteUser(input: {name: $name}) { user { name } } }",
            expect(FORBIDDEN, ok=["platform_admin"]),
            _fresh_user,
        ),
    ),
    "resetPassword": (
        Case(
            "mutation($name: String!) { resetPassword(input: {name: $name}) { user { name } } }",
            expect(FORBIDDEN, ok=["platform_admin"]),
            _named("bystander"),
        ),
    ),
    "createOrg": (
        Case(
            CREATE_ORG,
            expect(FORBIDDEN, ok=["platform_admin"]),
            lambda world, _: {"name": world.name("org")},
        ),
    ),
    "deleteOrg": (
        Case(
            "mutation($name: String!) { deleteOrg(input: {name: $name}) { org { name } } }",
            expect(FORBIDDEN, ok=["platform_admin"]),
            _fresh_org,
        ),
    ),
    "addOrgCluster": (
        Case(
            """mutation($org: String!, $cluster: String!) {
              addOrgCluster(input: {org: $org, cluster: $cluster}) { org { name } } }""",
            expect(FORBIDDEN, ok=["platform_admin"]),
            _static(org="scratch", cluster=GPU),
        ),
    ),
    "removeOrgCluster": (
        Case(
            """mutation($org: String!, $cluster: String!) {
              removeOrgCluster(input: {org: $org, cluster: $cluster}) { org { name } } }""",
            expect(FORBIDDEN, ok=["platform_admin"]),
            _static(org="scratch", cluster=CLUSTER),
        ),
    ),
    "setOrgMember": (
        Case(
            SET_ORG_MEMBER,
            expect(NOT_FOUND, forbidden=ACME_MEMBERS, ok=ACME_MANAGERS),
            _static(org=ORG, user="bystander", role="USER"),
        ),
    ),
    "removeOrgMember": (
        Case(
            """mutation($org: String!, $user: String!) {
              removeOrgMember(input: {org: $org, user: $user}) { member { user } } }""",
            expect(NOT_FOUND, forbidden=ACME_MEMBERS, ok=ACME_MANAGERS),
            _acme_user,
        ),
    ),
    "createProject": (
        Case(
            """mutation($org: String!, $name: String!) {
              createProject(input: {org: $org, name: $name}) { project { name } } }""",
            expect(NOT_FOUND, forbidden=ACME_MEMBERS, ok=ACME_MANAGERS),
            lambda world, _: {"org": ORG, "name": world.name("project")},
        ),
    ),
    "updateProject": (
        Case(
            """mutation($org: String!, $name: String!) {
              updateProject(input: {org: $org, name: $name, defaultRole: WRITER}) {
                project { name } } }""",
            expect(NOT_FOUND, forbidden=ACME_MEMBERS, ok=ACME_MANAGERS),
            _static(org=ORG, name=PROJECT),
        ),
    ),
    "deleteProject": (
        # The project runs the matrix's job: those who may delete it get CONFLICT.
        Case(
            """mutation($org: String!, $name: String!) {
              deleteProject(input: {org: $org, name: $name}) { project { name } } }""",
            expect(NOT_FOUND, forbidden=ACME_MEMBERS, conflict=ACME_MANAGERS),
            _static(org=ORG, name=PROJECT),
        ),
    ),
    "setProjectMember": (
        Case(
            SET_PROJECT_MEMBER,
            expect(NOT_FOUND, forbidden=ACME_MEMBERS, ok=ACME_MANAGERS),
            _static(org=ORG, project=PROJECT, user="bystander", role="READER"),
        ),
    ),
    "removeProjectMember": (
        Case(
            """mutation($org: String!, $project: String!, $user: String!) {
              removeProjectMember(input: {org: $org, project: $project, user: $user}) {
                member { user } } }""",
            expect(NOT_FOUND, forbidden=ACME_MEMBERS, ok=ACME_MANAGERS),
            _vision_reader,
        ),
    ),
    "setClusterUser": (
        Case(
            SET_CLUSTER_USER,
            expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]),
            _static(cluster=CLUSTER, user="bystander", role="USER"),
        ),
        Case(
            SET_CLUSTER_USER,
            expect(NOT_FOUND, ok=["platform_admin"]),
            _static(cluster=GPU, user="bystander", role="USER"),
        ),
    ),
    "removeClusterUser": (
        Case(
            """mutation($cluster: String!, $user: String!) {
              removeClusterUser(input: {cluster: $cluster, user: $user}) { member { user } } }""",
            expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]),
            _cluster_user,
        ),
    ),
    # Sharing needs manage on the URI: anyone else is FORBIDDEN, whether the URI names
    # something or not (test_a_stranger_learns_nothing_from_sharing).
    "grant": (
        Case(
            GRANT,
            expect(FORBIDDEN, ok=["owner", "org_admin", "cluster_admin", "platform_admin"]),
            lambda world, _: {"uri": world.job["uri"], "subject": "bystander", "action": "read"},
        ),
    ),
    "revoke": (
        Case(
            """mutation($uri: String!, $subject: String!) {
              revoke(input: {uri: $uri, subject: $subject}) { grant { uri } } }""",
            expect(FORBIDDEN, ok=["owner", "org_admin", "cluster_admin", "platform_admin"]),
            _job_share,
        ),
    ),
    "createRole": (
        # A role under another user's name: theirs (and a platform admin's) to make.
        Case(
            "mutation($name: String!) { createRole(input: {name: $name}) { role { name } } }",
            expect(FORBIDDEN, ok=["owner", "platform_admin"]),
            lambda world, _: {"name": f"user/owner/{world.name('role')}"},
        ),
    ),
    "deleteRole": (
        Case(
            "mutation($name: String!) { deleteRole(input: {name: $name}) { role { name } } }",
            expect(NOT_FOUND, ok=["owner", "platform_admin"]),
            _owners_role,
        ),
    ),
    "createServiceAccount": (
        Case(
            CREATE_SERVICE_ACCOUNT,
            expect(NOT_FOUND, forbidden=ACME_MEMBERS, ok=ACME_MANAGERS),
            lambda world, _: {"name": world.name("sa"), "org": ORG, "project": PROJECT},
        ),
    ),
    "deleteServiceAccount": (
        Case(
            """mutation($name: String!) {
              deleteServiceAccount(input: {name: $name}) { serviceAccount { name } } }""",
            expect(NOT_FOUND, ok=["org_admin", "platform_admin"]),
            _org_admins_account,
        ),
    ),
    "submitJob": (
        Case(
            """mutation($org: String!, $project: String!) {
              submitJob(input: {command: ["true"], org: $org, project: $project}) {
                job { id } } }""",
            expect(
                NOT_FOUND,
                forbidden=["reader"],
                ok=["owner", "writer", "org_admin", "service_account", "platform_admin"],
            ),
            _vision,
        ),
        # A job in the caller's own project that would work in vision's storage: only those
        # who may write there (a reader may see it: FORBIDDEN; the rest learn nothing).
        Case(
            """mutation($uri: String!) {
              submitJob(input: {command: ["true"], storageWorkdir: $uri}) { job { id } } }""",
            STORAGE_WRITE,
            _static(uri=f"{STORAGE}/workdir"),
        ),
    ),
    "killJob": (
        Case(
            "mutation($id: ID!) { killJob(input: {id: $id}) { job { id } } }",
            expect(
                NOT_FOUND,
                forbidden=["shared_read", "reader"],
                ok=set(JOB_READERS) - {"shared_read", "reader"},
            ),
            _fresh_job,
        ),
    ),
    "bumpJobLifeSpan": (
        Case(
            """mutation($id: ID!) {
              bumpJobLifeSpan(input: {id: $id, seconds: 60}) { job { id } } }""",
            expect(
                NOT_FOUND,
                forbidden=["shared_read", "reader"],
                ok=set(JOB_READERS) - {"shared_read", "reader"},
            ),
            _fresh_job_with_life_span,
        ),
    ),
    # Quotas: each caller sees their own where they may run; a level's limits are set by
    # the platform's admins, an org's admins (its members' levels) and a cluster's admins
    # (its orgs' and users' levels); the org's own budget by the platform's admins alone.
    "myQuotas": (
        Case(
            "query($org: String) { myQuotas(org: $org) { level runningJobs } }",
            expect(NOT_FOUND, ok=ACME_MEMBERS + ACME_MANAGERS),
            _static(org=ORG),
        ),
        Case("{ myQuotas { level maxRunningJobs credits } }", expect(OK)),
    ),
    "quota": (
        Case(
            "query($org: String, $user: String) { quota(target: {org: $org, user: $user}) {"
            " level runningJobs } }",
            expect(NOT_FOUND, ok=ACME_MANAGERS, forbidden=ACME_MEMBERS),
            _static(org=ORG, user="owner"),
        ),
        Case(
            "query($cluster: String, $user: String) { quota(target: {cluster: $cluster, "
            "user: $user}) { level } }",
            expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]),
            _static(cluster=CLUSTER, user="owner"),
        ),
        Case(
            "query($cluster: String, $user: String) { quota(target: {cluster: $cluster, "
            "user: $user}) { level } }",
            expect(NOT_FOUND, ok=["platform_admin"]),
            _static(cluster=GPU, user="owner"),
        ),
    ),
    "setQuota": (
        Case(
            SET_QUOTA,
            expect(NOT_FOUND, ok=ACME_MANAGERS, forbidden=ACME_MEMBERS),
            _acme_user,
        ),
        Case(SET_QUOTA, expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]), _cluster_user),
        Case(
            """mutation($org: String) {
              setQuota(input: {org: $org, unlimitedCredits: true}) { quota { level } } }""",
            expect(NOT_FOUND, ok=["platform_admin"], forbidden=ACME_MEMBERS + ("org_admin",)),
            _static(org=ORG),
        ),
    ),
    "addCredits": (
        Case(
            """mutation($org: String, $user: String) {
              addCredits(input: {org: $org, user: $user, amount: 5}) { quota { credits } } }""",
            expect(NOT_FOUND, ok=ACME_MANAGERS, forbidden=ACME_MEMBERS),
            _acme_user,
        ),
        Case(
            """mutation($cluster: String, $user: String) {
              addCredits(input: {cluster: $cluster, user: $user, amount: 5}) {
                quota { credits } } }""",
            expect(NOT_FOUND, ok=["platform_admin"]),
            lambda _world, _subject: {"cluster": GPU, "user": "owner"},
        ),
    ),
    # A cluster's presets and settings are its admins' (manage on cluster://NAME); its users
    # may see them, nobody else may learn of the cluster.
    "addPreset": (
        Case(
            f"""mutation($cluster: String!, $name: String!) {{
              addPreset(input: {{cluster: $cluster, name: $name, {PRESET_FIELDS}}}) {{
                preset {{ name }} }} }}""",
            expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]),
            lambda world, _: {"cluster": CLUSTER, "name": world.name("preset-")},
        ),
        Case(
            f"""mutation($cluster: String!, $name: String!) {{
              addPreset(input: {{cluster: $cluster, name: $name, {PRESET_FIELDS}}}) {{
                preset {{ name }} }} }}""",
            expect(NOT_FOUND, ok=["platform_admin"]),
            lambda world, _: {"cluster": GPU, "name": world.name("preset-")},
        ),
    ),
    "updatePreset": (
        Case(
            f"""mutation($cluster: String!, $name: String!) {{
              updatePreset(input: {{cluster: $cluster, name: $name, {PRESET_FIELDS}}}) {{
                preset {{ name }} }} }}""",
            expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]),
            _fresh_preset,
        ),
    ),
    "removePreset": (
        Case(
            """mutation($cluster: String!, $name: String!) {
              removePreset(input: {cluster: $cluster, name: $name}) { preset { name } } }""",
            expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]),
            _fresh_preset,
        ),
    ),
    "updateClusterSettings": (
        Case(
            """mutation($cluster: String!) {
              updateClusterSettings(input: {cluster: $cluster, defaultLifeSpanSeconds: null}) {
                cluster { name } } }""",
            expect(FORBIDDEN, ok=["cluster_admin", "platform_admin"]),
            _static(cluster=CLUSTER),
        ),
        Case(
            """mutation($cluster: String!) {
              updateClusterSettings(input: {cluster: $cluster, defaultLifeSpanSeconds: null}) {
                cluster { name } } }""",
            expect(NOT_FOUND, ok=["platform_admin"]),
            _static(cluster=GPU),
        ),
    ),
    # The Config API is the platform admins'; a cluster the caller may not use is not found.
    "clusterConfigs": (
        Case(
            "{ clusterConfigs { name status } }",
            expect(FORBIDDEN, ok=["platform_admin"]),
        ),
    ),
    "clusterConfig": (
        Case(
            "query($name: String!) { clusterConfig(name: $name) { name } }",
            expect(FORBIDDEN, ok=["platform_admin"]),
            _static(name=CLUSTER),
        ),
        Case(
            "query($name: String!) { clusterConfig(name: $name) { name } }",
            expect(NOT_FOUND, ok=["platform_admin"]),
            _static(name=GPU),
        ),
    ),
    "addCluster": (
        Case(
            """mutation($name: String!, $gateway: String!) {
              addCluster(input: {name: $name, gateway: $gateway}) { cluster { name } } }""",
            expect(FORBIDDEN, ok=["platform_admin"]),
            lambda world, _: {"name": world.name("cluster-"), "gateway": UNSERVED_GATEWAY},
        ),
    ),
    "updateCluster": (
        Case(
            """mutation($name: String!) {
              updateCluster(input: {name: $name}) { cluster { name } } }""",
            expect(FORBIDDEN, ok=["platform_admin"]),
            _static(name=CLUSTER),
        ),
        Case(
            """mutation($name: String!) {
              updateCluster(input: {name: $name}) { cluster { name } } }""",
            expect(NOT_FOUND, ok=["platform_admin"]),
            _static(name=GPU),
        ),
    ),
    "removeCluster": (
        Case(
            """mutation($name: String!) {
              removeCluster(name: $name) { cluster { name } stoppedJobs } }""",
            expect(NOT_FOUND, ok=["platform_admin"]),
            _fresh_cluster,
        ),
    ),
    # -- storage --
    "storageEntry": (
        Case(
            "query($uri: String!) { storageEntry(uri: $uri) { path } }",
            expect(NOT_FOUND, ok=STORAGE_READERS),
            _static(uri=STORAGE),
        ),
    ),
    "storageEntries": (
        Case(
            "query($uri: String!) { storageEntries(uri: $uri) { totalCount edges { cursor } } }",
            expect(NOT_FOUND, ok=STORAGE_READERS),
            _static(uri=STORAGE),
        ),
    ),
    "storageGlob": (
        Case(
            """query($uri: String!) {
              storageGlob(uri: $uri, pattern: "*") { matches { path } truncated } }""",
            expect(NOT_FOUND, ok=STORAGE_READERS),
            _static(uri=STORAGE),
        ),
    ),
    "storageUsage": (
        Case(
            "query($uri: String!) { storageUsage(uri: $uri) { size files } }",
            expect(NOT_FOUND, ok=STORAGE_READERS),
            _static(uri=STORAGE),
        ),
    ),
    "storageDisk": (
        Case(
            "query($uri: String!) { storageDisk(uri: $uri) { total free } }",
            expect(NOT_FOUND, ok=STORAGE_READERS),
            _static(uri=STORAGE),
        ),
    ),
    "storageUploadOffset": (
        Case(
            "query($uri: String!) { storageUploadOffset(uri: $uri) }",
            STORAGE_WRITE,
            _static(uri=f"{STORAGE}/upload"),
        ),
    ),
    "makeStorageDirectory": (
        Case(MKDIR, STORAGE_WRITE, lambda world, _: {"uri": f"{STORAGE}/{world.name('made')}"}),
    ),
    "removeStorageEntry": (
        Case(
            """mutation($uri: String!) {
              removeStorageEntry(input: {uri: $uri, recursive: true}) { removed } }""",
            STORAGE_WRITE,
            _storage_entry,
        ),
    ),
    "moveStorageEntry": (
        Case(
            """mutation($source: String!, $target: String!) {
              moveStorageEntry(input: {source: $source, target: $target}) { entry { path } } }""",
            STORAGE_WRITE,
            _storage_pair,
        ),
    ),
    "copyStorageEntry": (
        Case(
            """mutation($source: String!, $target: String!) {
              copyStorageEntry(input: {source: $source, target: $target}) { entry { path } } }""",
            STORAGE_WRITE,
            _storage_pair,
        ),
    ),
    "syncStorageDirectory": (
        Case(
            """mutation($uri: String!) {
              syncStorageDirectory(input: {uri: $uri, files: [
                {path: "train.py", size: 5, mtime: 1700000000.5}]}) { upload removed } }""",
            STORAGE_WRITE,
            lambda world, _: {"uri": f"{STORAGE}/{world.name('synced')}"},
        ),
    ),
    # -- Subscription (over the WebSocket: test_subscriptions) --
    "jobChanges": (Case("subscription { jobChanges { id } }", expect(HIDDEN, ok=JOB_READERS)),),
    "jobStatus": (
        Case(
            "subscription($id: ID!) { jobStatus(id: $id) { id } }",
            expect(NOT_FOUND, ok=JOB_READERS),
            _job_id,
        ),
    ),
    "jobLogs": (
        Case(
            "subscription($id: ID!) { jobLogs(id: $id, follow: false) { text } }",
            expect(NOT_FOUND, ok=JOB_READERS),
            _job_id,
        ),
    ),
    # The job runs and gives samples while the case runs (test_job_telemetry).
    "jobTelemetry": (
        Case(
            "subscription($id: ID!) { jobTelemetry(id: $id) { cpuPercent } }",
            expect(NOT_FOUND, ok=JOB_READERS),
            _job_id,
        ),
    ),
}


@dataclass(frozen=True)
class RouteCase:
    path: Callable[[World], str]
    # Each subject's outcome; None: a public route, the same answer for everyone.
    expected: Mapping[str, str] | None
    headers: Callable[[World], dict[str, str]] = lambda _: {}
    # The HTTP status of OK: the job proxy lets a caller by to a job where nothing listens.
    ok_status: int = 200


def _job_host(world: World) -> dict[str, str]:
    """The host name of the world's exposed job (it has no name: its id)."""
    return {"Host": f"{world.job['id']}.jobs.localhost"}


# The ingress routes answer who may not read the job as for no job: 403 (401 anonymous).
INGRESS = expect(FORBIDDEN, ok=JOB_READERS)
FORWARD_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

ROUTES: dict[tuple[str, str], RouteCase] = {
    ("GET", "/api/jobs/{job_id}/log"): RouteCase(
        lambda world: f"/api/jobs/{world.job['id']}/log", expect(NOT_FOUND, ok=JOB_READERS)
    ),
    ("GET", "/healthz"): RouteCase(lambda _: "/healthz", None),
    ("GET", "/metrics"): RouteCase(lambda _: "/metrics", None),
    ("GET", "/graphiql/{name}"): RouteCase(lambda _: "/graphiql/graphiql.js", None),
    # The sign-in form for job hosts; a POST without a user name and password is 400.
    ("GET", "/auth/login"): RouteCase(lambda _: "/auth/login", None),
    ("POST", "/auth/login"): RouteCase(lambda _: "/auth/login", None),
    **{
        (method, "/auth/forward"): RouteCase(
            lambda world: f"/auth/forward?job={world.job['id']}", INGRESS
        )
        for method in FORWARD_METHODS
    },
    # Storage bytes: a download (a file, or the tree itself, which is no file: 400), an upload.
    ("GET", "/api/storage/{cluster}/{org}/{project}/{path:path}"): RouteCase(
        _storage_file, expect(NOT_FOUND, ok=STORAGE_READERS)
    ),
    ("GET", "/api/storage/{cluster}/{org}/{project}"): RouteCase(
        lambda _: f"/api/storage/{CLUSTER}/{ORG}/{PROJECT}",
        expect(NOT_FOUND, ok=STORAGE_READERS),
        ok_status=400,
    ),
    ("PUT", "/api/storage/{cluster}/{org}/{project}/{path:path}"): RouteCase(
        lambda _: f"/api/storage/{CLUSTER}/{ORG}/{PROJECT}/uploaded",
        STORAGE_WRITE,
        ok_status=201,
    ),
    # Many files as a tar stream: an upload into a directory (an empty body is an empty
    # archive), a download of the files listed in the body (none: an empty archive).
    ("PUT", "/api/storage-archive/{cluster}/{org}/{project}/{path:path}"): RouteCase(
        lambda _: f"/api/storage-archive/{CLUSTER}/{ORG}/{PROJECT}/archived",
        STORAGE_WRITE,
        ok_status=201,
    ),
    ("PUT", "/api/storage-archive/{cluster}/{org}/{project}"): RouteCase(
        lambda _: f"/api/storage-archive/{CLUSTER}/{ORG}/{PROJECT}", STORAGE_WRITE, ok_status=201
    ),
    ("POST", "/api/storage-archive/{cluster}/{org}/{project}/{path:path}"): RouteCase(
        lambda world: (
            _storage_file(world).replace("/api/storage/", "/api/storage-archive/")[
                : -len("/matrix.txt")
            ]
            + "/archive-source"
        ),
        expect(NOT_FOUND, ok=STORAGE_READERS),
    ),
    ("POST", "/api/storage-archive/{cluster}/{org}/{project}"): RouteCase(
        lambda world: _storage_file(world).replace("/api/storage/", "/api/storage-archive/")[
            : -len("/matrix.txt")
        ],
        expect(NOT_FOUND, ok=STORAGE_READERS),
    ),
    # Object bytes: a read, a write, an upload started, a delete (204, as S3, even of none).
    ("GET", BLOB_ROUTE): RouteCase(lambda _: f"{BLOB_URL}/k", BUCKET_READ),
    ("PUT", BLOB_ROUTE): RouteCase(lambda _: f"{BLOB_URL}/written", BUCKET_WRITE),
    ("POST", BLOB_ROUTE): RouteCase(lambda _: f"{BLOB_URL}/big?uploads", BUCKET_WRITE),
    ("DELETE", BLOB_ROUTE): RouteCase(lambda _: f"{BLOB_URL}/scratch", BUCKET_WRITE, ok_status=204),
    # A secret's value, set (a new key each time: 201); no route reads one back.
    ("PUT", SECRET_ROUTE): RouteCase(
        lambda world: f"/api/secrets/{CLUSTER}/{ORG}/{PROJECT}/{world.name('r')}",
        SECRET_WRITE,
        ok_status=201,
    ),
    # The job proxy: every path of an exposed job's host.
    ("ANY", "{label}.jobs.localhost"): RouteCase(
        lambda _: "/", INGRESS, headers=_job_host, ok_status=502
    ),
}


# WebSocket routes into a running job: write on it. OK is the WebSocket accepted; a failure
# is the HTTP denial response's status. The fake runtime serves no port: past the permission
# check, port-forward answers 503 (UNAVAILABLE, nothing listens).
JOB_WRITE = expect(
    NOT_FOUND, forbidden=["shared_read", "reader"], ok=set(JOB_READERS) - {"shared_read", "reader"}
)
WEBSOCKET_ROUTES: dict[str, RouteCase] = {
    "/api/jobs/{job_id}/exec": RouteCase(
        lambda world: f"/api/jobs/{world.job['id']}/exec?command=true", JOB_WRITE
    ),
    "/api/jobs/{job_id}/attach": RouteCase(
        lambda world: f"/api/jobs/{world.job['id']}/attach", JOB_WRITE
    ),
    "/api/jobs/{job_id}/port-forward": RouteCase(
        lambda world: f"/api/jobs/{world.job['id']}/port-forward?port=80", JOB_WRITE, ok_status=503
    ),
}


# -- running a case --------------------------------------------------------------------------


async def _variables(case: Case, world: World, subject: str) -> dict[str, Any]:
    value = case.variables(world, subject)
    if inspect.isawaitable(value):
        value = await value
    assert isinstance(value, dict)
    return value


def _connections_count_what_they_list(answer: Any) -> None:
    """Every connection in the answer counts exactly what it lists (all fit in one page)."""
    if isinstance(answer, dict):
        if "totalCount" in answer and "edges" in answer:
            assert answer["totalCount"] == len(answer["edges"]), answer
        for value in answer.values():
            _connections_count_what_they_list(value)
    elif isinstance(answer, list):
        for value in answer:
            _connections_count_what_they_list(value)


async def _outcome(case: Case, world: World, subject: str) -> str:
    variables = await _variables(case, world, subject)
    token = world.tokens[subject]
    if case.spends_token and token is not None:
        token = await world.token(subject)
    try:
        answer = await world.api.gql(case.document, variables, token=token)
    except GraphQLErrors as errors:
        return str(errors.code)
    _connections_count_what_they_list(answer)
    if case.found is None:
        return OK
    return OK if case.found(answer, world) else HIDDEN


def _schema_fields() -> dict[str, set[str]]:
    schema = graphql.build_schema(create_schema().as_str())
    return {
        kind: set(root.fields) if root is not None else set()
        for kind, root in (
            ("query", schema.query_type),
            ("mutation", schema.mutation_type),
            ("subscription", schema.subscription_type),
        )
    }


FIELDS = _schema_fields()
REQUESTS = sorted(FIELDS["query"] | FIELDS["mutation"])


def test_every_operation_and_route_has_an_entry(tmp_path: Path) -> None:
    fields = set().union(*FIELDS.values())
    assert set(OPERATIONS) == fields
    for name, cases in OPERATIONS.items():
        assert cases, name
        for case in cases:
            assert set(case.expected) == set(SUBJECTS), name
    app = create_app(make_settings(tmp_path))
    routes = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path != "/graphql"
        for method in route.methods or ()
        if method != "HEAD"
    }
    routes |= {("ANY", route.host) for route in app.routes if isinstance(route, Host)}
    assert set(ROUTES) == routes
    sockets = {
        route.path
        for route in app.routes
        if isinstance(route, WebSocketRoute) and route.path != "/graphql"
    }
    assert set(WEBSOCKET_ROUTES) == sockets


@MODULE_LOOP
@pytest.mark.parametrize("operation", REQUESTS)
async def test_queries_and_mutations(world: World, operation: str) -> None:
    wrong = []
    for number, case in enumerate(OPERATIONS[operation]):
        for subject in SUBJECTS:
            got = await _outcome(case, world, subject)
            if got != case.expected[subject]:
                wrong.append(
                    f"case {number}, {subject}: expected {case.expected[subject]}, got {got}"
                )
    assert wrong == []


@MODULE_LOOP
@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda route: f"{route[0]} {route[1]}")
async def test_routes(world: World, route: tuple[str, str]) -> None:
    method, _ = route
    method = "GET" if method == "ANY" else method
    case = ROUTES[route]
    statuses = {}
    for subject in SUBJECTS:
        token = world.tokens[subject]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(case.headers(world))
        response = await world.api.http.request(method, case.path(world), headers=headers)
        statuses[subject] = response.status_code
    if case.expected is None:
        assert set(statuses.values()) == {statuses[ANONYMOUS]}, statuses
        assert statuses[ANONYMOUS] not in (401, 403), statuses
    else:
        status_of = {**HTTP_STATUS, OK: case.ok_status}
        assert statuses == {
            subject: status_of[outcome] for subject, outcome in case.expected.items()
        }


async def _websocket_status(world: World, path: str, token: str | None) -> int:
    """101 when the app accepts the WebSocket, else the status of its denial response."""
    route, _, query = path.partition("?")
    headers = [(b"host", b"glia.test")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "http_version": "1.1",
        "path": route, "raw_path": route.encode(), "root_path": "",
        "query_string": query.encode(), "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("glia.test", 80), "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }  # fmt: skip
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(event: MutableMapping[str, Any]) -> None:
        await outgoing.put(dict(event))

    await incoming.put({"type": "websocket.connect"})
    task = asyncio.create_task(world.app(scope, incoming.get, send))
    try:
        async with asyncio.timeout(5):
            first = await outgoing.get()
        if first["type"] == "websocket.accept":
            return 101
        assert first["type"] == "websocket.http.response.start", first
        return int(first["status"])
    finally:
        await incoming.put({"type": "websocket.disconnect", "code": 1000})
        try:
            async with asyncio.timeout(5):
                await task
        except TimeoutError:
            task.cancel()


@MODULE_LOOP
@pytest.mark.parametrize("route", sorted(WEBSOCKET_ROUTES))
async def test_websocket_routes(world: World, route: str) -> None:
    case = WEBSOCKET_ROUTES[route]
    assert case.expected is not None
    got = {
        subject: await _websocket_status(world, case.path(world), world.tokens[subject])
        for subject in SUBJECTS
    }
    status_of = {**HTTP_STATUS, OK: 101 if case.ok_status == 200 else case.ok_status}
    assert got == {subject: status_of[outcome] for subject, outcome in case.expected.items()}


# -- subscriptions, over a WebSocket -----------------------------------------------------------


class Socket:
    """A graphql-transport-ws client that drives the app's ASGI interface in this loop."""

    def __init__(self, app: Starlette, token: str | None) -> None:
        self._app = app
        self._token = token
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.closed: int | None = None

    async def __aenter__(self) -> Socket:
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"glia.test"),
                (b"sec-websocket-protocol", b"graphql-transport-ws"),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("glia.test", 80),
            "subprotocols": ["graphql-transport-ws"],
        }
        await self._incoming.put({"type": "websocket.connect"})
        self._task = asyncio.create_task(self._app(scope, self._incoming.get, self._send))
        accepted = await self._event()
        assert accepted["type"] == "websocket.accept", accepted
        payload = {"authToken": self._token} if self._token else {}
        await self.send({"type": "connection_init", "payload": payload})
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._incoming.put({"type": "websocket.disconnect", "code": 1000})
        assert self._task is not None
        try:
            async with asyncio.timeout(5):
                await self._task
        except TimeoutError:
            self._task.cancel()

    async def _event(self, wait_s: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(wait_s):
            return await self._outgoing.get()

    async def _send(self, event: MutableMapping[str, Any]) -> None:
        await self._outgoing.put(dict(event))

    async def send(self, message: dict[str, Any]) -> None:
        await self._incoming.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self, wait_s: float = 5.0) -> dict[str, Any] | None:
        """The next message; None once the server closed the socket (`closed` says how)."""
        if self.closed is not None:
            return None
        event = await self._event(wait_s)
        if event["type"] == "websocket.close":
            self.closed = int(event.get("code", 1000))
            return None
        message: dict[str, Any] = json.loads(event["text"])
        return message

    async def acknowledged(self) -> bool:
        message = await self.receive()
        return message is not None and message["type"] == "connection_ack"

    async def subscribe(self, query: str, variables: dict[str, Any]) -> None:
        payload = {"query": query, "variables": variables}
        await self.send({"id": "1", "type": "subscribe", "payload": payload})


def _error_code(message: dict[str, Any]) -> str | None:
    """The code of an `error` message, or of a `next` carrying errors."""
    if message["type"] == "error":
        return str(message["payload"][0]["extensions"]["code"])
    if message["type"] == "next" and message["payload"].get("errors"):
        return str(message["payload"]["errors"][0]["extensions"]["code"])
    return None


async def _first_answer(world: World, subject: str, case: Case) -> str:
    """What the subject's subscription answers first: OK for data, else the error code."""
    async with Socket(world.app, world.tokens[subject]) as socket:
        if not await socket.acknowledged():
            assert socket.closed == 4401, socket.closed
            return UNAUTHENTICATED
        await socket.subscribe(case.document, await _variables(case, world, subject))
        message = await socket.receive()
        assert message is not None
        code = _error_code(message)
        if code is not None:
            return code
        assert message["type"] == "next", message
        return OK


@MODULE_LOOP
@pytest.mark.parametrize("operation", ["jobStatus", "jobLogs"])
async def test_subscriptions_to_one_job(world: World, operation: str) -> None:
    [case] = OPERATIONS[operation]
    got = {subject: await _first_answer(world, subject, case) for subject in SUBJECTS}
    assert got == dict(case.expected)


@MODULE_LOOP
async def test_job_telemetry(world: World) -> None:
    [case] = OPERATIONS["jobTelemetry"]

    async def sample() -> None:
        while True:  # a reader's subscription gets the next one; a stranger's none
            world.runtime.emit_telemetry(world.job["id"], 12.5, 1024)
            await asyncio.sleep(0.1)

    sampling = asyncio.create_task(sample())
    try:
        got = {subject: await _first_answer(world, subject, case) for subject in SUBJECTS}
    finally:
        sampling.cancel()
    assert got == dict(case.expected)


@MODULE_LOOP
async def test_job_changes_reach_only_those_who_may_read_the_job(world: World) -> None:
    [case] = OPERATIONS["jobChanges"]
    async with contextlib.AsyncExitStack() as stack:
        sockets = {
            subject: await stack.enter_async_context(Socket(world.app, world.tokens[subject]))
            for subject in SUBJECTS
        }
        got: dict[str, str] = {}
        for subject, socket in sockets.items():
            if await socket.acknowledged():
                await socket.subscribe(case.document, {})
            else:
                assert socket.closed == 4401, socket.closed
                got[subject] = UNAUTHENTICATED
        await asyncio.sleep(0.3)  # every stream has subscribed to the bus
        job = await world.fresh_job()
        # Its end is a change seen after it was shared (its start may come before).
        world.runtime.finish(job["id"], 0)

        async def seen(socket: Socket) -> bool:
            """Whether the socket is told of the job before it has been quiet for a second."""
            while True:
                try:
                    message = await socket.receive(wait_s=1.0)
                except TimeoutError:
                    return False
                assert message is not None and _error_code(message) is None, message
                if message["payload"]["data"]["jobChanges"]["id"] == job["id"]:
                    return True

        listening = [subject for subject in SUBJECTS if subject not in got]
        answers = await asyncio.gather(*(seen(sockets[subject]) for subject in listening))
        got.update(
            {
                subject: OK if seen_it else HIDDEN
                for subject, seen_it in zip(listening, answers, strict=True)
            }
        )
    assert got == dict(case.expected)


# -- a stranger learns nothing ------------------------------------------------------------------

MISSING_JOB = "job-00000000-0000-0000-0000-000000000000"
MISSING_URI = f"job://{CLUSTER}/{ORG}/{PROJECT}/{MISSING_JOB}"

# (operation, variables for the real target, for one that does not exist)
PROBES: list[tuple[str, Callable[[World], dict[str, Any]], dict[str, Any]]] = [
    ("job", lambda world: {"id": world.job["id"]}, {"id": MISSING_JOB}),
    ("node", lambda world: {"id": world.job["id"]}, {"id": MISSING_JOB}),
    ("node", lambda world: {"id": world.gpu_id}, {"id": str(uuid.uuid4())}),
    ("killJob", lambda world: {"id": world.job["id"]}, {"id": MISSING_JOB}),
    ("org", lambda _: {"name": ORG}, {"name": "nothing"}),
    ("orgMembers", lambda _: {"org": ORG}, {"org": "nothing"}),
    ("project", lambda _: {"org": ORG, "name": PROJECT}, {"org": ORG, "name": "nothing"}),
    ("projectMembers", lambda _: {"org": ORG, "project": PROJECT}, {"org": ORG, "project": "x"}),
    ("submitJob", lambda _: {"org": ORG, "project": PROJECT}, {"org": ORG, "project": "x"}),
    ("clusterUsers", lambda _: {"cluster": GPU}, {"cluster": "nothing"}),
    ("serviceAccount", lambda _: {"name": SERVICE_ACCOUNT}, {"name": "org_admin/nothing"}),
    (
        "grant",
        lambda world: {"uri": world.job["uri"], "subject": "bystander", "action": "read"},
        {"uri": MISSING_URI, "subject": "bystander", "action": "read"},
    ),
    (
        "revoke",
        lambda world: {"uri": world.job["uri"], "subject": "shared_read"},
        {"uri": MISSING_URI, "subject": "shared_read"},
    ),
]


@MODULE_LOOP
@pytest.mark.parametrize(
    ("operation", "real", "missing"),
    PROBES,
    ids=[f"{probe[0]}-{i}" for i, probe in enumerate(PROBES)],
)
async def test_a_stranger_gets_the_same_answer_for_what_exists_and_what_does_not(
    world: World, operation: str, real: Callable[[World], dict[str, Any]], missing: dict[str, Any]
) -> None:
    document = OPERATIONS[operation][0].document
    answers = []
    for variables in (real(world), missing):
        with pytest.raises(GraphQLErrors) as caught:
            await world.gql("stranger", document, variables)
        answers.append(caught.value.code)
    assert answers[0] == answers[1]


@MODULE_LOOP
async def test_the_log_route_answers_a_stranger_as_for_no_job(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['stranger']}"}
    real = await world.api.http.get(f"/api/jobs/{world.job['id']}/log", headers=headers)
    missing = await world.api.http.get(f"/api/jobs/{MISSING_JOB}/log", headers=headers)
    assert real.status_code == missing.status_code == 404
    assert real.json()["errors"][0]["extensions"] == missing.json()["errors"][0]["extensions"]


@MODULE_LOOP
@pytest.mark.parametrize("operation", ["setClusterUser", "removeClusterUser", "setOrgMember"])
async def test_without_a_token_nothing_is_looked_up(world: World, operation: str) -> None:
    """Whether a user exists is not for anonymous callers to find out."""
    document = OPERATIONS[operation][0].document
    for user in ("bystander", "nobody-at-all"):
        variables = {"cluster": CLUSTER, "org": ORG, "user": user, "role": "USER"}
        names = {name for name in ("cluster", "org", "user", "role") if f"${name}" in document}
        with pytest.raises(GraphQLErrors) as caught:
            await world.api.gql(document, {k: v for k, v in variables.items() if k in names})
        assert caught.value.code == UNAUTHENTICATED, user
