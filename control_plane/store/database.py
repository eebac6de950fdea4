"""Engine, sessions and migrations for the control plane's database."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import Connection, ExceptionContext, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from glia.errors import GliaError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# How long a SQLite write waits for the database's one writer before it gives up. A
# transaction holds the writer across its statements, and each statement waits its turn on
# the event loop: with the loop full (bench/burst.py, 16 clients), writes waited past
# SQLite's usual 5 s.
BUSY_TIMEOUT_S = 15.0

logger = logging.getLogger(__name__)


class DatabaseBusy(GliaError):
    """A write waited for SQLite's one writer past `BUSY_TIMEOUT_S`: nothing was written,
    and the same request may be sent again. Clients see UNAVAILABLE (the SDK retries a
    submission on it, under the same idempotency key); it is no `Unavailable`, which the
    services catch for a cluster that does not answer."""

    code = "UNAVAILABLE"
    http_status = 503


class SQLiteDialect(SQLiteDialect_aiosqlite):
    """aiosqlite, without a rollback where there is nothing to roll back.

    pysqlite begins a transaction only before a write, so a session that only read holds
    none; its close still rolled back, one more trip to aiosqlite's thread (about 100 µs of
    CPU, a quarter of such a session's cost, and most of the control plane's sessions only
    read)."""

    supports_statement_cache = True  # what it compiles is its parent's

    def do_rollback(self, dbapi_connection: Any) -> None:
        if dbapi_connection._connection.in_transaction:  # aiosqlite's, read in place
            super().do_rollback(dbapi_connection)


registry.register("sqlite.glia_aiosqlite", __name__, "SQLiteDialect")


def _sqlite_pragmas(busy_timeout_s: float) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Foreign keys off by default in SQLite would let it accept rows PostgreSQL rejects.
        # WAL lets the API read while the reconcile loop writes.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()

    return on_connect


def _busy_is_unavailable(busy_timeout_s: float) -> Callable[[ExceptionContext], None]:
    def on_error(context: ExceptionContext) -> None:
        """SQLite's "database is locked" (a write that waited out the busy timeout) as
        `DatabaseBusy`, rather than an internal error."""
        if isinstance(context.sqlalchemy_exception, OperationalError) and (
            "database is locked" in str(context.original_exception)
        ):
            logger.warning(
                "a write waited %.0f s for the SQLite database and gave up: the server is "
                "loaded past what one SQLite writer serves (PostgreSQL: GLIA_DATABASE_URL)",
                busy_timeout_s,
            )
            raise DatabaseBusy(
                "the server is too busy to write this now: try again in a moment"
            ) from context.original_exception

    return on_error


def _private_file(path: str | None) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask); its -wal and
    -shm files take the same mode."""
    if not path or path == ":memory:":
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    except FileNotFoundError:
        # No such directory: the first connection fails with SQLite's own error, which the
        # health check and the startup path already report.
        return
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Database:
    def __init__(
        self, url: str, *, echo: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_S
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        engine_url = make_url(url)
        if engine_url.drivername == "sqlite+aiosqlite":
            engine_url = engine_url.set(drivername="sqlite+glia_aiosqlite")
        self.engine: AsyncEngine = create_async_engine(engine_url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout_s))
            event.listen(
                self.engine.sync_engine, "handle_error", _busy_is_unavailable(busy_timeout_s)
            )
            _private_file(self.engine.url.database)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def migrate(self, revision: str = "heads") -> None:
        """Bring the schema to ``revision`` (applied at every start; a no-op when current).
        ``heads``: every branch of the history, where parallel work left more than one head
        before a merge revision joins them."""
        await self._migrating(_upgrade, revision)

    async def downgrade(self, revision: str) -> None:
        await self._migrating(_downgrade, revision)

    async def _migrating(self, step: Callable[[Connection, str], None], revision: str) -> None:
        async with self.engine.connect() as connection:
            if not self.is_sqlite:
                async with connection.begin():
                    await connection.run_sync(step, revision)
                return
            # Alembic alters a SQLite table by copying it and dropping the old one. With foreign
            # keys on, dropping a table that other rows point at fails (jobs -> users) or
            # cascades (it deleted every token and job history row): they are off for the
            # migration (SQLite ignores the switch inside a transaction), and checked after it.
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
            try:
                async with connection.begin():
                    await connection.run_sync(step, revision)
                    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"rows left pointing at nothing: {broken[:5]}")
            finally:
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)
