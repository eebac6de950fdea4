"""AclService on both dialects: persistence, roles, concurrency and the change signal."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import select

from control_plane.events import EventBus, InProcessBus, RedisBus
from control_plane.services.acl import ACL_CHANNEL, AclService, visible_filter
from control_plane.store.database import Database
from control_plane.store.models import AclRuleRow
from glia.acl import Action
from glia.errors import BadInput, Forbidden
from tests.conftest import REDIS_URL


async def _service(database: Database, bus: EventBus | None = None) -> AclService:
    service = AclService(database, bus or InProcessBus())
    await service.load()
    return service


async def _rows(database: Database) -> list[tuple[str, str, str, str]]:
    async with database.session() as session:
        result = await session.execute(
            select(AclRuleRow.ptype, AclRuleRow.v0, AclRuleRow.v1, AclRuleRow.v2).order_by(
                AclRuleRow.ptype, AclRuleRow.v0, AclRuleRow.v1
            )
        )
        return [tuple(row) for row in result.all()]  # type: ignore[misc]


async def _eventually(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds, polling every 10 ms, for at most 5 seconds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 5 s")


@contextlib.asynccontextmanager
async def _watching(service: AclService) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(service.watch_changes())
    try:
        await asyncio.wait_for(service.watching.wait(), 5)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_grant_check_revoke_persist(database: Database) -> None:
    acl = await _service(database)
    assert await acl.grant("user:alice", "job://c/o/alice", "write")
    assert await acl.check("user:alice", "job://c/o/alice/1", Action.READ)
    assert not await acl.check("user:alice", "job://c/o/alice2", Action.READ)

    again = await _service(database)
    assert await again.check("user:alice", "job://c/o/alice/1", "write")
    assert await again.grants_of("user:alice") == [("job://c/o/alice", Action.WRITE)]

    assert await again.revoke("user:alice", "job://c/o/alice")
    assert not await again.revoke("user:alice", "job://c/o/alice")
    assert not await again.check("user:alice", "job://c/o/alice/1", "list")
    assert not await (await _service(database)).check("user:alice", "job://c/o/alice", "list")
    assert await _rows(database) == []


async def test_grant_is_idempotent_and_replaces_the_action(database: Database) -> None:
    acl = await _service(database)
    assert await acl.grant("user:bob", "storage://c/o/p", "read")
    assert not await acl.grant("user:bob", "storage://c/o/p", Action.READ)
    assert await acl.grant("user:bob", "storage://c/o/p", "manage")
    assert await _rows(database) == [("p", "user:bob", "storage://c/o/p", "manage")]
    assert await acl.grant("user:bob", "storage://c/o/p", "list")
    assert not await acl.check("user:bob", "storage://c/o/p", "read")

    reloaded = await _service(database)
    assert await reloaded.grants_of("user:bob") == [("storage://c/o/p", Action.LIST)]


async def test_grant_validates(database: Database) -> None:
    acl = await _service(database)
    with pytest.raises(BadInput):
        await acl.grant("user:bob", "storage://c//p", "read")
    with pytest.raises(BadInput):
        await acl.grant("user:bob", "storage://c/p", "own")
    with pytest.raises(BadInput):
        await acl.grant("bob", "storage://c/p", "read")
    with pytest.raises(BadInput):
        await acl.add_role("role:a", "role:a")
    assert await _rows(database) == []


async def test_roles(database: Database) -> None:
    acl = await _service(database)
    await acl.grant("role:admin", "*", "manage")
    await acl.grant("role:ml", "storage://c/o/datasets", "read")
    assert await acl.add_role("role:admin", "role:ml")
    assert not await acl.add_role("role:admin", "role:ml")
    assert await acl.add_role("user:carol", "role:admin")
    assert await acl.check("user:carol", "secret://c/o/p/k", "manage")
    assert acl.subjects_of("user:carol") == {"user:carol", "role:admin", "role:ml"}

    reloaded = await _service(database)
    assert await reloaded.check("user:carol", "disk://c/o/d1", "manage")
    assert await reloaded.roles_of("user:carol") == ["role:admin"]
    assert await reloaded.grants_of("user:carol", inherited=True) == [
        ("*", Action.MANAGE),
        ("storage://c/o/datasets", Action.READ),
    ]
    assert reloaded.visible_prefixes("user:carol", "job") is None

    assert await reloaded.remove_role("user:carol", "role:admin")
    assert not await reloaded.remove_role("user:carol", "role:admin")
    assert not await reloaded.check("user:carol", "disk://c/o/d1", "list")
    assert not await (await _service(database)).check("user:carol", "disk://c/o/d1", "list")


async def test_require_raises_forbidden(database: Database) -> None:
    acl = await _service(database)
    await acl.grant("user:dave", "job://c/o/dave", "read")
    await acl.require("user:dave", "job://c/o/dave/1", "read")
    with pytest.raises(Forbidden) as raised:
        await acl.require("user:dave", "job://c/o/dave/1", "write")
    assert "write" in raised.value.message
    assert "job://c/o/dave/1" in raised.value.message
    assert raised.value.code == "FORBIDDEN"
    assert raised.value.details["action"] == "write"


async def test_concurrent_grants_are_all_persisted(database: Database) -> None:
    acl = await _service(database)
    await asyncio.gather(
        *(acl.grant(f"user:u{i}", f"job://c/o/u{i}", "write") for i in range(20)),
        *(acl.add_role(f"user:u{i}", "role:team") for i in range(0, 20, 2)),
    )
    reloaded = await _service(database)
    for i in range(20):
        assert await reloaded.check(f"user:u{i}", f"job://c/o/u{i}/x", "write")
    assert len(await _rows(database)) == 30


async def test_concurrent_grants_on_one_uri_keep_one_action(database: Database) -> None:
    acl = await _service(database)
    await asyncio.gather(*(acl.grant("user:e", "job://c", a) for a in ["read", "write"] * 5))
    rows = await _rows(database)
    assert len(rows) == 1
    assert (await _service(database)).index.grants_of("user:e") == (acl.index.grants_of("user:e"))


async def test_visible_filter_in_sql(database: Database) -> None:
    acl = await _service(database)
    await acl.grant("user:f", "job://c/o/a_b", "read")
    await acl.grant("user:f", "job://c/o/x", "list")
    # Stand-in resources: the ACL table's own URIs (rows from another subject).
    for uri in [
        "job://c/o/a_b",
        "job://c/o/a_b/1",
        "job://c/o/axb/1",
        "job://c/o/x2",
        "job://c/o/x/9",
    ]:
        await acl.grant("user:resources", uri, "list")
    prefixes = acl.visible_prefixes("user:f", "job")
    assert prefixes == ["job://c/o/a_b", "job://c/o/x"]
    async with database.session() as session:
        uris = (
            await session.scalars(
                select(AclRuleRow.v1)
                .where(AclRuleRow.v0 == "user:resources", visible_filter(AclRuleRow.v1, prefixes))
                .order_by(AclRuleRow.v1)
            )
        ).all()
    assert uris == ["job://c/o/a_b", "job://c/o/a_b/1", "job://c/o/x/9"]


async def _change_becomes_visible(database: Database, bus_a: EventBus, bus_b: EventBus) -> None:
    writer = await _service(database, bus_a)
    reader = await _service(database, bus_b)
    async with _watching(reader):
        await writer.grant("user:gina", "job://c/o/gina", "read")
        await _eventually(lambda: reader.index.check("user:gina", "job://c/o/gina/1", "read"))
        await writer.add_role("user:gina", "role:ops")
        await writer.grant("role:ops", "storage://c", "write")
        await _eventually(lambda: reader.index.check("user:gina", "storage://c/x", "write"))
        await writer.revoke("user:gina", "job://c/o/gina")
        await _eventually(lambda: not reader.index.check("user:gina", "job://c/o/gina", "list"))


async def test_change_signal_in_process(database: Database) -> None:
    bus = InProcessBus()
    await _change_becomes_visible(database, bus, bus)


async def test_own_signals_are_ignored(database: Database) -> None:
    bus = InProcessBus()
    acl = await _service(database, bus)
    loads = 0
    real_load = acl.load

    async def counting_load() -> None:
        nonlocal loads
        loads += 1
        await real_load()

    acl.load = counting_load  # type: ignore[method-assign]
    async with _watching(acl):
        await _eventually(lambda: loads == 1)  # the reload on subscribing
        await acl.grant("user:h", "job://c/h", "read")
        await bus.publish(ACL_CHANNEL, {"event": "changed", "origin": acl.origin})
        # Nothing to wait for but the absence of a reload: give the watcher a few turns.
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert loads == 1
        await bus.publish(ACL_CHANNEL, {"event": "changed", "origin": "another-process"})
        await _eventually(lambda: loads == 2)


@pytest.mark.redis
async def test_change_signal_over_redis(database: Database) -> None:
    prefix = f"glia-test-{uuid.uuid4().hex[:8]}:"
    bus_a = RedisBus(REDIS_URL, prefix=prefix)
    bus_b = RedisBus(REDIS_URL, prefix=prefix)
    try:
        await _change_becomes_visible(database, bus_a, bus_b)
    finally:
        await bus_a.close()
        await bus_b.close()
