"""A cluster's file storage: ``client.storage``.

Paths are storage URIs, ``storage://CLUSTER/ORG/PROJECT/path``; `resolve_uri` turns the
CLI's short forms (``storage:data/x`` in the context's project, ``storage:/ORG/PROJECT/x``)
into one. Metadata goes through GraphQL; bytes through ``/api/storage/…``:

    async with GliaClient(url, token) as client:
        await client.storage.upload("model.pt", "storage://default/acme/vision/model.pt")
        await client.storage.download("storage://default/acme/vision/model.pt", "copy.pt")

Uploads are checked end to end (xxh3-128 of the whole file) and, with ``resume``, continue an
upload that was cut short from the bytes the server kept. Downloads write a partial file
beside their target and rename it at the end; with ``resume`` they continue it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import queue
import tarfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from glia.errors import BadInput
from glia.pages import MAX_PAGE_SIZE
from glia.storage import (
    ARCHIVE_END,
    FAST_CHECKSUM,
    PIECE_BYTES,
    SCHEME,
    ArchiveFiles,
    ArchivePiece,
    ArchiveResult,
    Checksum,
    ChecksumTrailer,
    DiskUsage,
    FileStatus,
    GlobResult,
    OpenDirectories,
    StorageLocation,
    StorageUsage,
    SyncPlan,
    archive_member_path,
    new_hash,
    parse_storage_uri,
    partial_name,
    preallocate,
    split_path,
)
from sdk import documents
from sdk.resource import Resource
from sdk.workdir import DEFAULT_MAX_BYTES, scan

CHUNK_BYTES = 1024 * 1024
# Files a sync uploads at a time.
SYNC_CONCURRENCY = 8
# What one read of a local file takes: fewer, bigger blocks cost less Python per byte.
BLOCK_BYTES = 8 * CHUNK_BYTES
# A progress callback gets the bytes done so far on the file at hand.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class SyncResult:
    """What ``client.storage.sync`` did."""

    files: int  # the files the local directory holds (those not ignored)
    total_bytes: int  # their bytes
    uploaded: int  # the files sent (new or changed)
    uploaded_bytes: int
    removed: int  # files and directories removed on the server (gone locally)


def resolve_uri(text: str, *, cluster: str | None, org: str | None, project: str | None) -> str:
    """A storage URI from what a user types.

    - ``storage://CLUSTER/ORG/PROJECT/path``: as it is;
    - ``storage:/ORG/PROJECT/path``: on ``cluster``;
    - ``storage:path`` (or ``storage:``): in ``org``/``project`` on ``cluster``.

    ``resolve_uri("storage:data", cluster="c", org="o", project="p") ==
    "storage://c/o/p/data"``. `BadInput` when a part is missing or a name is refused.
    """
    if text.startswith(f"{SCHEME}://"):
        return parse_storage_uri(text).uri
    if not text.startswith(f"{SCHEME}:"):
        raise BadInput(f"{text!r} is not a storage path: expected storage:path")
    rest = text.removeprefix(f"{SCHEME}:")
    if cluster is None:
        raise BadInput("no cluster chosen: set one with glia config switch-cluster")
    if rest.startswith("/"):
        names = split_path(rest)
        if len(names) < 2:
            raise BadInput(f"{text!r} names no project: expected storage:/ORG/PROJECT/path")
        return StorageLocation(cluster, names[0], names[1], names[2:]).uri
    if org is None or project is None:
        raise BadInput("no project chosen: give storage:/ORG/PROJECT/path")
    return StorageLocation(cluster, org, project, split_path(rest)).uri


def local_partial(target: Path) -> Path:
    """Where a download to ``target`` keeps its bytes until the last one came."""
    return target.with_name(partial_name(target.name))


class StorageResource(Resource):
    def url(self, uri: str) -> str:
        """The byte route of a storage file."""
        location = parse_storage_uri(uri)
        parts = (location.cluster, location.org, location.project, *location.path)
        return f"{self._client.url}/api/storage/" + "/".join(quote(part, safe="") for part in parts)

    async def stat(self, uri: str) -> FileStatus:
        data = await self._client.execute(documents.STORAGE_ENTRY, {"uri": uri})
        return FileStatus.model_validate(data["storageEntry"])

    async def exists(self, uri: str) -> FileStatus | None:
        from sdk.errors import NotFound

        try:
            return await self.stat(uri)
        except NotFound:
            return None

    async def ls(self, uri: str, *, page_size: int = MAX_PAGE_SIZE) -> AsyncGenerator[FileStatus]:
        """A directory's entries by name, every page."""
        after: str | None = None
        while True:
            data = await self._client.execute(
                documents.STORAGE_ENTRIES, {"uri": uri, "first": page_size, "after": after}
            )
            page = data["storageEntries"]
            for edge in page["edges"]:
                yield FileStatus.model_validate(edge["node"])
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    async def list(self, uri: str) -> builtins.list[FileStatus]:
        return [entry async for entry in self.ls(uri)]

    async def glob(self, uri: str, pattern: str) -> GlobResult:
        data = await self._client.execute(documents.STORAGE_GLOB, {"uri": uri, "pattern": pattern})
        return GlobResult.model_validate(data["storageGlob"])

    async def du(self, uri: str) -> StorageUsage:
        data = await self._client.execute(documents.STORAGE_USAGE, {"uri": uri})
        return StorageUsage.model_validate(data["storageUsage"])

    async def df(self, uri: str) -> DiskUsage:
        data = await self._client.execute(documents.STORAGE_DISK, {"uri": uri})
        return DiskUsage.model_validate(data["storageDisk"])

    async def mkdir(self, uri: str, *, parents: bool = True) -> FileStatus:
        variables = {"input": {"uri": uri, "parents": parents}}
        data = await self._client.execute(documents.MAKE_STORAGE_DIRECTORY, variables)
        return FileStatus.model_validate(data["makeStorageDirectory"]["entry"])

    async def rm(self, uri: str, *, recursive: bool = False) -> int:
        variables = {"input": {"uri": uri, "recursive": recursive}}
        data = await self._client.execute(documents.REMOVE_STORAGE_ENTRY, variables)
        return int(data["removeStorageEntry"]["removed"])

    async def mv(self, source: str, target: str) -> FileStatus:
        variables = {"input": {"source": source, "target": target}}
        data = await self._client.execute(documents.MOVE_STORAGE_ENTRY, variables)
        return FileStatus.model_validate(data["moveStorageEntry"]["entry"])

    async def cp(self, source: str, target: str) -> FileStatus:
        """Copy inside one cluster's storage (the bytes stay on the cluster)."""
        variables = {"input": {"source": source, "target": target}}
        data = await self._client.execute(documents.COPY_STORAGE_ENTRY, variables)
        return FileStatus.model_validate(data["copyStorageEntry"]["entry"])

    def _http(self, bulk: bool) -> httpx.AsyncClient:
        """``bulk``: the client of large transfers (`sdk.bulk`), else the client of every
        request (a tar stream of small files moves little, and aiohttp's import costs a
        command ~0.1 s)."""
        if bulk:
            return self._client.bulk_http()
        http = self._client._http
        if http is None:
            raise RuntimeError("use GliaClient as 'async with GliaClient(...) as client'")
        return http

    def archive_url(self, uri: str) -> str:
        """The archive route of a storage directory."""
        return self.url(uri).replace("/api/storage/", "/api/storage-archive/", 1)

    async def _send(
        self,
        url: str,
        *,
        content: bytes | AsyncIterator[bytes],
        headers: dict[str, str],
        params: dict[str, str] | None,
        bulk: bool = False,
    ) -> Any:
        from sdk.client import _byte_route_error, _http_errors

        with _http_errors(self._client.url):
            response = await self._http(bulk).put(
                url,
                content=content,
                headers={**self._client._headers(), **headers},
                params=params,
            )
        if response.status_code >= 400:
            raise _byte_route_error(response.status_code, response.content)
        return response.json()

    async def _receive(
        self,
        url: str,
        *,
        headers: dict[str, str] | None,
        method: str = "GET",
        json: Any = None,
        sized: Callable[[int], None] | None = None,
        bulk: bool = False,
    ) -> AsyncGenerator[bytes]:
        """The body's bytes; ``sized`` is first told its length, where the answer says it."""
        from sdk.client import _byte_route_error, _http_errors

        with _http_errors(self._client.url):
            async with self._http(bulk).stream(
                method, url, headers={**self._client._headers(), **(headers or {})}, json=json
            ) as response:
                if response.status_code >= 400:
                    raise _byte_route_error(response.status_code, await response.aread())
                length = response.headers.get("content-length", "")
                if sized is not None and length.isdigit():
                    sized(int(length))
                async for chunk in response.aiter_raw():
                    yield chunk

    async def upload_offset(self, uri: str) -> int:
        """How many bytes the server kept of an interrupted upload to ``uri``."""
        data = await self._client.execute(documents.STORAGE_UPLOAD_OFFSET, {"uri": uri})
        return int(data["storageUploadOffset"])

    async def upload(
        self,
        source: str | os.PathLike[str],
        uri: str,
        *,
        progress: Progress | None = None,
        resume: bool = False,
        mtime: float | None = None,
        executable: bool = False,
    ) -> FileStatus:
        """Send a local file to ``uri``, checked by its SHA-256; ``resume`` continues the
        bytes the server kept of an earlier try. ``mtime`` (seconds since the epoch) and
        ``executable`` are given to the stored file (a sync compares them next time)."""
        path = Path(source)
        # A small file is read and hashed in one go, and sent from memory; a bigger one is
        # hashed as it is read for sending, its checksum after its bytes (one read of it).
        size, data, checksum = await asyncio.to_thread(_read_small, path)
        offset = await self.upload_offset(uri) if resume else 0
        if offset > size:
            offset = 0
        if progress is not None:
            progress(offset)
        content: bytes | AsyncIterator[bytes]
        if data is not None and checksum is not None:
            content, declared, trailer = data[offset:], checksum.header, 0
        else:
            following = ChecksumTrailer(FAST_CHECKSUM)
            content = _file_chunks(path, offset, size, progress)
            declared, trailer = following.header, following.digits
        response = await self._send(
            self.url(uri),
            content=content,
            headers={
                "X-Glia-Checksum": declared,
                "Content-Length": str(size - offset + trailer),
                "Content-Type": "application/octet-stream",
                **({"X-Glia-Mtime": repr(mtime)} if mtime is not None else {}),
                **({"X-Glia-Executable": "1"} if executable else {}),
            },
            params={"offset": str(offset)} if offset else None,
            bulk=data is None,
        )
        if data is not None and progress is not None:
            progress(size)
        return FileStatus.model_validate(response["entry"])

    async def sync(
        self,
        source: str | os.PathLike[str],
        uri: str,
        *,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        concurrency: int = SYNC_CONCURRENCY,
        progress: Progress | None = None,
    ) -> SyncResult:
        """Mirror the local directory ``source`` into the storage directory ``uri``: what
        ``workdir.scan`` keeps of it (its .gitignore and .gliaignore honoured), at most
        ``max_bytes`` in all (else `WorkdirTooLarge`).

        One round trip (``syncStorageDirectory``) sends the list of files (path, size,
        modification time, executable bit); the server removes what ``source`` no longer
        holds and names the files it lacks or holds otherwise, which are then uploaded,
        ``concurrency`` at a time, with their times. A directory that did not change costs
        that one request. ``progress`` gets the bytes uploaded so far."""
        files = await asyncio.to_thread(scan, source, max_bytes=max_bytes)
        wire = [
            {"path": f.path, "size": f.size, "mtime": f.mtime, "executable": f.executable}
            for f in files
        ]
        data = await self._client.execute(
            documents.SYNC_STORAGE_DIRECTORY, {"input": {"uri": uri, "files": wire}}
        )
        plan = SyncPlan.model_validate(data["syncStorageDirectory"])
        by_path = {f.path: f for f in files}
        root = Path(source)
        base = parse_storage_uri(uri)
        sent = 0
        done: dict[str, int] = {}
        gate = asyncio.Semaphore(max(1, concurrency))

        async def send(path: str) -> None:
            nonlocal sent
            local = by_path[path]

            def advance(count: int) -> None:
                done[path] = count
                if progress is not None:
                    progress(sum(done.values()))

            async with gate:
                entry = await self.upload(
                    root / path,
                    base.child(*path.split("/")).uri,
                    progress=advance,
                    mtime=local.mtime,
                    executable=local.executable,
                )
            sent += entry.size

        # The first failure is raised as it is (not in an ExceptionGroup); the rest stop.
        tasks = [asyncio.create_task(send(path)) for path in plan.upload]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return SyncResult(
            files=len(files),
            uploaded=len(plan.upload),
            uploaded_bytes=sent,
            removed=plan.removed,
            total_bytes=sum(f.size for f in files),
        )

    async def download(
        self,
        uri: str,
        target: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
        resume: bool = False,
    ) -> int:
        """Write the file at ``uri`` to ``target`` (atomically: a partial file beside it,
        renamed at the end); ``resume`` continues that partial. Returns the size."""
        path = Path(target)
        partial = local_partial(path)
        offset = await asyncio.to_thread(_size_or_zero, partial) if resume else 0
        done = offset
        if progress is not None:
            progress(done)
        partial_file = _PartialFile(partial, offset)
        pending: builtins.list[bytes] = []
        pending_bytes = 0
        headers = {"Range": f"bytes={offset}-"} if offset else None
        # One batch is written in a thread while the next one arrives.
        writing: asyncio.Future[None] | None = None
        try:
            async for chunk in self._receive(
                self.url(uri), headers=headers, sized=partial_file.expect, bulk=True
            ):
                pending.append(chunk)
                pending_bytes += len(chunk)
                done += len(chunk)
                if pending_bytes >= BLOCK_BYTES:
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(asyncio.to_thread(partial_file.write, pending))
                    pending, pending_bytes = [], 0
                if progress is not None:
                    progress(done)
            if writing is not None:
                await writing
                writing = None
            # The rest, and the rename, in one go: a small file costs one thread hop.
            await asyncio.to_thread(partial_file.finish, pending, path)
        finally:
            if writing is not None:
                # The batch in flight lands (for a resume) before the file is closed.
                await asyncio.wait({writing})
            partial_file.close()
        return done

    async def upload_files(
        self,
        files: Sequence[tuple[str | os.PathLike[str], str]],
        uri: str,
        *,
        progress: Progress | None = None,
    ) -> ArchiveResult:
        """Send local files into the directory ``uri`` as one tar stream (fewer requests than
        one `upload` each: meant for many small files). ``files`` are (local path, path below
        ``uri``); each is checked (xxh3-128) and written atomically on its own; ``progress``
        gets the bytes sent so far."""
        pending = [(Path(local), name) for local, name in files]

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            index = 0
            while index < len(pending):
                piece, index, size = await asyncio.to_thread(_pack, pending, index)
                yield piece
                sent += size
                if progress is not None:
                    progress(sent)
            yield ARCHIVE_END

        response = await self._send(
            self.archive_url(uri),
            content=body(),
            headers={"Content-Type": "application/x-tar"},
            params=None,
        )
        return ArchiveResult.model_validate(response)

    async def download_files(
        self,
        uri: str,
        files: Sequence[tuple[str, str | os.PathLike[str]]],
        *,
        progress: Progress | None = None,
    ) -> int:
        """Fetch files below the directory ``uri`` as one tar stream: ``files`` are (path
        below ``uri``, local target). Each lands atomically (a partial file beside it,
        renamed once whole and checked), with its modification time on the cluster; a file
        the server did not send is NOT_FOUND at the end. Returns the bytes received."""
        from sdk.errors import NotFound

        wanted = {name: Path(target) for name, target in files}
        _, size = await self._unpack_archive(uri, {"paths": list(wanted)}, wanted, progress)
        if wanted:
            missing = sorted(wanted)
            raise NotFound(f"{len(missing)} file(s) were not sent, {missing[0]!r} first")
        return size

    async def download_tree(
        self,
        uri: str,
        target: str | os.PathLike[str],
        *,
        bulk: bool = False,
        progress: Progress | None = None,
    ) -> tuple[int, int]:
        """Fetch every file below the directory ``uri`` into the local directory ``target``
        (made when missing) as one tar stream that the server makes as it walks the tree:
        nothing is listed first. Each file lands as with `download_files`. ``bulk``: over
        the client of large transfers (a tree of big files). Returns the files and bytes
        received."""
        root = Path(target)
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        return await self._unpack_archive(uri, {"all": True}, root, progress, bulk=bulk)

    async def _unpack_archive(
        self,
        uri: str,
        asked: dict[str, Any],
        wanted: dict[str, Path] | Path,
        progress: Progress | None,
        *,
        bulk: bool = False,
    ) -> tuple[int, int]:
        """The archive route's answer to ``asked``, written by `_unpack` in a thread as it
        arrives: the files and bytes written."""
        received = _Received()
        extracting = asyncio.ensure_future(asyncio.to_thread(_unpack, received, wanted, progress))
        try:
            async for chunk in self._receive(
                self.archive_url(uri), headers=None, method="POST", json=asked, bulk=bulk
            ):
                if not await received.put(chunk, extracting):
                    break
            await received.put(None, extracting)
        except BaseException:
            received.fail()
            with contextlib.suppress(BaseException):
                await extracting
            raise
        return await extracting


SMALL_FILE_BYTES = 4 * CHUNK_BYTES


def _pack(files: builtins.list[tuple[Path, str]], index: int) -> tuple[bytes, int, int]:
    """A piece of the archive of ``files`` from ``index``, up to about `PIECE_BYTES`: the
    piece, the index after it, the file bytes in it."""
    piece = ArchivePiece()
    size = 0
    while index < len(files) and not piece.full:
        path, name = files[index]
        index += 1
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            data = _read_all(fd, info.st_size)
        finally:
            os.close(fd)
        piece.add_file(name, data, info.st_mtime)
        size += len(data)
    return piece.take(), index, size


def _read_all(fd: int, size: int) -> bytes:
    """A file's bytes, in one read when it holds ``size`` (more reads if it grew meanwhile)."""
    parts = [os.read(fd, max(size, 1))]
    while parts[-1]:
        parts.append(os.read(fd, BLOCK_BYTES))
    return b"".join(parts)


class _Received:
    """A blocking file object over chunks the event loop puts in a bounded queue."""

    def __init__(self) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._buffer = b""
        self._offset = 0
        self._ended = False
        self._failed = False
        self.blank = True

    async def put(self, chunk: bytes | None, reader: asyncio.Future[Any]) -> bool:
        """Hand a chunk (None: the end) to the reading thread; False when it stopped."""
        while True:
            try:
                self._queue.put_nowait(chunk)
                return True
            except queue.Full:
                if reader.done():
                    return False
                await asyncio.wait([reader], timeout=0.005)

    def fail(self) -> None:
        """Stop the reading thread at its next read, whatever the queue holds."""
        self._failed = True
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

    def read(self, size: int = -1) -> bytes:
        if self._offset >= len(self._buffer) and not self._ended:
            chunk = self._queue.get()
            if self._failed:
                raise OSError("the transfer broke")
            self._ended = chunk is None
            self._buffer, self._offset = chunk or b"", 0
            self.blank = self.blank and not self._buffer.strip(b"\0")
        end = len(self._buffer) if size < 0 else min(len(self._buffer), self._offset + size)
        data = self._buffer[self._offset : end]
        self._offset = end
        return data


def _unpack(
    received: _Received, wanted: dict[str, Path] | Path, progress: Progress | None
) -> tuple[int, int]:
    """Write each member of the archive to its target: from ``wanted`` (and take it out), or
    below the directory ``wanted`` by its name. Returns the files and bytes written."""
    files = size = 0
    try:
        archive = tarfile.open(fileobj=received, mode="r|", bufsize=256 * 1024)  # type: ignore[call-overload]
    except tarfile.ReadError:
        if received.blank:
            return 0, 0  # none of the files asked for was there: tar's end alone
        raise BadInput("the server's answer is not a tar archive") from None
    directories = OpenDirectories[str](_local_directory)
    recorded = ArchiveFiles()
    with archive, contextlib.closing(directories):
        for member in archive:
            parts = archive_member_path(member.name)  # no "..", no absolute name
            name = "/".join(parts)
            if isinstance(wanted, Path):
                target = os.path.join(wanted, *parts) if parts else None
            else:
                found = wanted.pop(name, None)
                target = None if found is None else os.fspath(found)
            if target is None or not member.isreg():
                raise BadInput(f"the server sent {member.name!r}, which was not asked for")
            checksum, mtime = recorded.of(archive, member)
            data = archive.extractfile(member)
            parent, base = os.path.split(target)
            directory = directories.get(parent, True)
            partial = partial_name(base)
            digest = checksum.new() if checksum is not None else None
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
            fd = os.open(partial, flags, 0o644, dir_fd=directory)
            try:
                while data is not None and (block := data.read(PIECE_BYTES)):
                    if digest is not None:
                        digest.update(block)
                    view = memoryview(block)
                    while view:
                        view = view[os.write(fd, view) :]
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
            if checksum is not None and digest is not None and digest.hexdigest() != checksum.hex:
                os.unlink(partial, dir_fd=directory)
                raise BadInput(f"{name!r} arrived damaged (checksum mismatch)")
            os.replace(partial, base, src_dir_fd=directory, dst_dir_fd=directory)
            files += 1
            size += member.size
            if progress is not None:
                progress(size)
    return files, size


def _local_directory(path: str, make: bool) -> int:
    """An fd of the local directory ``path`` a download writes into, made when missing."""
    if make:
        os.makedirs(path, exist_ok=True)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _read_small(path: Path) -> tuple[int, bytes | None, Checksum | None]:
    """The file's size, and for a small one its bytes and checksum."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > SMALL_FILE_BYTES:
            return size, None, None
        data = file.read()
    digest = new_hash()
    digest.update(data)
    return len(data), data, Checksum(FAST_CHECKSUM, digest.hexdigest())


class _PartialFile:
    """A download's partial file, opened at its first write, continued from ``offset``."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.position = offset
        self.fd: int | None = None
        self.expected = 0
        self.preallocated = False

    def expect(self, length: int) -> None:
        """The bytes still to come, set aside on disk when the file is opened."""
        self.expected = length

    def write(self, chunks: builtins.list[bytes]) -> None:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.ftruncate(self.fd, self.position)
            self.preallocated = preallocate(self.fd, self.position, self.expected)
        _write_at(self.fd, chunks, self.position)
        self.position += sum(len(chunk) for chunk in chunks)

    def finish(self, chunks: builtins.list[bytes], target: Path) -> None:
        self.write(chunks)
        self.close()
        os.replace(self.path, target)

    def close(self) -> None:
        if self.fd is not None:
            if self.preallocated:
                # What was set aside past the bytes written is given back (a broken
                # transfer's partial holds no more disk than it kept).
                os.ftruncate(self.fd, self.position)
            os.close(self.fd)
            self.fd = None


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _write_at(fd: int, chunks: builtins.list[bytes], position: int) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            written = os.pwrite(fd, view, position)
            position += written
            view = view[written:]


async def _file_chunks(
    path: Path, offset: int, size: int, progress: Progress | None
) -> AsyncIterator[bytes]:
    """The file's bytes from ``offset`` to ``size``, then their xxh3-128 digest (of the whole
    file: a resume hashes the bytes before ``offset`` first), each block hashed in the same
    worker-thread call that reads it."""
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_CLOEXEC)
    digest = new_hash(FAST_CHECKSUM)

    def read(position: int, length: int, send: bool) -> bytes:
        block = os.pread(fd, length, position)
        if len(block) < length:
            raise BadInput(f"{path} changed while it was being sent: it has fewer bytes now")
        digest.update(block)
        return block if send else b""

    try:
        position = 0
        while position < offset:  # the kept bytes of a resumed upload, hashed, not sent
            length = min(BLOCK_BYTES, offset - position)
            await asyncio.to_thread(read, position, length, False)
            position += length
        while position < size:
            chunk = await asyncio.to_thread(read, position, min(BLOCK_BYTES, size - position), True)
            position += len(chunk)
            yield chunk
            if progress is not None:
                progress(position)
        yield digest.hexdigest().encode("ascii")
    finally:
        os.close(fd)
