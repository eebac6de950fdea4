"""One migration history for both dialects: upgrade, no drift from the models, downgrade, and
the migrations that move data, on databases with data in them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from control_plane.events import InProcessBus
from control_plane.services.acl import AclService
from control_plane.services.clusters import ClustersService
from control_plane.services.orgs import OrgsService
from control_plane.store.database import Database
from control_plane.store.models import Base
from glia.acl import Action


async def test_upgrade_check_downgrade(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate()

        def drift(connection):  # type: ignore[no-untyped-def]
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True}
            )
            return compare_metadata(context, Base.metadata)

        def tables(connection):  # type: ignore[no-untyped-def]
            return set(inspect(connection).get_table_names()) - {"alembic_version"}

        async with db.engine.connect() as connection:
            assert await connection.run_sync(drift) == []
            assert await connection.run_sync(tables) == set(Base.metadata.tables)

        await db.downgrade("base")
        async with db.engine.connect() as connection:
            assert await connection.run_sync(tables) == set()

        await db.migrate()  # and up again from nothing
        async with db.engine.connect() as connection:
            assert await connection.run_sync(tables) == set(Base.metadata.tables)
    finally:
        await db.dispose()


async def test_users_that_exist_get_job_uids_in_order(database_url: str) -> None:
    """0003 backfills users.uid on a database with users in it, oldest first."""
    db = Database(database_url)
    try:
        await db.migrate("0002")
        async with db.engine.begin() as connection:
            for i, name in enumerate(("old", "older", "oldest")):
                await connection.execute(
                    text(
                        "INSERT INTO users (id, name, role, disabled, created_at) "
                        "VALUES (:id, :name, 'user', false, :at)"
                    ),
                    {"id": f"u{i}", "name": name, "at": datetime(2026, 1, 3 - i, tzinfo=UTC)},
                )
        await db.migrate()
        async with db.engine.connect() as connection:
            rows = (
                await connection.execute(text("SELECT name, uid FROM users ORDER BY uid"))
            ).all()
        assert [tuple(row) for row in rows] == [
            ("oldest", 200_000),
            ("older", 200_001),
            ("old", 200_002),
        ]
        await db.downgrade("0002")  # and back, with the data in
        await db.migrate()
    finally:
        await db.dispose()


_users = sa.table(
    "users",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("role", sa.String),
    sa.column("disabled", sa.Boolean),
    sa.column("uid", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_clusters = sa.table(
    "clusters",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("gateway", sa.String),
    sa.column("status", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_jobs = sa.table(
    "jobs",
    *(sa.column(name, sa.String) for name in ("id", "owner_id", "cluster_id", "org")),
    *(sa.column(name, sa.String) for name in ("project", "uri", "preset", "status")),
    sa.column("cpu", sa.Float),
    sa.column("memory_mb", sa.BigInteger),
    sa.column("gpu", sa.Integer),
    sa.column("pids_limit", sa.Integer),
    sa.column("command", sa.JSON),
    sa.column("env", sa.JSON),
    sa.column("tags", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_acl_rules = sa.table(
    "acl_rules",
    sa.column("ptype", sa.String),
    sa.column("v0", sa.String),
    sa.column("v1", sa.String),
    sa.column("v2", sa.String),
)


async def test_0004_moves_jobs_and_their_grants_into_personal_orgs(database_url: str) -> None:
    """On a database with users, a cluster, jobs and grants at 0003: each user gets a personal
    org and project, the jobs and the grants on them move there, and the same people may read
    the same jobs once the control plane has written the roles' grants."""
    db = Database(database_url)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    job, other_job, bobs_job = (f"job-{uuid.uuid4()}" for _ in range(3))
    old, new = "job://c/default/alice", "job://c/alice/alice"
    try:
        await db.migrate("0003")
        async with db.engine.begin() as connection:
            for uid, name in enumerate(("alice", "bob", "carol", "dave")):
                await connection.execute(
                    _users.insert().values(
                        id=f"id-{name}",
                        name=name,
                        role="user",
                        disabled=name == "dave",
                        uid=200_000 + uid,
                        created_at=at,
                    )
                )
            await connection.execute(
                _clusters.insert().values(
                    id="cluster-c", name="c", gateway="embedded", status="ready", created_at=at
                )
            )
            for job_id, owner in ((job, "alice"), (other_job, "alice"), (bobs_job, "bob")):
                await connection.execute(
                    _jobs.insert().values(
                        id=job_id,
                        owner_id=f"id-{owner}",
                        cluster_id="cluster-c",
                        org="default",
                        project=owner,
                        uri=f"job://c/default/{owner}/{job_id}",
                        preset="cpu-small",
                        status="running",
                        cpu=0.5,
                        memory_mb=512,
                        gpu=0,
                        pids_limit=1024,
                        command=["sleep", "1"],
                        env={},
                        tags=[],
                        created_at=at,
                    )
                )
            # Rows that point at users and jobs, which SQLite's table copies must keep.
            await connection.execute(
                text(
                    "INSERT INTO tokens (id, user_id, description, created_at, expires_at) "
                    "VALUES ('token-1', 'id-alice', 'cli', :at, :at)"
                ),
                {"at": at},
            )
            await connection.execute(
                text(
                    "INSERT INTO job_status_history (job_id, status, at) "
                    "VALUES (:job, 'running', :at)"
                ),
                {"job": job, "at": at},
            )
            rules = [
                ("p", "user:alice", old, "manage"),  # the old self-grants: now the roles'
                ("p", "user:bob", "job://c/default/bob", "manage"),
                ("p", "user:bob", f"{old}/{job}", "read"),  # a share
                ("p", "role:readers", f"{old}/{other_job}", "read"),  # a share with a role
                ("g", "user:bob", "role:readers", ""),
                ("g", "user:admin", "role:admin", ""),
                ("p", "role:admin", "*", "manage"),
            ]
            for ptype, v0, v1, v2 in rules:
                await connection.execute(
                    _acl_rules.insert().values(ptype=ptype, v0=v0, v1=v1, v2=v2)
                )

        await db.migrate()

        async with db.engine.connect() as connection:
            jobs = {
                row.id: (row.org, row.project, row.uri)
                for row in await connection.execute(sa.select(_jobs))
            }
            stored = {tuple(row) for row in await connection.execute(sa.select(_acl_rules))}
            orgs = (
                await connection.execute(
                    text(
                        "SELECT orgs.name, users.name, projects.name, clusters.name "
                        "FROM orgs JOIN users ON users.id = orgs.owner_id "
                        "JOIN projects ON projects.org_id = orgs.id "
                        "JOIN org_clusters ON org_clusters.org_id = orgs.id "
                        "JOIN clusters ON clusters.id = org_clusters.cluster_id"
                    )
                )
            ).all()
            kept = [
                await connection.scalar(text(f"SELECT count(*) FROM {table}"))
                for table in ("tokens", "job_status_history")
            ]
        assert kept == [1, 1]
        assert jobs == {
            job: ("alice", "alice", f"{new}/{job}"),
            other_job: ("alice", "alice", f"{new}/{other_job}"),
            bobs_job: ("bob", "bob", f"job://c/bob/bob/{bobs_job}"),
        }
        assert not [rule for rule in stored if rule[2].startswith("job://c/default")]
        assert ("p", "user:bob", f"{new}/{job}", "read") in stored
        assert ("p", "role:readers", f"{new}/{other_job}", "read") in stored
        assert not [
            rule
            for rule in stored
            if rule[0] == "p" and rule[1] in ("user:alice", "user:bob") and rule[3] == "manage"
        ]
        assert sorted(tuple(row) for row in orgs) == [
            (name, name, name, "c") for name in ("alice", "bob", "carol", "dave")
        ]
        links = {(rule[1], rule[2]) for rule in stored if rule[0] == "g"}
        assert links == {
            ("user:bob", "role:readers"),
            ("user:admin", "role:admin"),
            *(
                (f"user:{name}", role)
                for name in ("alice", "bob", "carol")  # not dave, who was deleted
                for role in (f"role:org/{name}/admin", f"role:project/{name}/{name}/admin")
            ),
        }

        # What the control plane writes at start (the grants the roles carry), then who may
        # read what.
        bus = InProcessBus()
        acl = AclService(db, bus)
        await acl.load()
        async with db.session() as session:
            assert await OrgsService(acl=acl, clusters=ClustersService()).sync(session) > 0

        def may_read(name: str, job_id: str) -> bool:
            return acl.index.check(f"user:{name}", jobs[job_id][2], Action.READ)

        assert may_read("alice", job) and may_read("alice", other_job)
        assert may_read("bob", job) and may_read("bob", other_job) and may_read("bob", bobs_job)
        assert not may_read("carol", job) and not may_read("carol", other_job)
        assert not may_read("alice", bobs_job) and not may_read("dave", job)
        assert acl.index.check("user:alice", f"{new}/{job}", Action.MANAGE)
        assert not acl.index.check("user:bob", f"{new}/{job}", Action.WRITE)

        await db.downgrade("0003")  # and back, with the data in
        await db.migrate()
    finally:
        await db.dispose()


async def test_0005_gives_unfinished_jobs_their_names_and_tags_their_rows(
    database_url: str,
) -> None:
    """On a database at 0004 whose check-then-insert let two unfinished jobs of one owner
    share a name: the newest holds the name, the other keeps it for reading; finished jobs
    hold none; every tag gets its row; and the index then refuses a second holder."""
    db = Database(database_url)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    jobs = sa.table(
        "jobs",
        *(sa.column(c, sa.String) for c in ("id", "owner_id", "cluster_id", "org", "project")),
        *(sa.column(c, sa.String) for c in ("uri", "preset", "status", "name")),
        *(sa.column(c, sa.Float) for c in ("cpu",)),
        *(sa.column(c, sa.Integer) for c in ("memory_mb", "gpu", "pids_limit")),
        *(sa.column(c, sa.JSON) for c in ("command", "env", "tags")),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    # (id, name, status, minutes after `at`, tags); old names that no longer fit still read.
    made = [
        ("job-old-dup", "train", "running", 1, ["a", "b"]),
        ("job-new-dup", "train", "pending", 2, ["a"]),
        ("job-done", "eval", "succeeded", 3, ["a", "a"]),
        ("job-running", "Old_Name", "running", 4, []),
        ("job-nameless", None, "running", 5, ["z"]),
    ]
    try:
        await db.migrate("0004")
        async with db.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO users (id, name, role, kind, disabled, uid, created_at) "
                    "VALUES ('id-alice', 'alice', 'user', 'user', false, 200000, :at)"
                ),
                {"at": at},
            )
            await connection.execute(
                _clusters.insert().values(
                    id="cluster-c", name="c", gateway="embedded", status="ready", created_at=at
                )
            )
            for job_id, name, status, minutes, tags in made:
                await connection.execute(
                    jobs.insert().values(
                        id=job_id,
                        name=name,
                        owner_id="id-alice",
                        cluster_id="cluster-c",
                        org="alice",
                        project="alice",
                        uri=f"job://c/alice/alice/{job_id}",
                        preset="cpu-small",
                        status=status,
                        cpu=0.5,
                        memory_mb=512,
                        gpu=0,
                        pids_limit=1024,
                        command=["true"],
                        env={},
                        tags=tags,
                        created_at=at.replace(minute=minutes),
                    )
                )
        await db.migrate("0005")
        async with db.engine.connect() as connection:
            active = dict(
                (await connection.execute(text("SELECT id, active_name FROM jobs"))).all()
            )
            tags = sorted(
                (await connection.execute(text("SELECT job_id, tag FROM job_tags"))).all()
            )
        assert active == {
            "job-old-dup": None,
            "job-new-dup": "train",
            "job-done": None,
            "job-running": "Old_Name",
            "job-nameless": None,
        }
        assert [tuple(t) for t in tags] == [
            ("job-done", "a"),
            ("job-nameless", "z"),
            ("job-new-dup", "a"),
            ("job-old-dup", "a"),
            ("job-old-dup", "b"),
        ]
        with pytest.raises(sa.exc.IntegrityError):
            async with db.engine.begin() as connection:
                await connection.execute(
                    text("UPDATE jobs SET active_name = 'train' WHERE id = 'job-old-dup'")
                )
        await db.downgrade("0004")  # and back, with the data in
        await db.migrate("0005")
    finally:
        await db.dispose()
