"""Tokens: a revocation holds at once in the process that made it and within a second in the
others, whatever they had cached."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy import update

from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.platform import Platform
from control_plane.store.models import TokenRow
from glia.auth import NewUser
from glia.clock import utcnow
from glia.errors import Unauthenticated
from tests.conftest import REDIS_URL
from tests.factories import make_settings
from tests.polling import eventually


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_token_revoked_in_one_process_is_refused_by_the_others(
    postgres_url: str, tmp_path: Path
) -> None:
    shared = {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    settings = make_settings(tmp_path / "a", postgres_url, **shared)
    first = await Platform.create(settings, runtime=FakeRuntime())
    second = await Platform.create(
        settings.model_copy(update={"data_dir": tmp_path / "b"}), runtime=FakeRuntime()
    )
    watcher = asyncio.create_task(second.auth.watch_revocations())
    try:
        async with first.db.session() as session:
            user, _ = await first.auth.create_user(session, NewUser(name="alice"))
            token = await first.auth.issue_token(session, user.id, description="test")
        identity = await second.auth.identify(token)  # now in the second one's cache
        assert identity.user.name == "alice"
        await asyncio.sleep(0.1)  # the watcher has subscribed
        async with first.db.session() as session:
            await first.auth.revoke_token(session, identity.token_id)
        with pytest.raises(Unauthenticated):
            await first.auth.identify(token)

        async def refused() -> bool:
            try:
                await second.auth.identify(token)
            except Unauthenticated:
                return True
            return False

        await eventually(refused, within=1.0)
    finally:
        watcher.cancel()
        await first.close()
        await second.close()


async def test_tokens_without_an_expiry_or_past_it_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    platform = await Platform.create(make_settings(tmp_path, database_url), runtime=FakeRuntime())
    try:
        key = platform.settings.secret_key
        assert key is not None
        async with platform.db.session() as session:
            user, _ = await platform.auth.create_user(session, NewUser(name="bob"))
            token = await platform.auth.issue_token(session, user.id, description="test")
        claims = jwt.decode(token, options={"verify_signature": False})

        no_expiry = jwt.encode(
            {"sub": claims["sub"], "jti": claims["jti"]}, key.get_secret_value(), algorithm="HS256"
        )
        with pytest.raises(Unauthenticated, match="invalid token"):
            await platform.auth.identify(no_expiry)
        past = jwt.encode(
            {**claims, "exp": int(time.time()) - 10}, key.get_secret_value(), algorithm="HS256"
        )
        with pytest.raises(Unauthenticated, match="expired"):
            await platform.auth.identify(past)

        # The signed expiry is in the future, the stored one has passed: the stored one holds.
        async with platform.db.session() as session:
            await session.execute(
                update(TokenRow)
                .where(TokenRow.id == claims["jti"])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        with pytest.raises(Unauthenticated, match="expired"):
            await platform.auth.identify(token)
    finally:
        await platform.close()
