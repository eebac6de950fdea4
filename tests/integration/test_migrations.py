"""One migration history for both dialects: upgrade, no drift from the models, downgrade."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from control_plane.store.database import Database
from control_plane.store.models import Base


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
