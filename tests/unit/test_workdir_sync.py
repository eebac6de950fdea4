"""The workdir sync's two ends on their own: the client's scan (ignore files, the size cap)
and LocalStorage's plan (what to remove, what to upload), with uploads that keep mtime and
mode, and the host path a runtime may bind."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cluster_gateway.storage import LocalStorage
from glia.errors import BadInput, NotFound
from glia.storage import StorageLocation, SyncFile
from sdk.workdir import WorkdirTooLarge, scan

HOME = StorageLocation("default", "acme", "vision")
WORKDIR = HOME.child(".glia", "workdirs", "src-0a1b2c3d")


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_scan_honours_gitignore_gliaignore_nested_and_git(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".gitignore": "*.log\nbuild/\n!keep.log\n",
            ".gliaignore": "data/\n/top-only.txt\n",
            "train.py": "x",
            "keep.log": "kept: negated",
            "run.log": "no",
            "build/out.o": "no",
            "data/big.bin": "no",
            "top-only.txt": "no",
            "pkg/top-only.txt": "yes: anchored at the root only",
            "pkg/.gitignore": "local.txt\n",
            "pkg/local.txt": "no",
            "local.txt": "yes: the nested rule is pkg's",
            ".git/HEAD": "no",
        },
    )
    (tmp_path / "train.py").chmod(0o755)
    os.symlink("/etc", tmp_path / "etc-link")
    found = {f.path: f for f in scan(tmp_path)}
    assert sorted(found) == [
        ".gitignore",
        ".gliaignore",
        "keep.log",
        "local.txt",
        "pkg/.gitignore",
        "pkg/top-only.txt",
        "train.py",
    ]
    assert found["train.py"].executable and not found["keep.log"].executable
    assert found["train.py"].mtime == (tmp_path / "train.py").stat().st_mtime_ns / 1e9


def test_scan_over_the_cap_names_the_biggest(tmp_path: Path) -> None:
    _write(tmp_path, {"small.py": "x", "model.ckpt": "y" * 5000, "data.npy": "z" * 3000})
    with pytest.raises(WorkdirTooLarge) as raised:
        scan(tmp_path, max_bytes=4096)
    assert [path for path, _ in raised.value.biggest][:2] == ["model.ckpt", "data.npy"]
    assert "model.ckpt (4.9 KiB)" in raised.value.message and ".gliaignore" in raised.value.message
    assert len(scan(tmp_path, max_bytes=None)) == 3
    with pytest.raises(BadInput):
        scan(tmp_path / "small.py")


def test_scan_stops_past_the_file_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sdk.workdir.MAX_FILES", 5)
    for index in range(10):
        _write(tmp_path, {f"d{index}/f.py": "x"})
    with pytest.raises(BadInput, match="more than 5 files"):
        scan(tmp_path)


@pytest.fixture
async def storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "storage")
    await storage.open()
    return storage


async def _bytes(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_the_plan_removes_what_went_and_names_what_differs(storage: LocalStorage) -> None:
    files = [
        SyncFile(path="a.py", size=2, mtime=1_700_000_000.25),
        SyncFile(path="pkg/b.py", size=1, mtime=1_700_000_000.5, executable=True),
    ]
    first = await storage.sync_plan(WORKDIR, files)
    assert first.upload == ("a.py", "pkg/b.py") and first.removed == 0
    for file, data in zip(files, (b"aa", b"b"), strict=True):
        await storage.write(
            WORKDIR.child(*file.path.split("/")),
            _bytes(data),
            mtime=file.mtime,
            executable=file.executable,
        )
    again = await storage.sync_plan(WORKDIR, files)
    assert again.upload == () and again.removed == 0
    root = Path(storage.host_directory(WORKDIR))
    assert os.stat(root / "pkg" / "b.py").st_mode & 0o777 == 0o700
    (root / "old").mkdir()
    (root / "old" / "x").write_text("gone locally")
    (root / "stray.txt").write_text("the job's")
    changed = [files[0].model_copy(update={"mtime": 1_700_000_001.0}), files[1]]
    plan = await storage.sync_plan(WORKDIR, changed)
    assert plan.upload == ("a.py",) and plan.removed == 3
    assert sorted(os.listdir(root)) == ["a.py", "pkg"]
    not_executable = [files[0], files[1].model_copy(update={"executable": False})]
    assert (await storage.sync_plan(WORKDIR, not_executable)).upload == ("pkg/b.py",)


async def test_the_plan_refuses_hostile_paths(storage: LocalStorage) -> None:
    for path in ("../escape.py", "a//b", "/abs", "a/\x00"):
        with pytest.raises(BadInput):
            await storage.sync_plan(WORKDIR, [SyncFile(path=path, size=0, mtime=0)])
    clash = [SyncFile(path="a", size=0, mtime=0), SyncFile(path="a/b", size=0, mtime=0)]
    with pytest.raises(BadInput):
        await storage.sync_plan(WORKDIR, clash)


def test_a_runtime_binds_only_directories_inside_the_tree(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    tree = storage.root / "acme" / "vision"
    (tree / "code").mkdir(parents=True)
    assert storage.host_directory(HOME.child("code")) == os.path.realpath(tree / "code")
    os.symlink("/etc", tree / "escape")
    os.symlink(tree / "code", tree / "inside")
    with pytest.raises(BadInput, match="outside"):
        storage.host_directory(HOME.child("escape"))
    assert storage.host_directory(HOME.child("inside")) == os.path.realpath(tree / "code")
    with pytest.raises(NotFound):
        storage.host_directory(HOME.child("missing"))
    (tree / "file").write_text("x")
    with pytest.raises(BadInput):
        storage.host_directory(HOME.child("file"))
