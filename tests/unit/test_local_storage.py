"""LocalStorage on its own: big writes streamed (and resumed), small ones in one go, and the
paths it refuses, beneath the API's checks."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from cluster_gateway import tree_fd
from cluster_gateway.storage import WRITE_BUFFER_BYTES, LocalStorage
from glia.errors import BadInput, Conflict
from glia.storage import (
    PIECE_BYTES,
    ArchiveFiles,
    Checksum,
    StorageLocation,
    new_hash,
    partial_name,
)

HOME = StorageLocation("default", "acme", "vision")


async def chunks(
    data: bytes, size: int = 64 * 1024, fail_after: int | None = None
) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        if fail_after is not None and start >= fail_after:
            raise ConnectionResetError("cut")
        yield data[start : start + size]


@pytest.fixture
async def storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "storage")
    await storage.open()
    return storage


@pytest.mark.parametrize("size", [0, 1000, WRITE_BUFFER_BYTES - 1, 3 * WRITE_BUFFER_BYTES + 5])
async def test_a_write_lands_whole_and_checked(storage: LocalStorage, size: int) -> None:
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    entry = await storage.write(HOME.child("f"), chunks(data), checksum=Checksum("sha256", digest))
    assert entry.size == size
    assert (storage.root / "acme" / "vision" / "f").read_bytes() == data
    with pytest.raises(BadInput):
        await storage.write(HOME.child("g"), chunks(data), checksum=Checksum("sha256", "0" * 64))
    assert not (storage.root / "acme" / "vision" / "g").exists()
    assert await storage.partial_size(HOME.child("g")) == 0


@pytest.mark.parametrize("cut", [128 * 1024, 2 * WRITE_BUFFER_BYTES + 64 * 1024])
async def test_a_cut_write_keeps_what_came_and_resumes(storage: LocalStorage, cut: int) -> None:
    data = os.urandom(3 * WRITE_BUFFER_BYTES)
    target = HOME.child("big")
    with pytest.raises(ConnectionResetError):
        await storage.write(target, chunks(data, fail_after=cut))
    kept = await storage.partial_size(target)
    assert kept == cut
    with pytest.raises(Conflict):
        await storage.write(target, chunks(b"x"), offset=kept + 1)
    entry = await storage.write(
        target,
        chunks(data[kept:]),
        offset=kept,
        checksum=Checksum("sha256", hashlib.sha256(data).hexdigest()),
    )
    assert entry.size == len(data)
    assert (storage.root / "acme" / "vision" / "big").read_bytes() == data
    assert not (storage.root / "acme" / "vision" / partial_name("big")).exists()


async def test_a_declared_length_is_set_aside_and_a_cut_write_gives_the_rest_back(
    storage: LocalStorage,
) -> None:
    """The bytes an upload declares are allocated on disk before they come; when it breaks
    off, its partial holds no more disk than it kept (a client that declares the largest
    upload and sends nothing holds nothing)."""
    declared = 64 * 1024 * 1024
    data = os.urandom(3 * WRITE_BUFFER_BYTES)
    target = HOME.child("big")
    partial = storage.root / "acme" / "vision" / partial_name("big")
    seen: list[os.stat_result] = []

    async def watched() -> AsyncIterator[bytes]:
        async for chunk in chunks(data, fail_after=2 * WRITE_BUFFER_BYTES):
            if partial.exists():
                seen.append(partial.stat())
            yield chunk

    with pytest.raises(ConnectionResetError):
        await storage.write(target, watched(), length=declared)
    # While it was written: the declared bytes held, the size only what was written.
    assert seen and max(info.st_blocks * 512 for info in seen) >= declared
    assert all(info.st_size <= 2 * WRITE_BUFFER_BYTES for info in seen)
    kept = partial.stat()
    assert kept.st_size == 2 * WRITE_BUFFER_BYTES
    assert kept.st_blocks * 512 < kept.st_size + 1024 * 1024
    entry = await storage.write(
        target,
        chunks(data[kept.st_size :]),
        offset=kept.st_size,
        length=len(data) - kept.st_size,
        checksum=Checksum("sha256", hashlib.sha256(data).hexdigest()),
    )
    assert entry.size == len(data)
    stored = (storage.root / "acme" / "vision" / "big").stat()
    assert stored.st_blocks * 512 < len(data) + 1024 * 1024


async def test_a_declared_length_past_the_size_limit_sets_aside_only_the_limit(
    storage: LocalStorage,
) -> None:
    data = os.urandom(2 * WRITE_BUFFER_BYTES)
    partial = storage.root / "acme" / "vision" / partial_name("capped")
    held: list[int] = []

    async def watched() -> AsyncIterator[bytes]:
        async for chunk in chunks(data, fail_after=WRITE_BUFFER_BYTES + 64 * 1024):
            if partial.exists():
                held.append(partial.stat().st_blocks * 512)
            yield chunk

    with pytest.raises(ConnectionResetError):
        await storage.write(HOME.child("capped"), watched(), length=1 << 40, max_bytes=len(data))
    assert held and max(held) <= len(data) + 1024 * 1024


async def test_paths_that_leave_the_tree_are_refused(storage: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    await storage.mkdir(HOME)
    os.symlink(outside, storage.root / "acme" / "vision" / "out")
    for action in (
        storage.mkdir(HOME.child("out", "x")),
        storage.write(HOME.child("out", "x"), chunks(b"x")),
        storage.list(HOME.child("out"), after=None, limit=10),
        storage.usage(HOME.child("out"), time_limit_s=1),
    ):
        with pytest.raises(BadInput):
            await action
    assert list(outside.iterdir()) == []
    with pytest.raises(BadInput):
        await storage.stat(StorageLocation("default", "..", "vision"))


async def test_glob_is_bounded_and_sorted(storage: LocalStorage) -> None:
    await storage.mkdir(HOME.child("dir"))
    for name in ("e", "d", "c", "b", "a"):
        await storage.write(HOME.child("dir", f"{name}.txt"), chunks(b"x"))
    await storage.write(HOME.child("dir", "other.csv"), chunks(b"x"))
    every = await storage.glob(HOME, "**/*.txt", limit=10)
    assert [m.name for m in every.matches] == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]
    assert not every.truncated
    some = await storage.glob(HOME, "dir/*.txt", limit=3)
    assert len(some.matches) == 3 and some.truncated
    assert [m.path for m in some.matches] == sorted(m.path for m in some.matches)


async def test_a_write_makes_its_directories(storage: LocalStorage) -> None:
    entry = await storage.write(HOME.child("a", "b", "c.txt"), chunks(b"abc"))
    assert entry.path == "/a/b/c.txt"
    assert (storage.root / "acme" / "vision" / "a" / "b").is_dir()
    await storage.write(HOME.child("plain"), chunks(b"x"))
    with pytest.raises(Conflict):
        await storage.write(HOME.child("plain", "under"), chunks(b"x"))


def _operations(storage: LocalStorage) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every operation, each on a path through the directory ``d``."""

    async def read() -> list[bytes]:
        return [chunk async for chunk in storage.read(HOME.child("d", "f"))]

    return {
        "stat": lambda: storage.stat(HOME.child("d", "f")),
        "list": lambda: storage.list(HOME.child("d"), after=None, limit=10),
        "mkdir": lambda: storage.mkdir(HOME.child("d", "new")),
        "mv from": lambda: storage.move(HOME.child("d", "f"), HOME.child("moved")),
        "mv into": lambda: storage.move(HOME.child("g"), HOME.child("d", "g")),
        "cp from": lambda: storage.copy(HOME.child("d", "f"), HOME.child("copied")),
        "cp into": lambda: storage.copy(HOME.child("g"), HOME.child("d", "g")),
        "rm": lambda: storage.remove(HOME.child("d", "f")),
        "rm -r": lambda: storage.remove(HOME.child("d", "sub"), recursive=True),
        "glob": lambda: storage.glob(HOME.child("d"), "*", limit=10),
        "du": lambda: storage.usage(HOME.child("d"), time_limit_s=5),
        "upload": lambda: storage.write(HOME.child("d", "planted"), chunks(b"x")),
        "download": read,
        "partial": lambda: storage.partial_size(HOME.child("d", "f")),
    }


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "f").write_text("secret")
    (outside / "sub" / "x").write_text("secret")
    return outside


def _untouched(outside: Path) -> None:
    assert sorted(str(p.relative_to(outside)) for p in outside.rglob("*")) == [
        "f",
        "sub",
        "sub/x",
    ]
    assert (outside / "f").read_text() == "secret"
    assert (outside / "sub" / "x").read_text() == "secret"


@pytest.mark.parametrize("operation", list(_operations(LocalStorage(Path("/")))))
async def test_a_directory_swapped_for_a_link_after_its_check_is_refused(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """The race: each name on a path is checked (a directory), and a job swaps it for a
    link to outside the tree before the server opens it. The open refuses the link."""
    await storage.write(HOME.child("d", "f"), chunks(b"inside"))
    await storage.write(HOME.child("d", "sub", "x"), chunks(b"inside"))
    await storage.write(HOME.child("g"), chunks(b"g"))
    outside = _outside(tmp_path)
    swapped = storage.root / "acme" / "vision" / "d"
    opened = tree_fd.open_directory

    def swap_then_open(name: str, dir_fd: int) -> int:
        if name == "d" and not swapped.is_symlink():
            os.rename(swapped, swapped.with_name("d.old"))
            os.symlink(outside, swapped)
        return opened(name, dir_fd)

    monkeypatch.setattr(tree_fd, "open_directory", swap_then_open)
    with pytest.raises(BadInput):
        await _operations(storage)[operation]()
    _untouched(outside)


@pytest.mark.parametrize("operation", list(_operations(LocalStorage(Path("/")))))
async def test_a_link_out_of_the_tree_is_never_followed(
    storage: LocalStorage, tmp_path: Path, operation: str
) -> None:
    """A directory replaced by a link to outside (absolute, or relative with '..') before
    the call: refused, and nothing outside read or written."""
    await storage.write(HOME.child("g"), chunks(b"g"))
    outside = _outside(tmp_path)
    tree = storage.root / "acme" / "vision"
    # The relative link climbs out with '..': tmp_path/storage/acme/vision -> tmp_path.
    for target in (str(outside), "../../../outside"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tree / "d")
        os.symlink(target, tree / "d")
        with pytest.raises(BadInput):
            await _operations(storage)[operation]()
        _untouched(outside)


async def test_links_inside_the_tree_are_followed(storage: LocalStorage) -> None:
    await storage.write(HOME.child("real", "f"), chunks(b"inside"))
    tree = storage.root / "acme" / "vision"
    os.symlink("real", tree / "rel")
    os.symlink(tree / "real", tree / "abs")
    os.symlink("../real/f", tree / "real" / "up")
    for path in (("rel", "f"), ("abs", "f"), ("real", "up")):
        assert b"".join([c async for c in storage.read(HOME.child(*path))]) == b"inside"
    assert [e.name for e in (await storage.list(HOME.child("rel"), after=None, limit=9))[0]] == [
        "f",
        "up",
    ]
    os.symlink("loop", tree / "loop")
    with pytest.raises(BadInput):
        await storage.stat(HOME.child("loop"), follow=True)


async def test_an_archive_download_streams_big_files_in_blocks(storage: LocalStorage) -> None:
    big = os.urandom(PIECE_BYTES + 12345)
    await storage.write(HOME.child("d", "big"), chunks(big))
    await storage.write(HOME.child("d", "e", "small"), chunks(b"small"))
    pieces = await storage.read_archive(HOME.child("d"), [("e", "small"), ("big",), ("gone",)])
    body = b"".join([piece async for piece in pieces])
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert archive.getnames() == ["e/small", "big"]
        small = archive.getmember("e/small")
        digest = new_hash()
        digest.update(b"small")
        assert ArchiveFiles().of(archive, small)[0] == Checksum("xxh3-128", digest.hexdigest())
        member = archive.extractfile("big")
        assert member is not None and member.read() == big


async def test_an_archive_download_dropped_midway_leaves_nothing_open(
    storage: LocalStorage,
) -> None:
    # Pieces of small files and big files: the reader goes away after a piece, or in a big
    # file's blocks, while the walk and a file are open.
    tree = storage.root / "acme" / "vision" / "d"
    (tree / "small").mkdir(parents=True)
    for index in range(2500):
        (tree / "small" / f"{index:04}").write_bytes(b"x")
    for name in ("big-1", "big-2", "big-3"):
        (tree / name).write_bytes(b"\0" * (PIECE_BYTES + 1))
    opened = len(os.listdir("/proc/self/fd"))
    for pieces_read in (1, 2, 4):
        pieces = await storage.read_archive(HOME.child("d"), None)
        taken = [await anext(pieces) for _ in range(pieces_read)]
        assert all(taken)
        await pieces.aclose()  # type: ignore[attr-defined]
        assert len(os.listdir("/proc/self/fd")) == opened
    # And read whole, every file is there once.
    pieces = await storage.read_archive(HOME.child("d"), None)
    body = b"".join([piece async for piece in pieces])
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        names = archive.getnames()
    assert len(names) == len(set(names)) == 2503
    assert len(os.listdir("/proc/self/fd")) == opened


def test_a_directory_listing_leaves_no_fd_open_and_its_fd_where_it_was(tmp_path: Path) -> None:
    for index in range(20):
        (tmp_path / f"{index:02}").write_bytes(b"")
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        opened = len(os.listdir("/proc/self/fd"))
        for _ in range(50):
            assert len(list(tree_fd.scan(directory))) == 20
        assert len(os.listdir("/proc/self/fd")) == opened
        # Two listings of one fd at once (two requests for one directory) each see all.
        first, second = tree_fd.scan(directory), tree_fd.scan(directory)
        seen = [next(first), next(second)]
        seen += list(first) + list(second)
        assert len(seen) == 40 and len({entry.name for entry in seen}) == 20
        assert len(os.listdir("/proc/self/fd")) == opened
    finally:
        os.close(directory)
