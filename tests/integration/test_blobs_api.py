"""Buckets through the API and the byte routes: who may do what, signed URLs, access keys,
public buckets, ranges and multipart uploads."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from cluster_gateway.runtimes.fake import FakeRuntime
from glia.blobs import MIN_PART_BYTES
from tests.factories import Api, GraphQLErrors, make_settings, running_api

CREATE = """mutation($input: CreateBucketInput!) {
  createBucket(input: $input) { bucket { name uri url public provider imported } } }"""
OBJECTS = """query($uri: String!, $prefix: String!, $delimiter: String, $first: Int!,
  $after: String) {
  blobObjects(uri: $uri, prefix: $prefix, delimiter: $delimiter, first: $first, after: $after) {
    objects { key size } prefixes nextCursor } }"""
SIGN = """mutation($input: SignBlobUrlInput!) {
  signBlobUrl(input: $input) { signedUrl { url expiresAt method } } }"""
CREDENTIALS = """mutation($input: CreateBlobCredentialsInput!) {
  createBlobCredentials(input: $input) {
    credential { id accessKeyId buckets readOnly } secret } }"""
SET_MEMBER = """mutation($user: String!, $role: ProjectRole) {
  setProjectMember(input: {org: "alice", project: "alice", user: $user, role: $role}) {
    member { user } } }"""
URI = "blob://default/alice/alice/data"
PUBLIC = f"""mutation {{ updateBucket(input: {{uri: "{URI}", public: true}}) {{
  bucket {{ public }} }} }}"""
DELETE_BUCKET = f"""mutation($force: Boolean!) {{
  deleteBucket(input: {{uri: "{URI}", force: $force}}) {{ bucket {{ name }} }} }}"""


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    # moto's S3 listens on 127.0.0.1: imports from it need private endpoints allowed.
    settings = make_settings(tmp_path, database_url, blob_import_private_endpoints=True)
    async with running_api(settings, FakeRuntime()) as api:
        yield api


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9", "http://10.1.2.3", "http://169.254.169.254", "http://[::1]"]
)
async def test_importing_from_this_host_or_a_private_network_is_refused_by_default(
    tmp_path: Path, database_url: str, endpoint: str
) -> None:
    async with running_api(make_settings(tmp_path, database_url), FakeRuntime()) as api:
        token = await api.user("alice")
        imported = """mutation($endpoint: String!) {
          importBucket(input: {name: "ext", remoteName: "remote", endpointUrl: $endpoint,
            accessKeyId: "id", secretAccessKey: "secret"}) { bucket { uri } } }"""
        with pytest.raises(GraphQLErrors) as caught:
            await api.gql(imported, {"endpoint": endpoint}, token=token)
        assert caught.value.code == "BAD_USER_INPUT"
        assert "private network" in str(caught.value)


@pytest.fixture
async def tokens(api: Api) -> dict[str, str]:
    made = {name: await api.user(name) for name in ("alice", "bob", "rita")}
    await api.gql(SET_MEMBER, {"user": "rita", "role": "READER"}, token=made["alice"])
    await api.gql(CREATE, {"input": {"name": "data"}}, token=made["alice"])
    return made


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


async def code_of(api: Api, query: str, variables: dict[str, Any], token: str) -> str | None:
    try:
        await api.gql(query, variables, token=token)
    except GraphQLErrors as errors:
        return errors.code
    return None


async def test_objects_round_trip_through_the_byte_routes(api: Api, tokens: dict[str, str]) -> None:
    alice = bearer(tokens["alice"])
    url = "/api/blob/default/alice/alice/data"
    for key in ("a.txt", "logs/1", "logs/2", "deep/x/y.csv"):
        answer = await api.http.put(f"{url}/{key}", content=key.encode() * 3, headers=alice)
        assert answer.status_code == 200, answer.text
        assert answer.json()["key"] == key
    got = await api.http.get(f"{url}/a.txt", headers=alice)
    assert got.content == b"a.txta.txta.txt"
    assert got.headers["content-length"] == "15"
    part = await api.http.get(f"{url}/a.txt", headers={**alice, "Range": "bytes=5-9"})
    assert (part.status_code, part.content) == (206, b"a.txt")
    assert part.headers["content-range"] == "bytes 5-9/15"
    assert (
        await api.http.get(f"{url}/a.txt", headers={**alice, "Range": "bytes=99-"})
    ).status_code == 416
    head = await api.http.head(f"{url}/a.txt", headers=alice)
    assert head.status_code == 200 and head.headers["content-length"] == "15"

    page = await api.gql(
        OBJECTS,
        {"uri": URI, "prefix": "", "delimiter": "/", "first": 2, "after": None},
        token=tokens["alice"],
    )
    listed = page["blobObjects"]
    assert [o["key"] for o in listed["objects"]] == ["a.txt"]
    assert listed["prefixes"] == ["deep/"]
    rest = await api.gql(
        OBJECTS,
        {"uri": URI, "prefix": "", "delimiter": "/", "first": 10, "after": listed["nextCursor"]},
        token=tokens["alice"],
    )
    assert rest["blobObjects"]["prefixes"] == ["logs/"]
    glob = await api.gql(
        'query { blobGlob(uri: "blob://default/alice/alice/data", pattern: "**/*.csv") { key } }',
        token=tokens["alice"],
    )
    assert glob["blobGlob"] == [{"key": "deep/x/y.csv"}]
    assert (await api.http.delete(f"{url}/a.txt", headers=alice)).status_code == 204
    assert (await api.http.get(f"{url}/a.txt", headers=alice)).status_code == 404


async def test_hostile_keys_are_refused(api: Api, tokens: dict[str, str]) -> None:
    alice = tokens["alice"]
    for key in ("../x", "a/../../b", "a//b", "x\x01y"):
        code = await code_of(
            api,
            "query($uri: String!) { blobObject(uri: $uri) { key } }",
            {"uri": f"{URI}/{key}"},
            alice,
        )
        assert code == "BAD_USER_INPUT", key
    answer = await api.http.put(
        "/api/blob/default/alice/alice/data/a/%2E%2E/%2E%2E/etc",
        content=b"x",
        headers=bearer(alice),
    )
    assert answer.status_code in (400, 404)


async def test_a_stranger_gets_not_found_and_a_reader_cannot_write(
    api: Api, tokens: dict[str, str]
) -> None:
    await api.http.put(
        "/api/blob/default/alice/alice/data/k", content=b"v", headers=bearer(tokens["alice"])
    )
    cases = [
        ("query($uri: String!) { bucket(uri: $uri) { name } }", {"uri": URI}, False),
        ("query($uri: String!) { blobObject(uri: $uri) { key } }", {"uri": f"{URI}/k"}, False),
        (OBJECTS, {"uri": URI, "prefix": "", "delimiter": None, "first": 5, "after": None}, False),
        (
            "mutation($uri: String!) { deleteBlobObject(input: {uri: $uri}) { existed } }",
            {"uri": f"{URI}/k"},
            True,
        ),
        (
            "mutation($uri: String!) { deleteBucket(input: {uri: $uri}) { bucket { name } } }",
            {"uri": URI},
            True,
        ),
        (SIGN, {"input": {"uri": f"{URI}/k", "method": "PUT"}}, True),
        (CREDENTIALS, {"input": {"name": "ci", "buckets": [URI]}}, True),
        (
            """mutation($uri: String!) {
              updateBucket(input: {uri: $uri, public: true}) { bucket { name } } }""",
            {"uri": URI},
            True,
        ),
    ]
    for query, variables, writes in cases:
        assert await code_of(api, query, variables, tokens["bob"]) == "NOT_FOUND", query
        assert await code_of(api, query, variables, tokens["rita"]) == (
            "FORBIDDEN" if writes else None
        ), query
    assert (
        await code_of(
            api,
            CREATE,
            {"input": {"name": "mine", "org": "alice", "project": "alice"}},
            tokens["bob"],
        )
        == "NOT_FOUND"
    )
    assert (
        await code_of(
            api,
            CREATE,
            {"input": {"name": "mine", "org": "alice", "project": "alice"}},
            tokens["rita"],
        )
        == "FORBIDDEN"
    )
    listed = await api.gql("{ buckets { uri } }", token=tokens["bob"])
    assert listed["buckets"] == []
    url = "/api/blob/default/alice/alice/data/k"
    assert (await api.http.get(url, headers=bearer(tokens["bob"]))).status_code == 404
    assert (await api.http.put(url, content=b"x", headers=bearer(tokens["bob"]))).status_code == 404
    assert (await api.http.get(url, headers=bearer(tokens["rita"]))).status_code == 200
    assert (
        await api.http.put(url, content=b"x", headers=bearer(tokens["rita"]))
    ).status_code == 403
    assert (await api.http.delete(url, headers=bearer(tokens["rita"]))).status_code == 403
    assert (await api.http.get(url)).status_code == 401


async def test_a_signed_url_works_until_it_expires(api: Api, tokens: dict[str, str]) -> None:
    await api.http.put(
        "/api/blob/default/alice/alice/data/s.txt",
        content=b"signed",
        headers=bearer(tokens["alice"]),
    )
    made = await api.gql(
        SIGN, {"input": {"uri": f"{URI}/s.txt", "expiresInSeconds": 2}}, token=tokens["alice"]
    )
    url = made["signBlobUrl"]["signedUrl"]["url"].removeprefix(
        api.platform.settings.effective_public_url
    )
    assert (await api.http.get(url)).content == b"signed"
    # Not for another method, another object or a changed expiry.
    assert (await api.http.put(url, content=b"x")).status_code == 401
    assert (await api.http.get(url.replace("s.txt", "t.txt"))).status_code == 401
    assert (
        await api.http.get(url.replace("X-Glia-Expires=", "X-Glia-Expires=9"))
    ).status_code == 401
    put = await api.gql(
        SIGN,
        {"input": {"uri": f"{URI}/up.txt", "method": "PUT", "expiresInSeconds": 60}},
        token=tokens["alice"],
    )
    put_url = put["signBlobUrl"]["signedUrl"]["url"].removeprefix(
        api.platform.settings.effective_public_url
    )
    assert (await api.http.put(put_url, content=b"via url")).status_code == 200
    assert (
        await api.http.get(
            "/api/blob/default/alice/alice/data/up.txt", headers=bearer(tokens["alice"])
        )
    ).content == b"via url"
    deadline = time.time() + 10
    while (await api.http.get(url)).status_code == 200:
        assert time.time() < deadline
        await asyncio.sleep(0.5)
    assert (await api.http.get(url)).status_code == 401
    # A reader may not sign a URL that writes.
    code = await code_of(api, SIGN, {"input": {"uri": f"{URI}/x", "method": "PUT"}}, tokens["rita"])
    assert code == "FORBIDDEN"


async def test_access_keys_and_read_only_ones(api: Api, tokens: dict[str, str]) -> None:
    alice = tokens["alice"]
    await api.gql(CREATE, {"input": {"name": "other"}}, token=alice)
    made = await api.gql(CREDENTIALS, {"input": {"name": "ci", "buckets": [URI]}}, token=alice)
    key = made["createBlobCredentials"]["credential"]["accessKeyId"]
    secret = made["createBlobCredentials"]["secret"]
    url = "/api/blob/default/alice/alice/data/by-key"
    assert (await api.http.put(url, content=b"k", headers=basic(key, secret))).status_code == 200
    assert (await api.http.get(url, headers=basic(key, secret))).content == b"k"
    assert (await api.http.get(url, headers=basic(key, "wrong"))).status_code == 401
    # Only the buckets it covers.
    other = "/api/blob/default/alice/alice/other/x"
    assert (await api.http.put(other, content=b"k", headers=basic(key, secret))).status_code == 404

    read_only = await api.gql(
        CREDENTIALS, {"input": {"name": "ro", "buckets": [URI], "readOnly": True}}, token=alice
    )
    ro_key = read_only["createBlobCredentials"]["credential"]["accessKeyId"]
    ro_secret = read_only["createBlobCredentials"]["secret"]
    assert (await api.http.get(url, headers=basic(ro_key, ro_secret))).content == b"k"
    assert (
        await api.http.put(url, content=b"no", headers=basic(ro_key, ro_secret))
    ).status_code == 403
    assert (await api.http.delete(url, headers=basic(ro_key, ro_secret))).status_code == 403

    listed = await api.gql("{ blobCredentials { id accessKeyId readOnly buckets } }", token=alice)
    assert {c["accessKeyId"] for c in listed["blobCredentials"]} == {key, ro_key}
    assert "secret" not in str(listed)
    # A reader can make a read-only key, not a writing one.
    assert (
        await code_of(api, CREDENTIALS, {"input": {"name": "r", "buckets": [URI]}}, tokens["rita"])
        == "FORBIDDEN"
    )
    await api.gql(
        "mutation($id: ID!) { deleteBlobCredentials(input: {id: $id}) { credential { id } } }",
        {"id": made["createBlobCredentials"]["credential"]["id"]},
        token=alice,
    )
    assert (await api.http.get(url, headers=basic(key, secret))).status_code == 401


async def test_public_buckets_are_read_by_anyone_and_written_by_writers(
    api: Api, tokens: dict[str, str]
) -> None:
    alice = tokens["alice"]
    await api.http.put(
        "/api/blob/default/alice/alice/data/open", content=b"o", headers=bearer(alice)
    )
    assert (await api.http.get("/api/blob/default/alice/alice/data/open")).status_code == 401
    await api.gql(
        PUBLIC,
        token=alice,
    )
    assert (await api.http.get("/api/blob/default/alice/alice/data/open")).content == b"o"
    assert (
        await api.http.put("/api/blob/default/alice/alice/data/open", content=b"x")
    ).status_code == 401
    bob = bearer(tokens["bob"])
    assert (
        await api.http.get("/api/blob/default/alice/alice/data/open", headers=bob)
    ).content == b"o"
    assert (
        await api.http.put("/api/blob/default/alice/alice/data/open", content=b"x", headers=bob)
    ).status_code == 403


async def test_multipart_upload_over_the_byte_route(api: Api, tokens: dict[str, str]) -> None:
    alice = bearer(tokens["alice"])
    url = "/api/blob/default/alice/alice/data/big.bin"
    started = (await api.http.post(f"{url}?uploads", headers=alice)).json()
    upload = started["uploadId"]
    first, second = os.urandom(MIN_PART_BYTES), b"end"
    parts = []
    for number, data in ((1, first), (2, second)):
        answer = await api.http.put(
            f"{url}?uploadId={upload}&partNumber={number}", content=data, headers=alice
        )
        assert answer.status_code == 200, answer.text
        parts.append(answer.json())
    done = await api.http.post(f"{url}?uploadId={upload}", json={"parts": parts}, headers=alice)
    assert done.status_code == 200, done.text
    assert done.json()["size"] == len(first) + 3
    tail = await api.http.get(url, headers={**alice, "Range": "bytes=-5"})
    assert tail.content == first[-2:] + b"end"


async def test_deleting_buckets(api: Api, tokens: dict[str, str]) -> None:
    alice = tokens["alice"]
    await api.http.put("/api/blob/default/alice/alice/data/x", content=b"1", headers=bearer(alice))
    delete = DELETE_BUCKET
    assert await code_of(api, delete, {"force": False}, alice) == "CONFLICT"
    await api.gql(delete, {"force": True}, token=alice)
    assert (await api.gql("{ buckets { name } }", token=alice))["buckets"] == []
    assert await code_of(api, CREATE, {"input": {"name": "data"}}, alice) is None


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_imported_s3_bucket(
    api: Api, tokens: dict[str, str], tmp_path: Path, moto_endpoint: str
) -> None:
    endpoint = moto_endpoint
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="hush-hush",
        region_name="us-east-1",
    ).create_bucket(Bucket="existing")
    imported = """mutation($input: ImportBucketInput!) {
      importBucket(input: $input) { bucket { uri provider imported } } }"""
    variables = {
        "input": {
            "name": "ext",
            "remoteName": "existing",
            "endpointUrl": endpoint,
            "accessKeyId": "AKIDEXAMPLE",
            "secretAccessKey": "hush-hush",
        }
    }
    made = await api.gql(imported, variables, token=tokens["alice"])
    assert made["importBucket"]["bucket"] == {
        "uri": "blob://default/alice/alice/ext",
        "provider": "S3",
        "imported": True,
    }
    url = "/api/blob/default/alice/alice/ext/x.txt"
    alice = bearer(tokens["alice"])
    assert (await api.http.put(url, content=b"in s3", headers=alice)).status_code == 200
    assert (await api.http.get(url, headers=alice)).content == b"in s3"
    signed = await api.gql(
        SIGN, {"input": {"uri": "blob://default/alice/alice/ext/x.txt"}}, token=tokens["alice"]
    )
    assert signed["signBlobUrl"]["signedUrl"]["url"].startswith(endpoint)
    # The secret is stored encrypted: nowhere in the database as given.
    db_file = tmp_path / "glia.db"
    if db_file.exists():
        assert b"hush-hush" not in db_file.read_bytes()
    missing = {"input": {**variables["input"], "name": "nope", "remoteName": "absent"}}
    assert await code_of(api, imported, missing, tokens["alice"]) == "NOT_FOUND"
    # Forgotten, not emptied: the objects stay at the provider.
    await api.gql(
        'mutation { deleteBucket(input: {uri: "blob://default/alice/alice/ext"}) '
        "{ bucket { name } } }",
        token=tokens["alice"],
    )
    await api.gql(imported, variables, token=tokens["alice"])
    assert (await api.http.get(url, headers=alice)).content == b"in s3"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_cluster_whose_buckets_are_on_s3(
    tmp_path: Path, database_url: str, moto_endpoint: str
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        blob_provider="s3",
        blob_s3_endpoint_url=moto_endpoint,
        blob_s3_access_key_id="cluster-key",
        blob_s3_secret_access_key="cluster-secret",
        blob_s3_bucket_prefix="glia-test-",
    )
    async with running_api(settings, FakeRuntime()) as api:
        token = await api.user("carol")
        made = await api.gql(CREATE, {"input": {"name": "data"}}, token=token)
        assert made["createBucket"]["bucket"]["provider"] == "S3"
        assert made["createBucket"]["bucket"]["imported"] is False
        s3 = boto3.client(
            "s3",
            endpoint_url=moto_endpoint,
            aws_access_key_id="cluster-key",
            aws_secret_access_key="cluster-secret",
            region_name="us-east-1",
        )
        names = [
            b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("glia-test-")
        ]
        assert len(names) == 1
        url = "/api/blob/default/carol/carol/data/obj"
        assert (await api.http.put(url, content=b"x", headers=bearer(token))).status_code == 200
        assert s3.get_object(Bucket=names[0], Key="obj")["Body"].read() == b"x"
        await api.gql(
            'mutation { deleteBucket(input: {uri: "blob://default/carol/carol/data", force: true}) '
            "{ bucket { name } } }",
            token=token,
        )
        assert names[0] not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
