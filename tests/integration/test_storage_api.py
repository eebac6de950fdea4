"""Storage through the real server and the SDK: metadata over GraphQL, bytes over
/api/storage; hostile paths refused, uploads atomic, resumable and checksum-checked, and every
operation checked (a stranger learns nothing, a reader cannot write)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import xxhash

from glia.storage import ARCHIVE_FILES, Checksum
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


@pytest.fixture
def roomy_server(tmp_path: Path) -> Iterator[ServedApi]:
    with serving_api(make_settings(tmp_path, storage_upload_limit_bytes=64 * 1024**2)) as server:
        yield server


async def test_a_big_files_checksum_follows_its_bytes_and_a_resume_hashes_what_was_kept(
    roomy_server: ServedApi, tmp_path: Path
) -> None:
    data = os.urandom(20 * 1024 * 1024 + 5)
    source = tmp_path / "big"
    source.write_bytes(data)
    digest = xxhash.xxh3_128_hexdigest(data).encode()
    server = roomy_server
    alice = server.user("alice")
    async with GliaClient(server.url, alice) as client, httpx.AsyncClient() as http:
        uri = f"{ROOT}/big"
        url = client.storage.url(uri)
        trailer = {"Authorization": f"Bearer {alice}", "X-Glia-Checksum": "xxh3-128=trailer"}
        whole = {**trailer, "Content-Length": str(len(data) + len(digest))}

        async def cut_short() -> object:
            yield data[: 9 * 1024 * 1024]
            raise ConnectionResetError("cable pulled")

        with pytest.raises(ConnectionResetError):
            await http.put(url, content=cut_short(), headers=whole)

        async def partial_written() -> bool:
            return await client.storage.upload_offset(uri) == 9 * 1024 * 1024

        await eventually(partial_written)
        # The SDK's resume hashes the kept bytes, sends the rest, then the digest.
        entry = await client.storage.upload(source, uri, resume=True)
        assert entry.size == len(data)
        assert (storage_dir(server) / "alice" / "alice" / "big").read_bytes() == data

        async def body(*pieces: bytes) -> object:
            for piece in pieces:
                yield piece

        refusals = [
            # No length: where the bytes end and the digest starts is unknown.
            (trailer, body(b"abc", digest)),
            ({**trailer, "Content-Length": "35"}, body(b"abc", b"0" * 32)),
            ({**trailer, "Content-Length": "34"}, body(b"abc", digest[:31])),
        ]
        for headers, content in refusals:
            response = await http.put(f"{url}-2", content=content, headers=headers)
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert await client.storage.upload_offset(f"{uri}-2") == 0
        with pytest.raises(NotFound):
            await client.storage.stat(f"{uri}-2")
    # What a server from before the trailer does with its header: refuse it, write nothing.
    with pytest.raises(BadInput):
        Checksum.parse("xxh3-128=trailer")


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
            lambda s: s.upload_files([(source, "g")], project),
            lambda s: s.download_files(project, [("f", tmp_path / "stolen")]),
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
            lambda s: s.upload_files([(source, "g")], project),
        ):
            with pytest.raises(Forbidden):
                await operation(reader.storage)


def _tar(*members: tuple[tarfile.TarInfo, bytes], record: str | None = None) -> bytes:
    """A tar of ``members``; ``record``: the GLIA.files record in a global header first."""
    buffer = io.BytesIO()
    pax = None if record is None else {ARCHIVE_FILES: record}
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers=pax
    ) as archive:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, **pax: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "/etc/passwd"
    info.pax_headers = dict(pax)
    return info


def _partials(tree: Path) -> list[Path]:
    return [p for p in tree.rglob("*") if p.name.endswith(".glia-partial")]


async def test_archives_carry_many_files_and_refuse_hostile_members(
    server: ServedApi, tmp_path: Path
) -> None:
    alice = server.user("alice")
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    names = ["a.txt", "sub/b c.bin", "sub/ünï.txt"]
    for index, name in enumerate(names):
        (local / name).write_bytes(os.urandom(1000 * index))
        os.utime(local / name, (1_700_000_000 + index, 1_700_000_000 + index))
    tree = storage_dir(server) / "alice" / "alice"
    async with GliaClient(server.url, alice) as client:
        sent = await client.storage.upload_files(
            [(local / name, name) for name in names], f"{ROOT}/up"
        )
        assert (sent.files, sent.size) == (3, 3000)
        for name in names:
            assert (tree / "up" / name).read_bytes() == (local / name).read_bytes()
        back = tmp_path / "back"
        got = await client.storage.download_files(
            f"{ROOT}/up", [(name, back / name) for name in names]
        )
        assert got == 3000
        for name in names:
            assert (back / name).read_bytes() == (local / name).read_bytes()
            # The cluster's modification time comes along (glia storage cp --update).
            assert (back / name).stat().st_mtime == (tree / "up" / name).stat().st_mtime
        url = client.storage.archive_url(f"{ROOT}/hostile")

    good = (_member("first.txt"), b"kept")
    bad = (_member("bad"), b"x")
    hostile = {
        "traversal": _tar(good, (_member("../evil"), b"x")),
        "absolute": _tar(good, (_member("/tmp/evil"), b"x")),
        "control": _tar(good, (_member("bell\x07"), b"x")),
        "symlink": _tar(good, (_member("link", tarfile.SYMTYPE), b"")),
        "hard link": _tar(good, (_member("hard", tarfile.LNKTYPE), b"")),
        "device": _tar(good, (_member("dev", tarfile.CHRTYPE), b"")),
        "checksum": _tar(good, bad, record='{"bad": ["xxh3-128=' + "0" * 32 + '", 0]}'),
        "malformed checksum": _tar(good, bad, record='{"bad": ["md5=00", 0]}'),
        "record not an object": _tar(good, bad, record='["bad"]'),
        "record not JSON": _tar(good, bad, record="{bad"),
        "entry not a pair": _tar(good, bad, record='{"bad": "xxh3-128"}'),
        "mtime not a number": _tar(good, bad, record='{"bad": [null, "now"]}'),
        "mtime not finite": _tar(good, bad, record='{"bad": [null, NaN]}'),
        "mtime out of range": _tar(good, bad, record='{"bad": [null, 1e300]}'),
        "not tar": b"this is no archive" * 100,
        # tarfile holds a member's pax records in memory whole: they are bounded.
        "huge header": _tar(good, (_member("big", comment="x" * (3 * 1024 * 1024)), b"x")),
    }
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {alice}"}
        for case, body in hostile.items():
            response = await http.put(url, content=body, headers=headers)
            assert response.status_code == 400, case
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", case
        # The limit (4 MiB here) holds for each member.
        response = await http.put(
            url, content=_tar((_member("huge"), b"\0" * (5 * 1024 * 1024))), headers=headers
        )
        assert response.status_code == 413
        # What `tar c -C DIR .` makes: members named ./…, the directory itself ./
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(local, arcname=".")
        response = await http.put(
            url.replace("/hostile", "/from-tar"), content=buffer.getvalue(), headers=headers
        )
        assert response.status_code == 201, response.text
        assert response.json() == {"files": 3, "size": 3000}
        assert (tree / "from-tar" / "sub" / "b c.bin").read_bytes() == (
            local / "sub" / "b c.bin"
        ).read_bytes()
    # What came before a refused member was written whole; nothing else, nothing half.
    assert sorted(p.name for p in (tree / "hostile").iterdir()) == ["first.txt"]
    assert (tree / "hostile" / "first.txt").read_bytes() == b"kept"
    assert _partials(tree) == []
    assert not (tree.parent / "evil").exists()


async def test_archive_downloads_send_only_files_inside_the_tree(
    server: ServedApi, tmp_path: Path
) -> None:
    alice = server.user("alice")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    tree = storage_dir(server) / "alice" / "alice"
    async with GliaClient(server.url, alice) as client:
        await client.storage.mkdir(f"{ROOT}/d")
        (tree / "d" / "f").write_text("inside")
        os.symlink(outside, tree / "d" / "escape")
        os.symlink(outside / "secret", tree / "d" / "secret-link")
        with pytest.raises(NotFound):
            await client.storage.download_files(
                f"{ROOT}/d",
                [("f", tmp_path / "f"), ("escape/secret", tmp_path / "s1")],
            )
        # None of them there: an empty archive, and NOT_FOUND all the same.
        with pytest.raises(NotFound):
            await client.storage.download_files(f"{ROOT}/d", [("gone", tmp_path / "gone")])
        # And none sent: nothing written.
        assert (await client.storage.upload_files([], f"{ROOT}/d")).files == 0
        url = client.storage.archive_url(f"{ROOT}/d")
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {alice}"}
        asked = {"paths": ["f", "escape/secret", "secret-link"]}
        response = await http.post(url, json=asked, headers=headers)
        assert response.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
            assert archive.getnames() == ["f"]
            member = archive.extractfile("f")
            assert member is not None and member.read() == b"inside"
        for paths in (["../x"], ["/etc/passwd"], "f", ["a\x00b"]):
            response = await http.post(url, json={"paths": paths}, headers=headers)
            assert response.status_code == 400, paths
        # The whole tree, walked by the server: the links are not followed, nor sent.
        whole = await http.post(url, json={"all": True}, headers=headers)
        assert whole.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(whole.content)) as archive:
            assert archive.getnames() == ["f"]
        for body in ({"all": True, "paths": ["f"]}, {"all": False}, {"all": "yes"}):
            response = await http.post(url, json=body, headers=headers)
            assert response.status_code == 400, body
        bob = {"Authorization": f"Bearer {server.user('bob')}"}
        stranger = await http.post(url, json={"all": True}, headers=bob)
        assert stranger.status_code == 404
    assert (tmp_path / "f").read_text() == "inside"
    assert not (tmp_path / "s1").exists()
    async with GliaClient(server.url, alice) as client:
        copied = await client.storage.download_tree(f"{ROOT}/d", tmp_path / "tree")
    assert copied == (1, len("inside"))
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == ["f"]


async def test_a_directory_swapped_for_a_link_refuses_every_operation(
    server: ServedApi, tmp_path: Path
) -> None:
    """A job swaps a directory of its tree for a link to outside it; then every operation
    that goes through that directory is refused, and nothing outside is read or written."""
    alice = server.user("alice")
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "f").write_text("secret")
    (outside / "sub" / "x").write_text("secret")
    source = tmp_path / "planted"
    source.write_text("planted")
    tree = storage_dir(server) / "alice" / "alice"
    async with GliaClient(server.url, alice) as client:
        storage = client.storage
        await storage.upload(source, f"{ROOT}/d/f")
        await storage.upload(source, f"{ROOT}/d/sub/x")
        await storage.upload(source, f"{ROOT}/g")
        os.rename(tree / "d", tree / "d.old")
        os.symlink(outside, tree / "d")
        operations = {
            "stat": lambda: storage.stat(f"{ROOT}/d/f"),
            "ls": lambda: storage.list(f"{ROOT}/d"),
            "mkdir": lambda: storage.mkdir(f"{ROOT}/d/new"),
            "mv from": lambda: storage.mv(f"{ROOT}/d/f", f"{ROOT}/moved"),
            "mv into": lambda: storage.mv(f"{ROOT}/g", f"{ROOT}/d/g"),
            "cp from": lambda: storage.cp(f"{ROOT}/d/f", f"{ROOT}/copied"),
            "cp into": lambda: storage.cp(f"{ROOT}/g", f"{ROOT}/d/g"),
            "rm": lambda: storage.rm(f"{ROOT}/d/f"),
            "rm -r": lambda: storage.rm(f"{ROOT}/d/sub", recursive=True),
            "glob": lambda: storage.glob(f"{ROOT}/d", "*"),
            "du": lambda: storage.du(f"{ROOT}/d"),
            "upload": lambda: storage.upload(source, f"{ROOT}/d/planted"),
            "download": lambda: storage.download(f"{ROOT}/d/f", tmp_path / "stolen"),
            "upload many": lambda: storage.upload_files([(source, "planted")], f"{ROOT}/d"),
            "download many": lambda: storage.download_files(
                f"{ROOT}/d", [("f", tmp_path / "stolen")]
            ),
            "upload offset": lambda: storage.upload_offset(f"{ROOT}/d/f"),
        }
        for name, operation in operations.items():
            with pytest.raises(BadInput):
                await operation()
                pytest.fail(name)
        # The link itself is the tree's: it can be removed, and what it pointed to stays.
        assert await storage.rm(f"{ROOT}/d") == 1
    assert sorted(str(p.relative_to(outside)) for p in outside.rglob("*")) == ["f", "sub", "sub/x"]
    assert (outside / "f").read_text() == "secret"
    assert (outside / "sub" / "x").read_text() == "secret"
    assert not (tmp_path / "stolen").exists()


async def test_storage_requests_leave_no_fd_open(server: ServedApi, tmp_path: Path) -> None:
    """The server and this client share the process: after the same requests run twenty
    times more, it holds no more fds than after their first round (a listing, a walk or an
    archive that left one open would add one or more each round)."""
    alice = server.user("alice")
    local = tmp_path / "local"
    local.mkdir()
    files = [(local / f"{index:02}", f"sub/{index:02}") for index in range(30)]
    for path, _ in files:
        path.write_bytes(b"x" * 100)

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async with GliaClient(server.url, alice) as client:

        async def requests() -> None:
            await client.storage.upload_files(files, f"{ROOT}/tree")
            assert len(await client.storage.list(f"{ROOT}/tree/sub")) == 30
            assert (await client.storage.du(f"{ROOT}/tree")).files == 30
            assert len((await client.storage.glob(ROOT, "**/1*")).matches) == 10
            assert await client.storage.download_tree(f"{ROOT}/tree", tmp_path / "back") == (
                30,
                3000,
            )

        await requests()
        baseline = open_fds()
        for _ in range(20):
            await requests()

        async def settled() -> bool:
            return open_fds() <= baseline

        await eventually(settled)
