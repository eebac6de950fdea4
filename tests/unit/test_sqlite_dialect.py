"""`control_plane.store.database.SQLiteDialect`: a session that only read ends without a
rollback (nothing to undo: no trip to aiosqlite's thread), and one that wrote without
committing is still rolled back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text

from control_plane.store.database import Database


async def test_only_a_session_that_wrote_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollbacks = 0
    rollback = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> Any:
        nonlocal rollbacks
        rollbacks += 1
        return await rollback(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/glia.db")
    try:
        async with db.session() as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            await session.commit()
        async with db.session() as session:  # reads only
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 0
        assert rollbacks == 0
        async with db.session() as session:  # writes, never commits
            await session.execute(text("INSERT INTO t (id) VALUES (1)"))
        assert rollbacks == 1
        async with db.session() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    finally:
        await db.dispose()
