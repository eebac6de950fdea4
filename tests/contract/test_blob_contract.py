"""The BlobStore protocol, held against every provider: the filesystem one, S3, and a remote
cluster's buckets (`RemoteBlobStore` through a real HTTP server serving a gateway's bucket
routes over a filesystem store).

S3 is moto's server over real HTTP (`ThreadedMotoServer`), never a patched client: aioboto3
sends what it would send to AWS or MinIO. The bucket routes' own rules (only the control
plane's claim gets in, malformed requests are BAD_USER_INPUT) are tested at the end.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cluster_gateway.blobs.base import BlobStore
from cluster_gateway.blobs.fs import FilesystemBlobStore
from cluster_gateway.blobs.s3 import S3BlobStore
from cluster_gateway.remote_blobs import RemoteBlobStore
from cluster_gateway.server.blobs import blob_routes
from cluster_gateway.storage_wire import BLOB_HEADER, OBJECT_PATH, blob_header
from glia.blobs import MIN_PART_BYTES
from glia.errors import BadInput, Conflict, NotFound, Unauthenticated, Unavailable
from tests.contract.remote_server import bearer, serving_routes, signed


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["filesystem", "s3", "remote"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    made: BlobStore
    if request.param == "remote":
        routes = blob_routes(FilesystemBlobStore(tmp_path / "blobs"), authorize=bearer)
        async with serving_routes(routes) as url:
            remote = RemoteBlobStore(url, headers=signed)
            try:
                yield remote
            finally:
                await remote.close()
        return
    if request.param == "filesystem":
        made = FilesystemBlobStore(tmp_path / "blobs")
    else:
        made = S3BlobStore(
            endpoint_url=request.getfixturevalue("moto_url"),
            access_key_id="testing",
            secret_access_key="testing",
            region="us-east-1",
        )
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def bucket(store: BlobStore) -> str:
    name = f"b{uuid.uuid4().hex[:16]}"
    await store.create_bucket(name)
    return name


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def read(
    store: BlobStore, bucket: str, key: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.get(bucket, key, start, end)])


async def test_buckets_are_made_found_and_deleted(store: BlobStore) -> None:
    name = f"b{uuid.uuid4().hex[:16]}"
    assert not await store.bucket_exists(name)
    await store.create_bucket(name)
    assert await store.bucket_exists(name)
    with pytest.raises(Conflict):
        await store.create_bucket(name)
    await store.put(name, "x", chunks(b"1"))
    with pytest.raises(Conflict):
        await store.delete_bucket(name)
    await store.delete_bucket(name, force=True)
    assert not await store.bucket_exists(name)
    with pytest.raises(NotFound):
        await store.delete_bucket(name)
    with pytest.raises(NotFound):
        await store.list(name)


async def test_put_stat_get_and_ranges(store: BlobStore, bucket: str) -> None:
    made = await store.put(bucket, "data/train.csv", chunks(b"hello ", b"", b"world"))
    assert made.key == "data/train.csv" and made.size == 11
    found = await store.stat(bucket, "data/train.csv")
    assert (found.size, found.etag) == (11, made.etag)
    assert await read(store, bucket, "data/train.csv") == b"hello world"
    assert await read(store, bucket, "data/train.csv", 6) == b"world"
    assert await read(store, bucket, "data/train.csv", 0, 5) == b"hello"
    assert await read(store, bucket, "data/train.csv", 4, 7) == b"o w"
    assert await read(store, bucket, "data/train.csv", 11) == b""
    again = await store.put(bucket, "data/train.csv", chunks(b"new"))
    assert again.etag != made.etag
    assert await read(store, bucket, "data/train.csv") == b"new"
    empty = await store.put(bucket, "empty", chunks())
    assert empty.size == 0 and await read(store, bucket, "empty") == b""


async def test_missing_objects_and_buckets(store: BlobStore, bucket: str) -> None:
    with pytest.raises(NotFound):
        await store.stat(bucket, "nope")
    with pytest.raises(NotFound):
        await read(store, bucket, "nope")
    assert await store.delete(bucket, "nope") is False
    with pytest.raises(NotFound):
        await store.put("missing-bucket-0", "x", chunks(b"1"))


async def test_a_key_and_keys_beneath_it_are_all_objects(store: BlobStore, bucket: str) -> None:
    await store.put(bucket, "a", chunks(b"file"))
    await store.put(bucket, "a/b", chunks(b"beneath"))
    assert await read(store, bucket, "a") == b"file"
    assert await read(store, bucket, "a/b") == b"beneath"
    assert await store.delete(bucket, "a/b") is True
    assert await read(store, bucket, "a") == b"file"
    assert await store.delete(bucket, "a") is True
    assert (await store.list(bucket)).objects == ()


async def test_hostile_keys_are_refused(store: BlobStore, bucket: str) -> None:
    for key in ("../escape", "a/../../b", "/abs", "a//b", "a/", ".", "nul\x00", "x" * 1100):
        with pytest.raises(BadInput):
            await store.put(bucket, key, chunks(b"no"))
        with pytest.raises(BadInput):
            await store.stat(bucket, key)


async def test_listing_in_key_order_with_prefix_delimiter_and_pages(
    store: BlobStore, bucket: str
) -> None:
    keys = ["a-c", "a/b", "a/c/d", "a/c/e", "a", "b", "logs/1", "logs/2", "lo", "z/é", "z/e"]
    for key in keys:
        await store.put(bucket, key, chunks(key.encode()))
    ordered = sorted(keys, key=lambda key: key.encode())
    listed = await store.list(bucket)
    assert [o.key for o in listed.objects] == ordered
    assert listed.prefixes == () and listed.next_cursor is None

    top = await store.list(bucket, delimiter="/")
    assert [o.key for o in top.objects] == ["a", "a-c", "b", "lo"]
    assert top.prefixes == ("a/", "logs/", "z/")

    beneath = await store.list(bucket, prefix="a/", delimiter="/")
    assert [o.key for o in beneath.objects] == ["a/b"]
    assert beneath.prefixes == ("a/c/",)
    partial = await store.list(bucket, prefix="lo")
    assert [o.key for o in partial.objects] == ["lo", "logs/1", "logs/2"]
    partial_grouped = await store.list(bucket, prefix="lo", delimiter="/")
    assert [o.key for o in partial_grouped.objects] == ["lo"]
    assert partial_grouped.prefixes == ("logs/",)

    # Pages, with and without the delimiter, cover the listing once.
    for delimiter in (None, "/"):
        whole = await store.list(bucket, delimiter=delimiter)
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.list(bucket, delimiter=delimiter, limit=2, after=cursor)
            assert len(page.objects) + len(page.prefixes) <= 2
            seen += [o.key for o in page.objects] + list(page.prefixes)
            cursor = page.next_cursor
            if cursor is None:
                break
        expected = [o.key for o in whole.objects] + list(whole.prefixes)
        assert sorted(seen) == sorted(expected)
        assert len(seen) == len(expected)


async def test_a_failed_put_leaves_the_old_object(store: BlobStore, bucket: str) -> None:
    await store.put(bucket, "kept", chunks(b"old"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionError("the client went away")

    with pytest.raises(ConnectionError):
        await store.put(bucket, "kept", broken())
    assert await read(store, bucket, "kept") == b"old"
    with pytest.raises(ConnectionError):
        await store.put(bucket, "new", broken())
    with pytest.raises(NotFound):
        await store.stat(bucket, "new")


async def test_multipart_upload(store: BlobStore, bucket: str) -> None:
    first = os.urandom(MIN_PART_BYTES)
    second = b"the tail"
    upload = await store.create_upload(bucket, "big/model.bin")
    assert upload.key == "big/model.bin"
    part2 = await store.put_part(bucket, "big/model.bin", upload.upload_id, 2, chunks(second))
    part1 = await store.put_part(
        bucket, "big/model.bin", upload.upload_id, 1, chunks(first[:1000], first[1000:])
    )
    with pytest.raises(BadInput):
        await store.complete_upload(bucket, "big/model.bin", upload.upload_id, [part2, part1])
    done = await store.complete_upload(bucket, "big/model.bin", upload.upload_id, [part1, part2])
    assert done.size == len(first) + len(second)
    assert await read(store, bucket, "big/model.bin", len(first) - 2) == first[-2:] + second
    with pytest.raises(NotFound):
        await store.put_part(bucket, "big/model.bin", upload.upload_id, 3, chunks(b"late"))


async def test_small_parts_but_the_last_are_refused_and_uploads_abort(
    store: BlobStore, bucket: str
) -> None:
    upload = await store.create_upload(bucket, "k")
    one = await store.put_part(bucket, "k", upload.upload_id, 1, chunks(b"small"))
    two = await store.put_part(bucket, "k", upload.upload_id, 2, chunks(b"small"))
    with pytest.raises(BadInput):
        await store.complete_upload(bucket, "k", upload.upload_id, [one, two])
    await store.abort_upload(bucket, "k", upload.upload_id)
    with pytest.raises(NotFound):
        await store.complete_upload(bucket, "k", upload.upload_id, [one, two])
    with pytest.raises(NotFound):
        await store.stat(bucket, "k")
    # A single small part is a whole object.
    single = await store.create_upload(bucket, "k")
    part = await store.put_part(bucket, "k", single.upload_id, 1, chunks(b"all"))
    await store.complete_upload(bucket, "k", single.upload_id, [part])
    assert await read(store, bucket, "k") == b"all"


async def test_a_large_stream_is_put_whole(store: BlobStore, bucket: str) -> None:
    data = os.urandom(9 * 1024 * 1024 + 17)
    pieces = [data[i : i + 1_000_003] for i in range(0, len(data), 1_000_003)]
    made = await store.put(bucket, "large", chunks(*pieces))
    assert made.size == len(data)
    assert await read(store, bucket, "large") == data


async def test_presigned_urls_where_the_provider_has_them(store: BlobStore, bucket: str) -> None:
    await store.put(bucket, "shared.txt", chunks(b"signed"))
    url = await store.presign(bucket, "shared.txt", method="GET", expires_s=60)
    if isinstance(store, FilesystemBlobStore | RemoteBlobStore):
        assert url is None  # the control plane signs its own
        return
    assert url is not None
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).content == b"signed"
        put_url = await store.presign(bucket, "up.txt", method="PUT", expires_s=60)
        assert put_url is not None
        assert (await http.put(put_url, content=b"uploaded")).status_code == 200
    assert await read(store, bucket, "up.txt") == b"uploaded"


# -- the bucket routes' own rules --


async def test_a_request_without_the_control_planes_claim_learns_nothing(
    tmp_path: Path,
) -> None:
    behind = FilesystemBlobStore(tmp_path / "blobs")
    await behind.create_bucket("kept")
    await behind.put("kept", "secret.txt", chunks(b"the bytes"))
    async with serving_routes(blob_routes(behind, authorize=bearer)) as url:
        forged = RemoteBlobStore(url, headers=lambda: {"authorization": "Bearer forged"})
        try:
            for attempt in (
                forged.bucket_exists("kept"),
                forged.stat("kept", "secret.txt"),
                read(forged, "kept", "secret.txt"),
                forged.put("kept", "secret.txt", chunks(b"overwritten")),
                forged.delete_bucket("kept", force=True),
            ):
                with pytest.raises(Unauthenticated):
                    await attempt
        finally:
            await forged.close()
    assert await read(behind, "kept", "secret.txt") == b"the bytes"


async def test_malformed_requests_are_bad_input(tmp_path: Path) -> None:
    behind = FilesystemBlobStore(tmp_path / "blobs")
    await behind.create_bucket("kept")
    async with serving_routes(blob_routes(behind, authorize=bearer)) as url:
        remote = RemoteBlobStore(url, headers=signed)
        try:
            # Names a store would turn into paths: refused at the door.
            for bucket in ("..", ".deleted-x", "a/b", ""):
                with pytest.raises(BadInput):
                    await remote.create_bucket(bucket)
            with pytest.raises(BadInput):
                await remote.stat("kept", "../outside")
            with pytest.raises(BadInput):
                await remote.abort_upload("kept", "k", "../../etc")
            with pytest.raises(BadInput):
                await remote.list("kept", limit=0)
        finally:
            await remote.close()
        async with httpx.AsyncClient(base_url=url, headers=signed()) as http:
            for answer in (
                await http.get(OBJECT_PATH),  # no object named
                await http.get(OBJECT_PATH, headers={BLOB_HEADER: "{not json"}),
                await http.get(
                    OBJECT_PATH,
                    headers={BLOB_HEADER: blob_header("kept", "k")},
                    params={"start": "-1"},
                ),
                await http.put(
                    "/blobs/part",
                    headers={BLOB_HEADER: blob_header("kept", "k")},
                    params={"number": "1", "uploadId": "../x"},
                    content=b"x",
                ),
                await http.post("/blobs/list", content=b"[1, 2]"),
                await http.post("/blobs/stat", json={"bucket": "kept", "key": 7}),
            ):
                assert answer.status_code == 400, answer.text
                assert answer.json()["code"] == "BAD_USER_INPUT"
            unknown = await http.post("/blobs/rename", json={})
            assert unknown.status_code == 404
    assert [p.name for p in (tmp_path / "blobs").iterdir()] == ["kept"]


async def test_an_unreachable_gateway_is_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = RemoteBlobStore(f"http://127.0.0.1:{port}", headers=signed, cluster="far")
    try:
        with pytest.raises(Unavailable, match="cluster far"):
            await remote.bucket_exists("kept")
        with pytest.raises(Unavailable):
            await read(remote, "kept", "k")
    finally:
        await remote.close()
