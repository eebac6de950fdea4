"""One suite for every `Storage`: `LocalStorage`, and `RemoteStorage` through a real HTTP
server (uvicorn, a free port) serving a gateway's storage routes over a `LocalStorage`.

What a remote cluster's files must do is what the embedded ones do: the same answers, the
same errors by class (and their fields and details), resumes and checksums, ranges and
archives. The routes' own rule (a request that is not the control plane's is refused before
anything is read) is tested at the end, with `RemoteDisks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import socket
import stat
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cluster_gateway.disks import LocalDisks
from cluster_gateway.remote_storage import RemoteDisks, RemoteStorage
from cluster_gateway.server import storage as gateway_storage
from cluster_gateway.server.storage import storage_routes
from cluster_gateway.storage import WRITE_BUFFER_BYTES, LocalStorage, Storage
from cluster_gateway.storage_wire import FILE_PATH, LOCATION_HEADER, location_header
from glia.disks import new_disk_id
from glia.errors import (
    BadInput,
    Conflict,
    GliaError,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    Unavailable,
)
from glia.storage import (
    ARCHIVE_END,
    PIECE_BYTES,
    ArchiveFiles,
    ArchivePiece,
    Checksum,
    ChecksumTrailer,
    FileStatus,
    FileType,
    StorageLocation,
    SyncFile,
    new_hash,
    partial_name,
)
from tests.contract.remote_server import bearer, serving_routes, signed

HOME = StorageLocation("default", "acme", "vision")


async def chunks(
    data: bytes, size: int = 64 * 1024, fail_after: int | None = None
) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        if fail_after is not None and start >= fail_after:
            raise ConnectionResetError("cut")
        yield data[start : start + size]


async def read_all(
    storage: Storage, location: StorageLocation, *, offset: int = 0, length: int | None = None
) -> bytes:
    reading = storage.read(location, offset=offset, length=length)
    return b"".join([chunk async for chunk in reading])


@dataclass
class Subject:
    storage: Storage
    tree: Path
    """The project's tree on disk (behind the gateway, for a remote one)."""


@pytest.fixture(params=["local", "remote"])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Subject]:
    local = LocalStorage(tmp_path / "storage")
    await local.open()
    tree = local.root / HOME.org / HOME.project
    if request.param == "local":
        yield Subject(local, tree)
        return
    async with serving_routes(storage_routes(local, None, authorize=bearer)) as url:
        remote = RemoteStorage(url, headers=signed)
        try:
            yield Subject(remote, tree)
        finally:
            await remote.aclose()


# -- writes --


@pytest.mark.parametrize("size", [0, 1000, WRITE_BUFFER_BYTES - 1, 3 * WRITE_BUFFER_BYTES + 5])
async def test_a_write_lands_whole_and_checked(subject: Subject, size: int) -> None:
    storage = subject.storage
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    entry = await storage.write(HOME.child("f"), chunks(data), checksum=Checksum("sha256", digest))
    assert (entry.size, entry.type, entry.path, entry.uri) == (
        size,
        FileType.FILE,
        "/f",
        "storage://default/acme/vision/f",
    )
    assert (subject.tree / "f").read_bytes() == data
    assert await read_all(storage, HOME.child("f")) == data
    with pytest.raises(BadInput) as refused:
        await storage.write(HOME.child("g"), chunks(data), checksum=Checksum("sha256", "0" * 64))
    assert refused.value.fields == {"checksum": "checksum mismatch"}
    assert not (subject.tree / "g").exists()
    assert await storage.partial_size(HOME.child("g")) == 0


@pytest.mark.parametrize("size", [0, 1000, 3 * WRITE_BUFFER_BYTES + 5])
async def test_a_checksum_may_follow_the_bytes_it_covers(subject: Subject, size: int) -> None:
    """As the public upload route passes a body that ends with its digest (`ALGORITHM=trailer`):
    split by the file's length, the digest compared once every byte has come."""
    storage = subject.storage
    data = os.urandom(size)

    async def write(name: str, trailer: bytes, *, piece: int = 1000) -> FileStatus:
        checksum = ChecksumTrailer("xxh3-128")
        # Pieces that cut the digest in two, as a network may.
        body = checksum.split(chunks(data + trailer, piece), len(data))
        return await storage.write(HOME.child(name), body, checksum=checksum, length=len(data))

    entry = await write("f", _xxh3(data).encode())
    assert entry.size == size
    assert (subject.tree / "f").read_bytes() == data
    for name, trailer, why in (
        ("wrong", b"0" * 32, "checksum mismatch"),
        ("short", _xxh3(data).encode()[:-1], "malformed trailer"),
        ("none", b"", "malformed trailer"),
        ("long", _xxh3(data).encode() + b"0", "malformed trailer"),
    ):
        with pytest.raises(BadInput) as refused:
            await write(name, trailer)
        assert refused.value.fields == {"checksum": why}, name
        assert not (subject.tree / name).exists(), name
        assert await storage.partial_size(HOME.child(name)) == 0, name


@pytest.mark.parametrize("cut", [128 * 1024, 2 * WRITE_BUFFER_BYTES + 64 * 1024])
async def test_a_cut_write_keeps_what_came_and_resumes(subject: Subject, cut: int) -> None:
    storage = subject.storage
    data = os.urandom(3 * WRITE_BUFFER_BYTES)
    target = HOME.child("big")
    with pytest.raises(ConnectionResetError):
        # The whole length declared (set aside on disk), the transfer cut short.
        await storage.write(target, chunks(data, fail_after=cut), length=len(data))
    kept = await storage.partial_size(target)
    assert kept == cut
    # What was set aside past the kept bytes was given back.
    assert (subject.tree / partial_name("big")).stat().st_blocks * 512 < kept + 1024 * 1024
    with pytest.raises(Conflict) as refused:
        await storage.write(target, chunks(b"x"), offset=kept + 1)
    assert refused.value.details == {"partialSize": kept}
    entry = await storage.write(
        target,
        chunks(data[kept:]),
        offset=kept,
        checksum=Checksum("xxh3-128", _xxh3(data)),
        length=len(data) - kept,
    )
    assert entry.size == len(data)
    assert (subject.tree / "big").read_bytes() == data
    assert not (subject.tree / partial_name("big")).exists()


async def test_a_cancelled_write_keeps_what_came(subject: Subject) -> None:
    """The control plane's request for an upload ends (its user went away): the write is
    cancelled, and the bytes that reached the cluster wait there for a resume."""
    arrived = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        arrived.set()
        await asyncio.Event().wait()
        yield b""

    writing = asyncio.create_task(subject.storage.write(HOME.child("c"), stalls()))
    # Asked for the next chunk: the first is in the write's hands (sent to the gateway's
    # socket, for a remote one, which reads it before it sees the connection close).
    await arrived.wait()
    writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writing
    assert await subject.storage.partial_size(HOME.child("c")) == 100_000
    entry = await subject.storage.write(HOME.child("c"), chunks(b"y"), offset=100_000)
    assert entry.size == 100_001


async def test_a_write_over_its_limit_is_refused_and_kept_nowhere(subject: Subject) -> None:
    data = os.urandom(WRITE_BUFFER_BYTES + 1024)
    for size in (1000, len(data)):
        with pytest.raises(PayloadTooLarge):
            await subject.storage.write(HOME.child("f"), chunks(data[:size]), max_bytes=size - 1)
    assert not (subject.tree / "f").exists()
    assert await subject.storage.partial_size(HOME.child("f")) == 0


async def test_a_write_keeps_its_time_and_mode_and_a_sync_compares_them(subject: Subject) -> None:
    storage = subject.storage
    mtime = 1_700_000_000.123456
    await storage.write(
        HOME.child("w", "run.sh"), chunks(b"#!/bin/sh\n"), mtime=mtime, executable=True
    )
    await storage.write(HOME.child("w", "old.txt"), chunks(b"old"))
    info = (subject.tree / "w" / "run.sh").stat()
    assert abs(info.st_mtime - mtime) < 1e-6 and info.st_mode & stat.S_IXUSR
    plan = await storage.sync_plan(
        HOME.child("w"),
        [
            SyncFile(path="run.sh", size=10, mtime=mtime, executable=True),
            SyncFile(path="src/new.py", size=3, mtime=mtime),
        ],
    )
    assert (plan.upload, plan.removed) == (("src/new.py",), 1)
    assert not (subject.tree / "w" / "old.txt").exists()
    with pytest.raises(BadInput):
        await storage.sync_plan(HOME.child("w"), [SyncFile(path="../x", size=1, mtime=mtime)])


# -- reads --


async def test_reads_take_ranges(subject: Subject) -> None:
    storage = subject.storage
    data = os.urandom(WRITE_BUFFER_BYTES + 5000)
    await storage.write(HOME.child("x"), chunks(data))
    assert await read_all(storage, HOME.child("x"), offset=10, length=10) == data[10:20]
    assert await read_all(storage, HOME.child("x"), offset=len(data) - 7) == data[-7:]
    assert await read_all(storage, HOME.child("x"), offset=100, length=10**9) == data[100:]
    assert await read_all(storage, HOME.child("x"), offset=len(data) + 1) == b""
    assert await read_all(storage, HOME.child("x"), offset=5, length=0) == b""
    assert await read_all(storage, HOME.child("x")) == data
    await storage.write(HOME.child("empty"), chunks(b""))
    assert await read_all(storage, HOME.child("empty"), offset=0, length=0) == b""
    with pytest.raises(NotFound):
        await read_all(storage, HOME.child("missing"))
    with pytest.raises(NotFound):
        await read_all(storage, HOME.child("missing"), offset=0, length=0)
    await storage.mkdir(HOME.child("dir"))
    with pytest.raises(BadInput):
        await read_all(storage, HOME.child("dir"))


async def test_a_reader_that_stops_early_lets_go(subject: Subject) -> None:
    data = os.urandom(3 * WRITE_BUFFER_BYTES)
    await subject.storage.write(HOME.child("x"), chunks(data))
    for _ in range(20):  # a leak would hold a connection or an fd each time
        reader = aiter(subject.storage.read(HOME.child("x")))
        assert data.startswith(await anext(reader))
        await reader.aclose()  # type: ignore[attr-defined]
    assert await read_all(subject.storage, HOME.child("x"), offset=1, length=3) == data[1:4]


# -- metadata --


async def test_files_and_directories(subject: Subject) -> None:
    storage = subject.storage
    made = await storage.mkdir(HOME.child("data", "raw"))
    assert (made.path, made.type, made.size) == ("/data/raw", FileType.DIRECTORY, 0)
    again = await storage.mkdir(HOME.child("data", "raw"))
    assert again == await storage.stat(HOME.child("data", "raw"))
    with pytest.raises(Conflict):
        await storage.mkdir(HOME.child("data", "raw"), parents=False)
    await storage.write(HOME.child("data", "raw", "a b#?%.txt"), chunks(b"hello"))
    with pytest.raises(Conflict):
        await storage.mkdir(HOME.child("data", "raw", "a b#?%.txt"))
    entry = await storage.stat(HOME.child("data", "raw", "a b#?%.txt"))
    assert (entry.name, entry.size, entry.uri) == (
        "a b#?%.txt",
        5,
        "storage://default/acme/vision/data/raw/a b#?%.txt",
    )
    assert entry.modified_at.tzinfo is not None
    with pytest.raises(NotFound):
        await storage.stat(HOME.child("nothing", "here"))
    with pytest.raises(NotFound):
        await storage.list(HOME.child("nothing"), after=None, limit=10)

    copied = await storage.copy(HOME.child("data", "raw"), HOME.child("copy"))
    assert copied.path == "/copy"
    moved = await storage.move(HOME.child("copy", "a b#?%.txt"), HOME.child("copy", "b.txt"))
    assert moved.path == "/copy/b.txt"
    with pytest.raises(BadInput):
        await storage.move(HOME.child("data"), HOME.child("data", "raw", "inside"))
    with pytest.raises(NotFound):
        await storage.move(HOME.child("gone"), HOME.child("there"))
    with pytest.raises(Conflict):
        await storage.remove(HOME.child("copy"))
    assert await storage.remove(HOME.child("copy"), recursive=True) == 2
    with pytest.raises(BadInput):
        await storage.remove(HOME)

    usage = await storage.usage(HOME, time_limit_s=5)
    assert (usage.files, usage.directories, usage.size, usage.complete) == (1, 2, 5, True)
    disk = await storage.disk("default")
    assert disk.cluster == "default" and disk.total > 0 and disk.free <= disk.total


async def test_listings_page_by_name_and_hide_partials(subject: Subject) -> None:
    storage = subject.storage
    for index in range(5):
        await storage.mkdir(HOME.child("many", str(index)))
    with pytest.raises(ConnectionResetError):
        await storage.write(HOME.child("many", "cut"), chunks(b"x" * 10, size=1, fail_after=3))
    assert await storage.partial_size(HOME.child("many", "cut")) == 3
    names: list[str] = []
    after = None
    while True:
        entries, more, total = await storage.list(HOME.child("many"), after=after, limit=2)
        assert total == 5
        names += [entry.name for entry in entries]
        if not more:
            break
        after = entries[-1].name
    assert names == ["0", "1", "2", "3", "4"]


async def test_glob_is_bounded_and_sorted(subject: Subject) -> None:
    storage = subject.storage
    for name in ("e", "d", "c", "b", "a"):
        await storage.write(HOME.child("dir", f"{name}.txt"), chunks(b"x"))
    await storage.write(HOME.child("dir", "other.csv"), chunks(b"x"))
    every = await storage.glob(HOME, "**/*.txt", limit=10)
    assert [m.name for m in every.matches] == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]
    assert not every.truncated
    some = await storage.glob(HOME, "dir/*.txt", limit=3)
    assert len(some.matches) == 3 and some.truncated
    with pytest.raises(BadInput):
        await storage.glob(HOME, "", limit=3)


# -- hostile paths --


def _operations(storage: Storage) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every operation, each on a path through the directory ``d``."""
    return {
        "stat": lambda: storage.stat(HOME.child("d", "f")),
        "list": lambda: storage.list(HOME.child("d"), after=None, limit=10),
        "mkdir": lambda: storage.mkdir(HOME.child("d", "new")),
        "mv from": lambda: storage.move(HOME.child("d", "f"), HOME.child("moved")),
        "mv into": lambda: storage.move(HOME.child("g"), HOME.child("d", "g")),
        "cp from": lambda: storage.copy(HOME.child("d", "f"), HOME.child("copied")),
        "cp into": lambda: storage.copy(HOME.child("g"), HOME.child("d", "g")),
        "rm -r": lambda: storage.remove(HOME.child("d", "sub"), recursive=True),
        "glob": lambda: storage.glob(HOME.child("d"), "*", limit=10),
        "du": lambda: storage.usage(HOME.child("d"), time_limit_s=5),
        "upload": lambda: storage.write(HOME.child("d", "planted"), chunks(b"x")),
        "download": lambda: read_all(storage, HOME.child("d", "f")),
        "sync": lambda: storage.sync_plan(HOME.child("d"), []),
        "archive up": lambda: storage.write_archive(
            HOME.child("d"), chunks(_archive({"planted": b"x"})), max_bytes=None
        ),
        "archive down": lambda: storage.read_archive(HOME.child("d"), [("f",)]),
    }


async def test_a_link_out_of_the_tree_is_never_followed(subject: Subject, tmp_path: Path) -> None:
    storage = subject.storage
    await storage.write(HOME.child("g"), chunks(b"g"))
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "f").write_text("secret")
    # The relative link climbs out with '..': tmp_path/storage/acme/vision -> tmp_path.
    for target in (str(outside), "../../../outside"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(subject.tree / "d")
        os.symlink(target, subject.tree / "d")
        for name, operation in _operations(storage).items():
            with pytest.raises(BadInput):
                await operation()
                pytest.fail(name)
    assert sorted(p.name for p in outside.rglob("*")) == ["f", "sub"]
    assert (outside / "f").read_text() == "secret"


async def test_names_that_leave_the_tree_are_refused(subject: Subject) -> None:
    storage = subject.storage
    for hostile in (
        StorageLocation("default", "..", "vision"),
        StorageLocation("default", "acme", ".."),
        HOME.child(".."),
        HOME.child("..", "..", "etc"),
    ):
        with pytest.raises(BadInput):
            await storage.stat(hostile)
        with pytest.raises(BadInput):
            await storage.write(hostile.child("x"), chunks(b"x"))


# -- archives --


def _xxh3(data: bytes) -> str:
    digest = new_hash()
    digest.update(data)
    return digest.hexdigest()


def _archive(files: dict[str, bytes], *, checksum: dict[str, str] | None = None) -> bytes:
    """A tar stream as the SDK sends one: one piece, its record with each file's checksum
    (``checksum``: a wrong one for some)."""
    piece = ArchivePiece()
    for name, data in files.items():
        piece.add_file(name, data, 1_700_000_000.25)
    body = piece.take()
    for name, digest in (checksum or {}).items():
        body = body.replace(_xxh3(files[name]).encode(), digest.encode())
    return body + ARCHIVE_END


async def test_archives_round_trip(subject: Subject) -> None:
    storage = subject.storage
    files = {
        "a.txt": b"a",
        "sub/b c.bin": os.urandom(WRITE_BUFFER_BYTES + 3),
        "sub/ünï.txt": b"",
    }
    result = await storage.write_archive(HOME.child("up"), chunks(_archive(files)), max_bytes=None)
    assert (result.files, result.size) == (3, sum(len(data) for data in files.values()))
    pieces = await storage.read_archive(
        HOME.child("up"), [("sub", "b c.bin"), ("a.txt",), ("gone",), ("sub", "ünï.txt")]
    )
    body = b"".join([piece async for piece in pieces])
    with tarfile.open(fileobj=io.BytesIO(body), mode="r|") as archive:
        recorded = ArchiveFiles()
        names = []
        for member in archive:
            names.append(member.name)
            data = files[member.name]
            checksum, mtime = recorded.of(archive, member)
            # A small file is read whole, its checksum in its piece's record; a big one is
            # streamed. The record has the exact mtime, the header whole seconds.
            if len(data) <= PIECE_BYTES:
                assert checksum == Checksum("xxh3-128", _xxh3(data))
            else:
                assert checksum is None
            on_disk = (subject.tree / "up" / member.name).stat().st_mtime
            assert (mtime, member.mtime) == (on_disk, int(on_disk))
            read = archive.extractfile(member)
            assert read is not None and read.read() == data
        assert names == ["sub/b c.bin", "a.txt", "sub/ünï.txt"]

    with pytest.raises(BadInput):
        await storage.write_archive(
            HOME.child("bad"),
            chunks(_archive({"first": b"kept", "bad": b"x"}, checksum={"bad": "0" * 32})),
            max_bytes=None,
        )
    assert (subject.tree / "bad" / "first").read_bytes() == b"kept"
    assert not (subject.tree / "bad" / "bad").exists()
    with pytest.raises(PayloadTooLarge):
        await storage.write_archive(HOME.child("big"), chunks(_archive(files)), max_bytes=1000)
    with pytest.raises(NotFound):
        await storage.read_archive(HOME.child("missing"), [("a.txt",)])
    with pytest.raises(BadInput):
        await storage.read_archive(HOME.child("up", "a.txt"), [("x",)])


async def test_an_archive_of_a_whole_tree_holds_its_files_and_nothing_else(
    subject: Subject,
) -> None:
    storage = subject.storage
    files = {
        "a.txt": b"a",
        "sub/deeper/b c.bin": os.urandom(PIECE_BYTES + 5),
        "sub/ünï.txt": b"",
    }
    await storage.write_archive(HOME.child("t"), chunks(_archive(files)), max_bytes=None)
    # Beside them: a link out of the tree, a link to one of its files, an upload arriving.
    root = subject.tree / "t"
    (root / "out").symlink_to("/etc")
    (root / "sub" / "to-a").symlink_to("../a.txt")
    (root / "sub" / partial_name("c.txt")).write_bytes(b"half")
    body = b"".join([piece async for piece in await storage.read_archive(HOME.child("t"), None)])
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert sorted(archive.getnames()) == sorted(files)
        for name, data in files.items():
            read = archive.extractfile(archive.getmember(name))
            assert read is not None and read.read() == data
    with pytest.raises(NotFound):
        await storage.read_archive(HOME.child("missing"), None)


# -- the routes' own rules --


async def test_a_request_without_the_control_planes_claim_learns_nothing(
    tmp_path: Path,
) -> None:
    local = LocalStorage(tmp_path / "storage")
    await local.open()
    await local.write(HOME.child("secret"), chunks(b"secret"))
    async with serving_routes(storage_routes(local, None, authorize=bearer)) as url:
        answers = []
        async with httpx.AsyncClient(base_url=url) as http:
            for headers in ({}, {"authorization": "Bearer forged"}):
                for name in ("secret", "missing"):
                    where = location_header(HOME.child(name))
                    requests = [
                        http.get(FILE_PATH, headers={**headers, LOCATION_HEADER: where}),
                        http.put(
                            FILE_PATH,
                            content=b"planted",
                            headers={**headers, LOCATION_HEADER: where},
                        ),
                        http.post(
                            "/storage/stat",
                            json={"location": {"cluster": "default", "org": "acme"}},
                            headers=headers,
                        ),
                        http.post("/storage/nothing", json={}, headers=headers),
                        http.post("/disks/create", json={}, headers=headers),
                    ]
                    for response in await asyncio.gather(*requests):
                        answers.append((response.status_code, response.json()))
        assert {status for status, _ in answers} == {401}
        assert {body["code"] for _, body in answers} == {"UNAUTHENTICATED"}
        assert len({body["message"] for _, body in answers}) == 1
        assert (local.root / "acme" / "vision" / "secret").read_bytes() == b"secret"
        assert not (local.root / "acme" / "vision" / "missing").exists()

        forged = RemoteStorage(url, headers=lambda: {"authorization": "Bearer forged"})
        try:
            with pytest.raises(Unauthenticated):
                await forged.stat(HOME.child("secret"))
            with pytest.raises(Unauthenticated):
                await read_all(forged, HOME.child("secret"))
        finally:
            await forged.aclose()


async def test_malformed_requests_are_bad_input(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "storage")
    await local.open()
    async with serving_routes(storage_routes(local, None, authorize=bearer)) as url:
        async with httpx.AsyncClient(base_url=url, headers=signed()) as http:
            project = {"cluster": "default", "org": "acme", "project": "vision"}
            for body in (
                {},
                {"location": "storage://default/acme/vision"},
                {"location": {**project, "path": "/x"}},
                {"location": {**project, "path": ["a/b"]}},
                {"location": {**project, "path": [".."]}},
                {"location": {**project, "org": 7, "path": []}},
            ):
                response = await http.post("/storage/stat", json=body)
                assert (response.status_code, response.json()["code"]) == (400, "BAD_USER_INPUT")
            response = await http.get(FILE_PATH)
            assert (response.status_code, response.json()["code"]) == (400, "BAD_USER_INPUT")
            response = await http.post("/storage/nothing", json={})
            assert response.status_code == 404


async def test_a_write_gone_silent_ends_and_keeps_what_came(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection cut without a word (half-open): the gateway gives up on its write after
    a while, keeps its bytes, and a resume's `partial_size` waits for that, not longer."""
    monkeypatch.setattr(gateway_storage, "BODY_IDLE_S", 0.3)
    local = LocalStorage(tmp_path / "storage")
    await local.open()

    async def silent() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        await asyncio.Event().wait()
        yield b""

    async with serving_routes(storage_routes(local, None, authorize=bearer)) as url:
        remote = RemoteStorage(url, headers=signed)
        writing = asyncio.create_task(remote.write(HOME.child("s"), silent()))
        try:
            await asyncio.sleep(0.1)
            async with asyncio.timeout(gateway_storage.SETTLE_S / 2):
                assert await remote.partial_size(HOME.child("s")) == 100_000
        finally:
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writing
            await remote.aclose()


async def test_an_unreachable_gateway_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = RemoteStorage(f"http://127.0.0.1:{port}", headers=signed)
    try:
        with pytest.raises(Unavailable):
            await remote.stat(HOME)
        with pytest.raises(Unavailable):
            await remote.write(HOME.child("f"), chunks(b"x"))
    finally:
        await remote.aclose()


async def test_disks_through_the_gateway_answer_as_local_disks(tmp_path: Path) -> None:
    local = LocalDisks(tmp_path / "disks")
    storage = LocalStorage(tmp_path / "storage")
    async with serving_routes(storage_routes(storage, local, authorize=bearer)) as url:
        remote = RemoteDisks(url, headers=signed)
        try:
            disk_id = new_disk_id()
            assert await remote.used_bytes(disk_id) is None
            if local.problem() is not None:
                with pytest.raises(Unavailable):
                    await remote.create(disk_id, 64 * 1024 * 1024)
            else:
                await remote.create(disk_id, 64 * 1024 * 1024)
                assert local.image(disk_id).exists()
                assert await remote.used_bytes(disk_id) == await local.used_bytes(disk_id)
            await remote.delete(disk_id)
            assert not local.image(disk_id).exists()
            with pytest.raises(BadInput):
                await remote.delete("../../etc")
        finally:
            await remote.aclose()
    async with serving_routes(storage_routes(storage, None, authorize=bearer)) as url:
        remote = RemoteDisks(url, headers=signed)
        try:
            with pytest.raises(Unavailable):
                await remote.create(new_disk_id(), 1024)
        finally:
            await remote.aclose()


def test_errors_cross_as_their_own_class() -> None:
    from cluster_gateway.storage_wire import error_from_wire, error_to_wire

    for error in (
        Conflict("busy", details={"partialSize": 3}),
        BadInput("no", fields={"checksum": "checksum mismatch"}),
        NotFound("gone"),
        PayloadTooLarge("big"),
    ):
        back = error_from_wire(error_to_wire(error), error.http_status)
        assert type(back) is type(error)
        assert (back.message, back.fields, back.details) == (
            error.message,
            error.fields,
            error.details,
        )
    other = error_from_wire({"code": "INTERNAL_SERVER_ERROR", "message": "mkfs failed"}, 500)
    assert type(other) is GliaError and other.code == "INTERNAL_SERVER_ERROR"
