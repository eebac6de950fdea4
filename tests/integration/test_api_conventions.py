"""The API's conventions, as GitHub's and Shopify's APIs and the GraphQL over HTTP spec set
them: global ids, Input/Payload mutations, connections both ways with an order, request errors
in JSON, and a job's env for its writers only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from cluster_gateway.runtimes.fake import FakeRuntime
from tests.factories import Api, GraphQLErrors, make_settings, running_api, serving_api

NODE = """query($id: ID!) { node(id: $id) { __typename id
    ... on Job { jobName: name } ... on User { name } ... on Cluster { name } } }"""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
PAGE = """query($first: Int, $after: String, $last: Int, $before: String, $orderBy: JobOrder) {
    jobs(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) {
        totalCount
        nodes { name }
        edges { cursor node { name } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
}"""


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(make_settings(tmp_path, database_url), FakeRuntime()) as api:
        yield api


async def test_any_object_is_found_by_its_global_id(api: Api) -> None:
    alice = await api.user("alice")
    bob = await api.user("bob")
    job = await api.submit_job(alice, name="train")
    me = (await api.gql("{ me { id } }", token=alice))["me"]
    cluster = (await api.gql("{ clusters { id } }", token=alice))["clusters"][0]

    found = (await api.gql(NODE, {"id": job["id"]}, token=alice))["node"]
    assert found == {"__typename": "Job", "id": job["id"], "jobName": "train"}
    found = (await api.gql(NODE, {"id": me["id"]}, token=alice))["node"]
    assert found == {"__typename": "User", "id": me["id"], "name": "alice"}
    found = (await api.gql(NODE, {"id": cluster["id"]}, token=alice))["node"]
    assert found["__typename"] == "Cluster" and found["name"] == "default"

    # Bob may not read alice's job: exactly what an id that names nothing gets.
    for unknown in (job["id"], "job-00000000-0000-0000-0000-000000000000", "nonsense"):
        with pytest.raises(GraphQLErrors) as denied:
            await api.gql(NODE, {"id": unknown}, token=bob)
        assert denied.value.code == "NOT_FOUND"
        assert "alice" not in str(denied.value.errors)
    many = (await api.gql(NODES, {"ids": [me["id"], job["id"], "x"]}, token=bob))["nodes"]
    assert many == [{"__typename": "User", "id": me["id"]}, None, None]
    body = await api.raw(NODES, {"ids": ["x"] * 101}, token=bob)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_connections_page_both_ways_in_either_order(api: Api) -> None:
    token = await api.user("alice")
    for name in ("delta", "alpha", "charlie", "bravo", "echo"):
        await api.submit_job(token, name=name)

    async def page(**variables: Any) -> dict[str, Any]:
        jobs: dict[str, Any] = (await api.gql(PAGE, variables, token=token))["jobs"]
        assert [e["node"]["name"] for e in jobs["edges"]] == [n["name"] for n in jobs["nodes"]]
        return jobs

    newest = await page(first=2)
    assert [n["name"] for n in newest["nodes"]] == ["echo", "bravo"]
    info = newest["pageInfo"]
    assert (info["hasNextPage"], info["hasPreviousPage"], newest["totalCount"]) == (True, False, 5)
    assert info["startCursor"] == newest["edges"][0]["cursor"]
    following = await page(first=2, after=info["endCursor"])
    assert [n["name"] for n in following["nodes"]] == ["charlie", "alpha"]
    assert following["pageInfo"]["hasPreviousPage"] is True
    back = await page(last=2, before=following["pageInfo"]["startCursor"])
    assert [n["name"] for n in back["nodes"]] == ["echo", "bravo"]
    assert (back["pageInfo"]["hasPreviousPage"], back["pageInfo"]["hasNextPage"]) == (False, True)
    oldest = await page(last=2)
    assert [n["name"] for n in oldest["nodes"]] == ["alpha", "delta"]
    assert oldest["pageInfo"]["hasPreviousPage"] is True

    by_name = {"field": "NAME", "direction": "ASC"}
    first = await page(first=3, orderBy=by_name)
    assert [n["name"] for n in first["nodes"]] == ["alpha", "bravo", "charlie"]
    rest = await page(first=3, after=first["pageInfo"]["endCursor"], orderBy=by_name)
    assert [n["name"] for n in rest["nodes"]] == ["delta", "echo"]
    assert rest["pageInfo"]["hasNextPage"] is False
    descending = await page(first=2, orderBy={"field": "NAME", "direction": "DESC"})
    assert [n["name"] for n in descending["nodes"]] == ["echo", "delta"]

    # A cursor of one order means nothing in another; contradicting arguments are refused.
    for variables, field in (
        ({"after": first["pageInfo"]["endCursor"]}, "after"),
        ({"first": 1, "last": 1}, "input"),
        ({"last": 1, "after": newest["pageInfo"]["endCursor"]}, "input"),
        ({"first": 501}, "first"),
    ):
        body = await api.raw(PAGE, variables, token=token)
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (variables, body)
        assert field in [f["field"] for f in error["extensions"]["fields"]], error


async def test_a_jobs_env_values_are_for_those_who_may_write_it(api: Api) -> None:
    alice = await api.user("alice")
    bob = await api.user("bob")
    admin = await api.user("root", role="admin")
    job = await api.submit_job(alice, env=[{"name": "WANDB_KEY", "value": "s3cret"}])
    query = "query($id: ID!) { job(id: $id) { env } }"
    assert (await api.gql(query, {"id": job["id"]}, token=alice))["job"]["env"] == {
        "WANDB_KEY": "s3cret"
    }
    assert (await api.gql(query, {"id": job["id"]}, token=admin))["job"]["env"] == {
        "WANDB_KEY": "s3cret"
    }
    await api.platform.acl.grant("user:bob", job["uri"], "read")
    shared = (await api.gql(query, {"id": job["id"]}, token=bob))["job"]["env"]
    assert shared == {"WANDB_KEY": None}


async def test_requests_that_cannot_run_are_answered_in_json(api: Api) -> None:
    token = await api.user("alice")
    auth = {"Authorization": f"Bearer {token}"}
    over_get = await api.http.get(
        "/graphql", params={"query": "mutation { logout { tokenId } }"}, headers=auth
    )
    assert over_get.status_code == 405 and over_get.headers["allow"] == "GET, POST"
    assert over_get.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    unknown = await api.http.post(
        "/graphql", json={"query": "query A { me { name } }", "operationName": "B"}, headers=auth
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"
    for body, content_type in (
        (b"{not json", "application/json"),
        (b'{"variables": {}}', "application/json"),
        (b"query", "text/plain"),
    ):
        refused = await api.http.post(
            "/graphql", content=body, headers={**auth, "Content-Type": content_type}
        )
        assert refused.status_code == 400, refused.text
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_REQUEST" and error["message"]
    query_over_get = await api.http.get(
        "/graphql", params={"query": "{ me { name } }"}, headers=auth
    )
    assert query_over_get.json() == {"data": {"me": {"name": "alice"}}}


@pytest.mark.parametrize(
    "payload",
    [
        lambda token: {"authToken": token},
        lambda token: {"authToken": f"Bearer {token}"},
        lambda token: {"Authorization": f"Bearer {token}"},
        lambda token: {"authorization": f"bearer {token}"},
        lambda token: {"headers": {"Authorization": f"Bearer {token}"}},
    ],
)
def test_websocket_clients_authenticate_as_apollo_graphiql_and_gql_do(
    tmp_path: Path, payload: Any
) -> None:
    with serving_api(make_settings(tmp_path), FakeRuntime()) as server:
        token = server.user("alice")

        async def subscribe() -> dict[str, Any]:
            url = server.url.replace("http://", "ws://") + "/graphql"
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
                init = {"type": "connection_init", "payload": payload(token)}
                await ws.send(json.dumps(init))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                # A query runs over the socket too: it answers as the token's user.
                query = "{ me { name } }"
                message = {"id": "1", "type": "subscribe", "payload": {"query": query}}
                await ws.send(json.dumps(message))
                async with asyncio.timeout(5):
                    answer: dict[str, Any] = json.loads(await ws.recv())
                return answer

        answer = asyncio.run(subscribe())
        assert answer["type"] == "next"
        assert answer["payload"] == {"data": {"me": {"name": "alice"}}}
