"""A SQLite write that waits out the busy timeout for another writer fails as DatabaseBusy
(UNAVAILABLE: nothing written, the request may be sent again), not as an internal error; one
whose writer frees in time waits for it and succeeds."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from control_plane.store.database import Database, DatabaseBusy


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/glia.db", busy_timeout_s=0.3)
    async with db.session() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        await session.commit()
    try:
        yield db
    finally:
        await db.dispose()


@contextmanager
def writer_held(path: str) -> Iterator[sqlite3.Connection]:
    """Another connection that holds the database's writer until the block ends."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t (id) VALUES (100)")
        yield other
        other.execute("COMMIT")
    finally:
        other.close()


async def count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(text("SELECT count(*) FROM t"))).scalar_one())


async def test_a_write_that_waits_out_the_timeout_is_busy_and_writes_nothing(
    db: Database, tmp_path: Path
) -> None:
    with writer_held(f"{tmp_path}/glia.db"):
        async with db.session() as session:
            with pytest.raises(DatabaseBusy) as raised:
                await session.execute(text("INSERT INTO t (id) VALUES (1)"))
                await session.commit()
    assert raised.value.code == "UNAVAILABLE"
    assert "try again" in raised.value.message
    assert await count(db) == 1  # the other writer's row alone
    async with db.session() as session:  # sent again, it is written
        await session.execute(text("INSERT INTO t (id) VALUES (1)"))
        await session.commit()
    assert await count(db) == 2


async def test_a_write_waits_for_a_writer_that_frees_in_time(db: Database, tmp_path: Path) -> None:
    with writer_held(f"{tmp_path}/glia.db") as other:

        async def release() -> None:
            await asyncio.sleep(0.1)
            other.execute("COMMIT")
            other.execute("BEGIN")  # for the block's own COMMIT

        releasing = asyncio.create_task(release())
        async with db.session() as session:
            await session.execute(text("INSERT INTO t (id) VALUES (1)"))
            await session.commit()
        await releasing
    assert await count(db) == 2
