"""A cluster gateway takes calls only from its control plane: a claim signed with the
cluster's secret, for this cluster, short-lived. Forged, expired, misdirected and bare calls
are refused with 401 and nothing else, on every route: GraphQL over HTTP and WebSocket
(upgrade and connection_init), and the byte routes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
import websockets
from websockets.typing import Subprotocol

from cluster_gateway.embedded import EmbeddedGateway
from cluster_gateway.gateway import WorkloadSpec
from cluster_gateway.remote import RemoteGateway
from cluster_gateway.runtimes.fake import FakeRuntime
from cluster_gateway.trust import acting_as, sign_claim, verify_claim
from glia.clusters import Resources
from glia.errors import Unauthenticated
from tests.contract.remote_server import SECRET, serving

CLUSTER = "trusted-cluster"
GRAPHQL_WS = Subprotocol("graphql-transport-ws")
OTHER_SECRET = "another-secret-that-is-long-enough-32b"


def forged(**overrides: object) -> str:
    now = int(time.time())
    payload: dict[str, object] = {"aud": CLUSTER, "iat": now, "exp": now + 30}
    secret = str(overrides.pop("secret", SECRET))
    payload.update(overrides)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm="HS256")


BAD_CLAIMS = {
    "wrong secret": forged(secret=OTHER_SECRET),
    "expired": forged(iat=int(time.time()) - 120, exp=int(time.time()) - 60),
    "wrong audience": forged(aud="another-cluster"),
    "no audience": forged(aud=None),
    "no expiry": forged(exp=None),
    "too long a life": forged(exp=int(time.time()) + 3600),
    "not a JWT": "not-a-jwt",
    "unsigned": jwt.encode(
        {"aud": CLUSTER, "exp": int(time.time()) + 30},
        None,  # type: ignore[arg-type]  # an unsigned token, as a forger would send it
        algorithm="none",
    ),
}


@pytest.mark.parametrize("claim", BAD_CLAIMS.values(), ids=BAD_CLAIMS.keys())
def test_verify_refuses_forged_claims(claim: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        verify_claim(claim, SECRET, CLUSTER)
    assert refused.value.message == "no valid claim of this cluster's control plane"


def test_a_claim_names_the_user_acted_for() -> None:
    assert verify_claim(sign_claim(SECRET, CLUSTER), SECRET, CLUSTER).subject is None
    with acting_as("alice"):
        claim = sign_claim(SECRET, CLUSTER)
    assert verify_claim(claim, SECRET, CLUSTER).subject == "alice"
    payload = jwt.decode(claim, SECRET, algorithms=["HS256"], audience=CLUSTER)
    assert payload["exp"] - payload["iat"] <= 60


@pytest.fixture
async def url() -> AsyncIterator[str]:
    gateway = EmbeddedGateway(CLUSTER, FakeRuntime())
    await gateway.open()
    try:
        async with serving(gateway) as url:
            yield url
    finally:
        await gateway.close()


def _headers(claim: str | None) -> dict[str, str]:
    return {} if claim is None else {"Authorization": f"Bearer {claim}"}


REFUSED = {**BAD_CLAIMS, "bare": None, "a user's token shape": "Bearer-less"}


@pytest.mark.parametrize("claim", REFUSED.values(), ids=REFUSED.keys())
async def test_http_routes_refuse_without_a_valid_claim(url: str, claim: str | None) -> None:
    async with httpx.AsyncClient(base_url=url, headers=_headers(claim)) as http:
        answers = [
            await http.post("/graphql", json={"query": "{ activeWorkloads }"}),
            await http.get("/jobs/job-1/log"),
            await http.post("/jobs/job-1/stdin", content=b"rm -rf /\n"),
            await http.get("/no-such-route"),
        ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json() == {
            "message": "no valid claim of this cluster's control plane",
            "code": "UNAUTHENTICATED",
            "extensions": {"code": "UNAUTHENTICATED"},
        }


@pytest.mark.parametrize("claim", REFUSED.values(), ids=REFUSED.keys())
async def test_websockets_refuse_without_a_valid_claim(
    url: str, claim: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    ws = "ws" + url.removeprefix("http")
    for path in ("/graphql", "/jobs/job-1/exec?command=sh", "/jobs/job-1/connect?port=22"):
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(
                ws + path, additional_headers=_headers(claim), subprotocols=[GRAPHQL_WS]
            ):
                pass
        assert refused.value.response.status_code == 401
    # A refusal is an answer, not an error of the gateway's (uvicorn would log one).
    assert "without completing handshake" not in caplog.text


async def test_graphql_websocket_wants_a_claim_in_connection_init_too(url: str) -> None:
    """A valid claim on the upgrade is not enough: the handshake carries one as well."""
    ws = "ws" + url.removeprefix("http") + "/graphql"
    headers = _headers(sign_claim(SECRET, CLUSTER))
    for payload in ({}, {"claim": BAD_CLAIMS["wrong secret"]}, {"claim": BAD_CLAIMS["expired"]}):
        async with websockets.connect(
            ws, additional_headers=headers, subprotocols=[GRAPHQL_WS]
        ) as connection:
            await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    message = json.loads(await connection.recv())
                    assert message["type"] != "connection_ack"
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    async with websockets.connect(
        ws, additional_headers=headers, subprotocols=[GRAPHQL_WS]
    ) as connection:
        init = {"type": "connection_init", "payload": {"claim": sign_claim(SECRET, CLUSTER)}}
        await connection.send(json.dumps(init))
        assert json.loads(await connection.recv())["type"] == "connection_ack"


async def test_a_remote_gateway_with_the_wrong_secret_is_refused(url: str) -> None:
    gateway = RemoteGateway(CLUSTER, url, secret=OTHER_SECRET)
    try:
        with pytest.raises(Unauthenticated, match="refused the control plane's claim"):
            await gateway.active_workloads()
        with pytest.raises(Unauthenticated):
            async with gateway.watch():
                pass
        with pytest.raises(Unauthenticated):
            async for _ in gateway.read_log("job-1"):
                pass
        with pytest.raises(Unauthenticated):
            await gateway.exec("job-1", ["sh"])
    finally:
        await gateway.close()
    # The same gateway under another cluster's name: the audience is wrong.
    misdirected = RemoteGateway("another-cluster", url, secret=SECRET)
    try:
        with pytest.raises(Unauthenticated):
            await misdirected.capacity()
    finally:
        await misdirected.close()


async def test_the_gateway_sees_whom_an_exec_is_for(caplog: pytest.LogCaptureFixture) -> None:
    runtime = FakeRuntime()
    gateway = EmbeddedGateway(CLUSTER, runtime)
    await gateway.open()
    resources = Resources(cpu=1, memory_mb=1)
    await gateway.start(WorkloadSpec(job_id="job-1", command=("x",), resources=resources))
    runtime.run("job-1")
    caplog.set_level(logging.INFO, logger="cluster_gateway.server.routes")
    try:
        async with serving(gateway) as url:
            remote = RemoteGateway(CLUSTER, url, secret=SECRET)
            try:
                with acting_as("alice"):
                    session = await remote.exec("job-1", ["cat"])
                await session.close()
            finally:
                await remote.close()
    finally:
        await gateway.close()
    assert "exec in job job-1 for alice" in caplog.text
