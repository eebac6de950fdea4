"""Generated operations against the real schema: none may end in INTERNAL_SERVER_ERROR.

hypothesis-graphql builds valid queries and mutations from graph/schema.graphql (arguments
of every shape, nulls, odd strings with NUL bytes, huge numbers); each is sent with a valid
user's token to the app with the in-memory runtime. A bounded number of examples keeps CI
fast; a failure prints the operation that broke the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from hypothesis_graphql import strategies as gql_st

from cluster_gateway.runtimes.fake import FakeRuntime
from tests.factories import Api, make_settings, running_api

SCHEMA = (Path(__file__).parents[2] / "graph" / "schema.graphql").read_text()
SCALARS = {
    # Times with and without a zone, in and out of range.
    "DateTime": st.one_of(
        st.datetimes(timezones=st.just(UTC)),
        st.datetimes(),
    ).map(lambda moment: nodes.String(moment.isoformat()))
    | st.text(max_size=30).map(nodes.String),
    "JSON": st.just(graphql.NullValueNode()),
}


class FuzzTarget:
    """The app, a user and the event loop it runs on, kept for all examples of a test."""

    def __init__(self, api: Api, token: str, loop: asyncio.AbstractEventLoop) -> None:
        self.api = api
        self.token = token
        self.loop = loop

    def send(self, document: str) -> tuple[int, list[dict[str, object]]]:
        async def post() -> tuple[int, list[dict[str, object]]]:
            response = await self.api.http.post(
                "/graphql",
                json={"query": document},
                headers={"Authorization": f"Bearer {self.token}"},
            )
            errors = response.json().get("errors") or [] if response.content else []
            return response.status_code, errors

        return self.loop.run_until_complete(post())


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    settings_ = make_settings(tmp_path_factory.mktemp("fuzz"))
    api = loop.run_until_complete(stack.enter_async_context(running_api(settings_, FakeRuntime())))
    token = loop.run_until_complete(api.user("fuzzer"))
    loop.run_until_complete(api.submit_job(token, name="known", tags=["t"]))
    try:
        yield FuzzTarget(api, token, loop)
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


def _check(target: FuzzTarget, document: str) -> None:
    status, errors = target.send(document)
    assert status < 500, document
    codes = [error.get("extensions", {}).get("code") for error in errors]  # type: ignore[union-attr]
    assert "INTERNAL_SERVER_ERROR" not in codes, (document, errors)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=gql_st.queries(SCHEMA, custom_scalars=SCALARS))
def test_generated_queries_never_break_the_server(target: FuzzTarget, document: str) -> None:
    _check(target, document)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    document=gql_st.mutations(
        SCHEMA, custom_scalars=SCALARS, fields=["submitJob", "killJob", "login", "createUser"]
    )
)
def test_generated_mutations_never_break_the_server(target: FuzzTarget, document: str) -> None:
    _check(target, document)
