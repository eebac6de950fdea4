"""Storage through the real server and the SDK: metadata over GraphQL, bytes over
/api/storage; hostile paths refused, uploads atomic, resumable and checksum-checked, and every
operation checked (a stranger learns nothing, a reader cannot write)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sdk import BadInput, Conflict, Forbidden, GliaClient, NotFound, PayloadTooLarge
from tests.factories import ServedApi, make_settings, serving_api
from tests.polling import eventually

ROOT = "storage://default/alice/alice"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServedApi]:
    with serving_api(make_settings(tmp_path, storage_upload_limit_bytes=4 * 1024**2)) as server:
        yield server


def storage_dir(server: ServedApi) -> Path:
    return server.platform.settings.runtime_dir / "storage"


async def test_files_and_directories(server: ServedApi, tmp_path: Path) -> None:
    alice = server.user("alice")
    source = tmp_path / "a b.txt"
    source.write_bytes(b"hello storage\n" * 1000)
    async with GliaClient(server.url, alice) as client:
        storage = client.storage
        made = await storage.mkdir(f"{ROOT}/data/raw")
        assert (made.path, made.type.value) == ("/data/raw", "directory")
        entry = await storage.upload(source, f"{ROOT}/data/raw/a b.txt")
        assert (entry.name, entry.size) == ("a b.txt", source.stat().st_size)
        assert [e.name for e in await storage.list(f"{ROOT}/data/raw")] == ["a b.txt"]
        copied = await storage.cp(f"{ROOT}/data/raw", f"{ROOT}/copy")
        assert copied.path == "/copy"
        moved = await storage.mv(f"{ROOT}/copy/a b.txt", f"{ROOT}/copy/b.txt")
        assert moved.path == "/copy/b.txt"
        found = await storage.glob(ROOT, "**/*.txt")
        assert [m.path for m in found.matches] == ["/copy/b.txt", "/data/raw/a b.txt"]
        usage = await storage.du(ROOT)
        assert (usage.files, usage.directories, usage.complete) == (2, 3, True)
        assert usage.size == 2 * source.stat().st_size
        assert (await storage.df(ROOT)).total > 0
        target = tmp_path / "back.txt"
        assert await storage.download(f"{ROOT}/copy/b.txt", target) == source.stat().st_size
        assert target.read_bytes() == source.read_bytes()
        with pytest.raises(Conflict):
            await storage.rm(f"{ROOT}/copy")
        assert await storage.rm(f"{ROOT}/copy", recursive=True) == 2
        with pytest.raises(NotFound):
            await storage.stat(f"{ROOT}/copy")

        # Paging by name.
        for index in range(5):
            await storage.mkdir(f"{ROOT}/many/{index}")
        names = [e.name async for e in storage.ls(f"{ROOT}/many", page_size=2)]
        assert names == ["0", "1", "2", "3", "4"]

    # Private to the server's user.
    tree = storage_dir(server) / "alice" / "alice"
    assert stat.S_IMODE((tree / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tree / "data" / "raw" / "a b.txt").stat().st_mode) == 0o600


async def test_ranges(server: ServedApi, tmp_path: Path) -> None:
    alice = server.user("alice")
    source = tmp_path / "x"
    source.write_bytes(bytes(range(256)) * 4)
    async with GliaClient(server.url, alice) as client:
        await client.storage.upload(source, f"{ROOT}/x")
        url = client.storage.url(f"{ROOT}/x")
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {alice}", "Range": "bytes=10-19"}
        response = await http.get(url, headers=headers)
        assert response.status_code == 206
        assert response.headers["content-range"] == "bytes 10-19/1024"
        assert response.content == source.read_bytes()[10:20]
        headers["Range"] = "bytes=5000-"
        assert (await http.get(url, headers=headers)).status_code == 416


async def test_hostile_paths_are_refused(server: ServedApi, tmp_path: Path) -> None:
    alice = server.user("alice")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    async with GliaClient(server.url, alice) as client:
        await client.storage.mkdir(ROOT)
        tree = storage_dir(server) / "alice" / "alice"
        os.symlink(outside, tree / "escape")
        os.symlink(outside / "secret", tree / "secret-link")
        for uri in (
            f"{ROOT}/../bob",
            f"{ROOT}/a/../../b",
            f"{ROOT}/nul\x00name",
            f"{ROOT}/bell\x07",
            f"{ROOT}/" + "x" * 256,
            f"{ROOT}/escape",
            f"{ROOT}/escape/secret",
            f"{ROOT}/escape/new",
        ):
            with pytest.raises(BadInput):
                await client.storage.mkdir(uri)
        for uri in (f"{ROOT}/escape/secret", f"{ROOT}/secret-link"):
            with pytest.raises(BadInput):
                await client.storage.download(uri, tmp_path / "got")
        with pytest.raises(BadInput):
            await client.storage.upload(outside / "secret", f"{ROOT}/escape/planted")
        with pytest.raises(BadInput):
            await client.storage.list(f"{ROOT}/escape")
        with pytest.raises(BadInput):
            await client.storage.mv(f"{ROOT}/secret-link", f"{ROOT}/escape/moved")
        assert sorted(p.name for p in outside.iterdir()) == ["secret"]
        assert [m.path for m in (await client.storage.glob(ROOT, "**/secret")).matches] == []

    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {alice}"}
        base = f"{server.url}/api/storage/default/alice/alice"
        for path in ("%2e%2e/%2e%2e/etc", "a%00b", "tab%09name", "x" * 300, "escape/secret"):
            response = await http.put(f"{base}/{path}", content=b"x", headers=headers)
            assert response.status_code == 400, path
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        # httpx normalizes `..` away itself: send it raw. (The server may normalize it too,
        # which leaves a path in bob's project: not found for alice.)
        url = httpx.URL(f"{base}/x").copy_with(raw_path=b"/api/storage/default/alice/../bob/x")
        raw = await http.request("GET", url, headers=headers)
        assert raw.status_code in (400, 404)


async def test_an_interrupted_upload_resumes_and_is_checked(
    server: ServedApi, tmp_path: Path
) -> None:
    alice = server.user("alice")
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "big"
    source.write_bytes(data)
    checksum = hashlib.sha256(data).hexdigest()
    async with GliaClient(server.url, alice) as client:
        uri = f"{ROOT}/big"
        url = client.storage.url(uri)
        headers = {"Authorization": f"Bearer {alice}", "X-Glia-Sha256": checksum}

        async def cut_short() -> object:
            yield data[: 1024 * 1024]
            raise ConnectionResetError("cable pulled")

        async with httpx.AsyncClient() as http:
            with pytest.raises(ConnectionResetError):
                await http.put(url, content=cut_short(), headers=headers)

        async def partial_written() -> int:
            return await client.storage.upload_offset(uri) == 1024 * 1024

        await eventually(partial_written)
        kept = await client.storage.upload_offset(uri)
        with pytest.raises(NotFound):
            await client.storage.stat(uri)  # nothing visible until the last byte came
        assert [e.name for e in await client.storage.list(ROOT)] == []

        seen: list[int] = []
        entry = await client.storage.upload(source, uri, resume=True, progress=seen.append)
        assert seen[0] == kept and seen[-1] == len(data)
        assert entry.size == len(data)
        assert (storage_dir(server) / "alice" / "alice" / "big").read_bytes() == data
        assert await client.storage.upload_offset(uri) == 0

        # A wrong checksum: refused, nothing written, the partial dropped.
        async with httpx.AsyncClient() as http:
            wrong = {**headers, "X-Glia-Sha256": "0" * 64}
            response = await http.put(f"{url}-2", content=b"abc", headers=wrong)
            assert response.status_code == 400
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert await client.storage.upload_offset(f"{uri}-2") == 0
            # Continuing past what was kept is a conflict.
            response = await http.put(f"{url}-3?offset=10", content=b"abc", headers=headers)
            assert response.status_code == 409
        with pytest.raises(NotFound):
            await client.storage.stat(f"{uri}-2")

        # The size limit (4 MiB here).
        too_big = tmp_path / "too-big"
        too_big.write_bytes(b"\0" * (5 * 1024 * 1024))
        with pytest.raises(PayloadTooLarge):
            await client.storage.upload(too_big, f"{ROOT}/too-big")


async def test_strangers_and_readers(server: ServedApi, tmp_path: Path) -> None:
    root = server.user("root", role="admin")
    alice = server.user("alice")
    server.user("bob")
    mallory = server.user("mallory")
    bob = server.user("bob2")
    source = tmp_path / "f"
    source.write_text("hi")
    async with GliaClient(server.url, root) as admin:
        await admin.orgs.create("acme")
        await admin.orgs.set_member("acme", "alice", "manager")
    async with GliaClient(server.url, alice) as client:
        await client.projects.create("acme", "vision")
        await client.projects.set_member("acme", "vision", "bob2", "reader")
        await client.storage.upload(source, "storage://default/acme/vision/f")
    project = "storage://default/acme/vision"
    async with GliaClient(server.url, mallory) as stranger, GliaClient(server.url, bob) as reader:
        assert [e.name for e in await reader.storage.list(project)] == ["f"]
        await reader.storage.download(f"{project}/f", tmp_path / "got")
        for operation in (
            lambda s: s.stat(f"{project}/f"),
            lambda s: s.list(project),
            lambda s: s.glob(project, "*"),
            lambda s: s.du(project),
            lambda s: s.df(project),
            lambda s: s.upload_offset(f"{project}/g"),
            lambda s: s.mkdir(f"{project}/d"),
            lambda s: s.rm(f"{project}/f"),
            lambda s: s.mv(f"{project}/f", f"{project}/g"),
            lambda s: s.cp(f"{project}/f", f"{project}/g"),
            lambda s: s.upload(source, f"{project}/g"),
            lambda s: s.download(f"{project}/f", tmp_path / "stolen"),
        ):
            with pytest.raises(NotFound):
                await operation(stranger.storage)
        for operation in (
            lambda s: s.mkdir(f"{project}/d"),
            lambda s: s.rm(f"{project}/f"),
            lambda s: s.mv(f"{project}/f", f"{project}/g"),
            lambda s: s.cp(f"{project}/f", f"{project}/g"),
            lambda s: s.upload(source, f"{project}/g"),
            lambda s: s.upload_offset(f"{project}/g"),
        ):
            with pytest.raises(Forbidden):
                await operation(reader.storage)
