"""LocalStorage on its own: big writes streamed (and resumed), small ones in one go, and the
paths it refuses, beneath the API's checks."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster_gateway.storage import WRITE_BUFFER_BYTES, LocalStorage
from glia.errors import BadInput, Conflict
from glia.storage import StorageLocation, partial_name

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
    entry = await storage.write(HOME.child("f"), chunks(data), sha256=digest)
    assert entry.size == size
    assert (storage.root / "acme" / "vision" / "f").read_bytes() == data
    with pytest.raises(BadInput):
        await storage.write(HOME.child("g"), chunks(data), sha256="0" * 64)
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
        target, chunks(data[kept:]), offset=kept, sha256=hashlib.sha256(data).hexdigest()
    )
    assert entry.size == len(data)
    assert (storage.root / "acme" / "vision" / "big").read_bytes() == data
    assert not (storage.root / "acme" / "vision" / partial_name("big")).exists()


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


async def test_a_directory_swapped_for_a_link_after_its_check_is_refused(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.write(HOME.child("d", "f"), chunks(b"inside"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("secret")
    swapped = storage.root / "acme" / "vision" / "d"
    checked = storage._path

    def check_then_swap(location: StorageLocation, *, follow_last: bool = True) -> str:
        # The race: the path is checked, then a job replaces a directory with a link.
        path = checked(location, follow_last=follow_last)
        if swapped.is_dir() and not swapped.is_symlink():
            shutil.rmtree(swapped)
            os.symlink(outside, swapped)
        return path

    monkeypatch.setattr(storage, "_path", check_then_swap)
    with pytest.raises(BadInput, match="replaced by a link"):
        [chunk async for chunk in storage.read(HOME.child("d", "f"))]
    monkeypatch.setattr(storage, "_path", checked)
    os.unlink(swapped)
    await storage.mkdir(HOME.child("d"))
    monkeypatch.setattr(storage, "_path", check_then_swap)
    with pytest.raises(BadInput):  # by the walk, or by a later check of the path
        await storage.write(HOME.child("d", "planted"), chunks(b"x"))
    assert sorted(p.name for p in outside.iterdir()) == ["f"]
