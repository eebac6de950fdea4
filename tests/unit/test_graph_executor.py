"""`SharingExecutor`: a `SharedEvent` is executed once for the subscribers that sent the same
document and variables; anything else, and a result with errors, once per subscriber."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Hashable
from typing import Any

import strawberry
from strawberry.extensions import ParserCache

from graph.executor import SharedEvent, SharingExecutor

CALLS: list[str] = []


@strawberry.type
class Shared(SharedEvent):
    key: strawberry.Private[str]

    @strawberry.field
    def value(self, suffix: str = "") -> str:
        CALLS.append(self.key)
        if self.key.startswith("fail"):
            raise ValueError("no value")
        return self.key + suffix

    def share_key(self) -> Hashable:
        return self.key


@strawberry.type
class Plain:
    key: strawberry.Private[str]

    @strawberry.field
    def value(self) -> str:
        CALLS.append(self.key)
        return self.key


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def shared(self, key: str) -> AsyncGenerator[Shared, None]:
        for i in range(3):
            yield Shared(key=f"{key}{i}")

    @strawberry.subscription
    async def plain(self, key: str) -> AsyncGenerator[Plain, None]:
        for i in range(3):
            yield Plain(key=f"{key}{i}")


# As the server's schema: the same text is parsed once, so subscribers share its document.
schema = strawberry.Schema(
    query=Query,
    subscription=Subscription,
    execution_context_class=SharingExecutor,
    extensions=[ParserCache],
)


async def _follow(document: str, **variables: Any) -> list[Any]:
    stream = await schema.subscribe(document, variable_values=variables)
    assert not isinstance(stream, strawberry.types.ExecutionResult), stream
    return [(result.data, bool(result.errors)) async for result in stream]


def _events(prefix: str = "") -> tuple[str, list[str]]:
    """A key no other test uses (the executor's results outlive a test), and its events'."""
    key = f"{prefix}{uuid.uuid4()}"
    return key, [f"{key}{i}" for i in range(3)]


async def test_subscribers_of_one_document_share_each_events_execution() -> None:
    key, events = _events()
    CALLS.clear()
    document = "subscription ($key: String!) { shared(key: $key) { value } }"
    first = await _follow(document, key=key)
    second = await _follow(document, key=key)
    assert first == second == [({"shared": {"value": event}}, False) for event in events]
    assert CALLS == events


async def test_another_selection_or_other_variables_are_executed_on_their_own() -> None:
    key, events = _events()
    CALLS.clear()
    await _follow("subscription ($key: String!) { shared(key: $key) { value } }", key=key)
    aliased = await _follow(
        "subscription ($key: String!) { shared(key: $key) { v: value } }", key=key
    )
    document = (
        "subscription ($key: String!, $s: String!) { shared(key: $key) { value(suffix: $s) } }"
    )
    bang = await _follow(document, key=key, s="!")
    query = await _follow(document, key=key, s="?")
    assert aliased == [({"shared": {"v": event}}, False) for event in events]
    assert bang == [({"shared": {"value": event + "!"}}, False) for event in events]
    assert query == [({"shared": {"value": event + "?"}}, False) for event in events]
    assert CALLS == events * 4


async def test_a_result_with_errors_and_events_not_shared_are_executed_per_subscriber() -> None:
    (failing, failures), (plain, events) = _events("fail"), _events()
    CALLS.clear()
    for _ in range(2):
        errors = await _follow(
            "subscription ($key: String!) { shared(key: $key) { value } }", key=failing
        )
        assert errors == [(None, True)] * 3
        await _follow("subscription ($key: String!) { plain(key: $key) { value } }", key=plain)
    assert CALLS == (failures + events) * 2
