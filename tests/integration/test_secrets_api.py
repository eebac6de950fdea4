"""Secrets through the API and the byte route: who may do what, bad keys and values, values
that never come back out (answers, errors, logs, metrics, the database file), the keyring's
rotation, and `SecretsService.reveal_for_job`."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from cluster_gateway.runtimes.fake import FakeRuntime
from control_plane.keyring import Keyring
from control_plane.services.auth import user_from_row
from control_plane.settings import Settings
from control_plane.store.blobs import BlobSecretRow
from control_plane.store.secrets import SecretRow
from glia.errors import Conflict, Forbidden, NotFound
from glia.secrets import MAX_VALUE_BYTES
from tests.factories import Api, GraphQLErrors, make_settings, running_api

LIST = """query($org: String, $project: String, $first: Int, $after: String) {
  secrets(org: $org, project: $project, first: $first, after: $after) {
    edges { cursor node { key uri cluster org project createdAt updatedAt updatedBy url } }
    pageInfo { hasNextPage endCursor } totalCount } }"""
DELETE = """mutation($uri: String!) { deleteSecret(input: {uri: $uri}) {
  secret { key uri updatedBy } } }"""
ROTATE = "mutation { rotateSecretsKey { rotation { secrets bucketCredentials unreadable } } }"
SET_MEMBER = """mutation($user: String!, $role: ProjectRole) {
  setProjectMember(input: {org: "alice", project: "alice", user: $user, role: $role}) {
    member { user } } }"""
ROUTE = "/api/secrets/default/alice/alice"
URI = "secret://default/alice/alice"
# What the tests look for everywhere a value must not be.
VALUE = b"glia-test-value-" + uuid.uuid4().hex.encode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    async with running_api(make_settings(tmp_path, database_url), FakeRuntime()) as api:
        yield api


@pytest.fixture
async def tokens(api: Api) -> dict[str, str]:
    """alice (her personal project), rita (a reader there), walt (a writer), bob (nobody)."""
    made = {name: await api.user(name) for name in ("alice", "bob", "rita", "walt")}
    await api.gql(SET_MEMBER, {"user": "rita", "role": "READER"}, token=made["alice"])
    await api.gql(SET_MEMBER, {"user": "walt", "role": "WRITER"}, token=made["alice"])
    return made


async def code_of(api: Api, query: str, variables: dict[str, Any], token: str) -> str | None:
    try:
        await api.gql(query, variables, token=token)
    except GraphQLErrors as errors:
        return errors.code
    return None


async def reveal(api: Api, user: str, uri: str) -> bytes:
    platform = api.platform
    async with platform.db.session() as session:
        owner = user_from_row(await platform.auth.user_row(session, user))
        found = await platform.secrets.reveal_for_job(session, owner=owner, uri=uri)
    return found.get_secret_value()


async def test_secrets_are_set_listed_and_deleted_and_never_read_back(
    api: Api, tokens: dict[str, str]
) -> None:
    alice = bearer(tokens["alice"])
    made = await api.http.put(f"{ROUTE}/API_TOKEN", content=VALUE, headers=alice)
    assert made.status_code == 201, made.text
    secret = made.json()
    assert secret["uri"] == f"{URI}/API_TOKEN"
    assert secret["updatedBy"] == "alice"
    assert secret["url"].endswith(f"{ROUTE}/API_TOKEN")
    again = await api.http.put(f"{ROUTE}/API_TOKEN", content=b"second", headers=alice)
    assert again.status_code == 200
    assert again.json()["createdAt"] == secret["createdAt"]
    for key in ("b.key", "a-key", "c_key"):
        answer = await api.http.put(f"{ROUTE}/{key}", content=b"x", headers=alice)
        assert answer.status_code == 201

    listed = (await api.gql(LIST, {"first": 2}, token=tokens["alice"]))["secrets"]
    assert [edge["node"]["key"] for edge in listed["edges"]] == ["API_TOKEN", "a-key"]
    assert listed["totalCount"] == 4
    after = listed["pageInfo"]["endCursor"]
    rest = (await api.gql(LIST, {"after": after}, token=tokens["alice"]))["secrets"]
    assert [edge["node"]["key"] for edge in rest["edges"]] == ["b.key", "c_key"]
    # Readers list; nothing reads a value back: no GET on the route.
    by_reader = await api.gql(LIST, {"org": "alice", "project": "alice"}, token=tokens["rita"])
    assert by_reader["secrets"]["totalCount"] == 4
    assert (await api.http.get(f"{ROUTE}/API_TOKEN", headers=alice)).status_code == 405
    assert await reveal(api, "alice", f"{URI}/API_TOKEN") == b"second"

    deleted = await api.gql(DELETE, {"uri": f"{URI}/API_TOKEN"}, token=tokens["walt"])
    assert deleted["deleteSecret"]["secret"]["updatedBy"] == "alice"
    assert await code_of(api, DELETE, {"uri": f"{URI}/API_TOKEN"}, tokens["alice"]) == "NOT_FOUND"
    with pytest.raises(NotFound):
        await reveal(api, "alice", f"{URI}/API_TOKEN")


async def test_a_value_is_any_bytes_up_to_a_mebibyte(api: Api, tokens: dict[str, str]) -> None:
    alice = bearer(tokens["alice"])
    binary = bytes(range(256)) * (MAX_VALUE_BYTES // 256)
    assert len(binary) == MAX_VALUE_BYTES
    assert (await api.http.put(f"{ROUTE}/blob", content=binary, headers=alice)).status_code == 201
    assert await reveal(api, "alice", f"{URI}/blob") == binary
    empty = await api.http.put(f"{ROUTE}/empty", content=b"", headers=alice)
    assert empty.status_code == 201
    assert await reveal(api, "alice", f"{URI}/empty") == b""

    too_big = await api.http.put(f"{ROUTE}/big", content=binary + b"!", headers=alice)
    assert too_big.status_code == 413
    assert too_big.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    # Without a declared length (chunked), the body is counted as it comes.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * (MAX_VALUE_BYTES // 4)

    streamed = await api.http.put(f"{ROUTE}/big", content=chunks(), headers=alice)
    assert streamed.status_code == 413
    listed = await api.gql(LIST, {}, token=tokens["alice"])
    assert [e["node"]["key"] for e in listed["secrets"]["edges"]] == ["blob", "empty"]


@pytest.mark.parametrize(
    ("key", "why"),
    [("bad key", "space"), ("a" * 254, "too long"), ("naïve", "not ASCII"), ("x:y", "colon")],
)
async def test_bad_keys_are_refused_naming_the_field(
    api: Api, tokens: dict[str, str], key: str, why: str
) -> None:
    answer = await api.http.put(f"{ROUTE}/{key}", content=VALUE, headers=bearer(tokens["alice"]))
    assert answer.status_code == 400, why
    error = answer.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"][0]["field"] == "uri"
    assert VALUE.decode() not in answer.text
    for uri in (f"{URI}/.", f"{URI}/..", f"{URI}/a/b", "blob://default/alice/alice/x"):
        assert await code_of(api, DELETE, {"uri": uri}, tokens["alice"]) == "BAD_USER_INPUT"


async def test_the_longest_key_fits(api: Api, tokens: dict[str, str]) -> None:
    key = "k" * 253
    answer = await api.http.put(f"{ROUTE}/{key}", content=b"v", headers=bearer(tokens["alice"]))
    assert answer.status_code == 201, answer.text
    deleted = await api.gql(DELETE, {"uri": f"{URI}/{key}"}, token=tokens["alice"])
    assert deleted["deleteSecret"]["secret"]["key"] == key


async def test_readers_list_writers_write_strangers_see_nothing(
    api: Api, tokens: dict[str, str]
) -> None:
    alice, rita, walt, bob = (bearer(tokens[n]) for n in ("alice", "rita", "walt", "bob"))
    assert (await api.http.put(f"{ROUTE}/K", content=VALUE, headers=alice)).status_code == 201

    refused = await api.http.put(f"{ROUTE}/K", content=b"reader's", headers=rita)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await code_of(api, DELETE, {"uri": f"{URI}/K"}, tokens["rita"]) == "FORBIDDEN"
    assert (await api.http.put(f"{ROUTE}/W", content=b"w", headers=walt)).status_code == 201

    # A stranger gets for alice's project what a project that does not exist gets.
    answers = []
    for place in ("alice/alice", "nobody/nothing"):
        put = await api.http.put(f"/api/secrets/default/{place}/K", content=b"x", headers=bob)
        answers.append((put.status_code, put.json()["errors"][0]["extensions"]["code"]))
        org, project = place.split("/")
        variables = {"org": org, "project": project}
        answers.append((0, await code_of(api, LIST, variables, tokens["bob"])))
        uri = f"secret://default/{place}/K"
        answers.append((0, await code_of(api, DELETE, {"uri": uri}, tokens["bob"])))
    assert answers[:3] == answers[3:] == [(404, "NOT_FOUND"), (0, "NOT_FOUND"), (0, "NOT_FOUND")]
    # A cluster nobody uses is not there either.
    on_gpu = await api.http.put("/api/secrets/gpu/alice/alice/K", content=b"x", headers=alice)
    assert on_gpu.status_code == 404
    # Anonymous callers are asked to sign in.
    anonymous = await api.http.put(f"{ROUTE}/K", content=b"x")
    assert anonymous.status_code == 401
    assert await code_of(api, LIST, {}, "") == "UNAUTHENTICATED"

    # Using a secret in a job is for those who may write it.
    assert await reveal(api, "walt", f"{URI}/K") == VALUE
    with pytest.raises(Forbidden):
        await reveal(api, "rita", f"{URI}/K")
    with pytest.raises(NotFound):
        await reveal(api, "bob", f"{URI}/K")
    # Only platform admins rotate.
    assert await code_of(api, ROTATE, {}, tokens["alice"]) == "FORBIDDEN"


async def test_a_value_appears_in_no_answer_log_metric_or_database_file(
    api: Api, tokens: dict[str, str], caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, rita = bearer(tokens["alice"]), bearer(tokens["rita"])
    answers: list[str] = []
    for key, headers in (("K", alice), ("K", alice), ("K", rita), ("bad key", alice)):
        answer = await api.http.put(f"{ROUTE}/{key}", content=VALUE, headers=headers)
        answers.append(answer.text)
    too_big = VALUE * (MAX_VALUE_BYTES // len(VALUE) + 1)
    answers.append((await api.http.put(f"{ROUTE}/K2", content=too_big, headers=alice)).text)
    answers.append(
        (await api.http.put("/api/secrets/default/nobody/x/K", content=VALUE, headers=alice)).text
    )
    for token in (tokens["alice"], tokens["rita"], tokens["bob"]):
        answers.append(str(await api.raw(LIST, {}, token=token)))
        answers.append(str(await api.raw(LIST, {"org": "alice", "project": "alice"}, token=token)))
    answers.append(str(await api.raw(ROTATE, {}, token=tokens["alice"])))
    answers.append((await api.http.get("/metrics")).text)
    assert await reveal(api, "alice", f"{URI}/K") == VALUE

    needle = VALUE.decode()
    for answer in answers:
        assert needle not in answer
    logged = caplog.text + "".join(
        f"{record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records
    )
    assert needle not in logged
    assert caplog.records, "the test should have captured the server's log"
    # At rest: sealed in the database, and not in the database file as plain text.
    async with api.platform.db.session() as session:
        stored = (await session.scalars(select(SecretRow.ciphertext))).all()
        assert stored and all(needle not in cipher for cipher in stored)
        dumped = "".join(str(row) for row in (await session.execute(text("SELECT * FROM secrets"))))
        assert needle not in dumped
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        for file in path.parent.glob(path.name + "*"):
            assert VALUE not in file.read_bytes()


async def test_service_accounts_name_the_project_of_their_secrets(
    api: Api, tokens: dict[str, str]
) -> None:
    made = await api.gql(
        """mutation { createServiceAccount(input: {name: "ci", org: "alice",
          project: "alice"}) { token } }""",
        token=tokens["alice"],
    )
    token = made["createServiceAccount"]["token"]
    assert await code_of(api, LIST, {}, token) == "BAD_USER_INPUT"
    listed = await api.gql(LIST, {"org": "alice", "project": "alice"}, token=token)
    assert listed["secrets"]["totalCount"] == 0


async def test_a_deleted_projects_secrets_go_with_it(api: Api, tokens: dict[str, str]) -> None:
    admin = await api.user("root", role="admin")
    await api.gql('mutation { createOrg(input: {name: "acme"}) { org { name } } }', token=admin)
    await api.gql(
        'mutation { createProject(input: {org: "acme", name: "vision"}) { project { name } } }',
        token=admin,
    )
    put = await api.http.put(
        "/api/secrets/default/acme/vision/K", content=VALUE, headers=bearer(admin)
    )
    assert put.status_code == 201
    await api.gql(
        'mutation { deleteProject(input: {org: "acme", name: "vision"}) { project { name } } }',
        token=admin,
    )
    async with api.platform.db.session() as session:
        assert (await session.scalars(select(SecretRow.key))).all() == []


# -- the keyring and its rotation --------------------------------------------------------------


def keyed_settings(tmp_path: Path, database_url: str, secret_key: str, *keys: bytes) -> Settings:
    listed = ",".join(key.decode() for key in keys) or None
    return make_settings(tmp_path, database_url, secret_key=secret_key, secrets_keys=listed)


async def test_rotation_moves_every_value_to_the_current_key(
    tmp_path: Path, database_url: str
) -> None:
    server_key = secrets.token_urlsafe(40)
    first, second = Fernet.generate_key(), Fernet.generate_key()
    # The embedded default: a key derived from the server's secret key.
    async with running_api(
        keyed_settings(tmp_path, database_url, server_key), FakeRuntime()
    ) as api:
        alice = await api.user("alice")
        admin = await api.user("root", role="admin")
        for key in ("OLD_ONE", "OLD_TWO"):
            put = await api.http.put(
                f"{ROUTE}/{key}", content=VALUE + key.encode(), headers=bearer(alice)
            )
            assert put.status_code == 201
        # An imported bucket's credentials, sealed as before the keyring: the legacy key.
        legacy = Keyring.from_config(secret_key=server_key, secrets_keys=None)
        async with api.platform.db.session() as session:
            session.add(BlobSecretRow(id=str(uuid.uuid4()), ciphertext=legacy.seal(b"{}")))
            await session.commit()

    # Keys of one's own: the first seals, the derived ones still open what they sealed.
    async with running_api(
        keyed_settings(tmp_path, database_url, server_key, first), FakeRuntime()
    ) as api:
        assert await reveal(api, "alice", f"{URI}/OLD_ONE") == VALUE + b"OLD_ONE"
        put = await api.http.put(f"{ROUTE}/NEW", content=VALUE + b"NEW", headers=bearer(alice))
        assert put.status_code == 201
        rotated = await api.gql(ROTATE, token=admin)
        assert rotated["rotateSecretsKey"]["rotation"] == {
            "secrets": 2,
            "bucketCredentials": 1,
            "unreadable": [],
        }
        again = await api.gql(ROTATE, token=admin)
        assert again["rotateSecretsKey"]["rotation"]["secrets"] == 0

    # A new key in front, then a rotation: the old key may go.
    settings = keyed_settings(tmp_path, database_url, server_key, second, first)
    async with running_api(settings, FakeRuntime()) as api:
        rotated = await api.gql(ROTATE, token=admin)
        assert rotated["rotateSecretsKey"]["rotation"]["secrets"] == 3
        assert rotated["rotateSecretsKey"]["rotation"]["bucketCredentials"] == 1
        async with api.platform.db.session() as session:
            stored = (await session.scalars(select(SecretRow.ciphertext))).all()
            sealed_blobs = (await session.scalars(select(BlobSecretRow.ciphertext))).all()
    only_second = Fernet(second)
    assert sorted(only_second.decrypt(c.encode()) for c in stored) == sorted(
        VALUE + k for k in (b"OLD_ONE", b"OLD_TWO", b"NEW")
    )
    assert [only_second.decrypt(c.encode()) for c in sealed_blobs] == [b"{}"]

    # A value sealed with a key nobody configured any more is reported, never lost.
    async with running_api(
        keyed_settings(tmp_path, database_url, server_key, second), FakeRuntime()
    ) as api:
        stray = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
        async with api.platform.db.session() as session:
            row = await session.scalar(select(SecretRow).where(SecretRow.key == "NEW"))
            assert row is not None
            row.ciphertext = stray
            await session.commit()
        rotated = await api.gql(ROTATE, token=admin)
        assert rotated["rotateSecretsKey"]["rotation"]["unreadable"] == [f"{URI}/NEW"]
        assert await reveal(api, "alice", f"{URI}/OLD_TWO") == VALUE + b"OLD_TWO"
        with pytest.raises(Conflict) as caught:
            await reveal(api, "alice", f"{URI}/NEW")
        assert "lost" not in str(caught.value)
