"""One migration history for both dialects: upgrade, no drift from the models, downgrade."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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
