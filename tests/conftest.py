"""Shared fixtures: databases on both dialects, settings, and the event bus."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from control_plane.store.database import Database

# The real PostgreSQL of these machines (started by .ci/run when it is not running).
POSTGRES_ADMIN_DSN = os.environ.get(
    "GLIA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GLIA_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str] | str:
    """A fresh, empty database URL on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'glia.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    name = f"glia_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each dialect."""
    db = Database(database_url)
    await db.migrate()
    yield db
    await db.dispose()
