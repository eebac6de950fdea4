"""A cluster's file storage: ``client.storage``.

Paths are storage URIs, ``storage://CLUSTER/ORG/PROJECT/path``; `resolve_uri` turns the
CLI's short forms (``storage:data/x`` in the context's project, ``storage:/ORG/PROJECT/x``)
into one. Metadata goes through GraphQL; bytes through ``/api/storage/…``:

    async with GliaClient(url, token) as client:
        await client.storage.upload("model.pt", "storage://default/acme/vision/model.pt")
        await client.storage.download("storage://default/acme/vision/model.pt", "copy.pt")

Uploads are checked end to end (SHA-256 of the whole file) and, with ``resume``, continue an
upload that was cut short from the bytes the server kept. Downloads write a partial file
beside their target and rename it at the end; with ``resume`` they continue it.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from glia.errors import BadInput
from glia.pages import MAX_PAGE_SIZE
from glia.storage import (
    SCHEME,
    DiskUsage,
    FileStatus,
    GlobResult,
    StorageLocation,
    StorageUsage,
    SyncPlan,
    parse_storage_uri,
    partial_name,
    split_path,
)
from sdk import documents
from sdk.resource import Resource
from sdk.workdir import DEFAULT_MAX_BYTES, scan

CHUNK_BYTES = 1024 * 1024
# Files a sync uploads at a time.
SYNC_CONCURRENCY = 8
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
        raise BadInput("no cluster chosen: set one with glia config set-cluster")
    if rest.startswith("/"):
        names = split_path(rest)
        if len(names) < 2:
            raise BadInput(f"{text!r} names no project: expected storage:/ORG/PROJECT/path")
        return StorageLocation(cluster, names[0], names[1], names[2:]).uri
    if org is None or project is None:
        raise BadInput("no project chosen: give storage:/ORG/PROJECT/path")
    return StorageLocation(cluster, org, project, split_path(rest)).uri


def sha256_of(path: Path) -> str:
    """The file's SHA-256, hex (blocking: call it in a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


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

    def _http(self) -> httpx.AsyncClient:
        http = self._client._http
        if http is None:
            raise RuntimeError("use GliaClient as 'async with GliaClient(...) as client'")
        return http

    async def _send(
        self,
        url: str,
        *,
        content: bytes | AsyncIterator[bytes],
        headers: dict[str, str],
        params: dict[str, str] | None,
    ) -> Any:
        from sdk.client import _byte_route_error, _http_errors

        with _http_errors(self._client.url):
            response = await self._http().put(
                url,
                content=content,
                headers={**self._client._headers(), **headers},
                params=params,
            )
        if response.status_code >= 400:
            raise _byte_route_error(response.status_code, response.content)
        return response.json()

    async def _receive(self, url: str, *, headers: dict[str, str] | None) -> AsyncGenerator[bytes]:
        from sdk.client import _byte_route_error, _http_errors

        with _http_errors(self._client.url):
            async with self._http().stream(
                "GET", url, headers={**self._client._headers(), **(headers or {})}
            ) as response:
                if response.status_code >= 400:
                    raise _byte_route_error(response.status_code, await response.aread())
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
        # A small file is read and hashed in one go, and sent from memory.
        size, data, checksum = await asyncio.to_thread(_read_small, path)
        if checksum is None:
            checksum = await asyncio.to_thread(sha256_of, path)
        offset = await self.upload_offset(uri) if resume else 0
        if offset > size:
            offset = 0
        if progress is not None:
            progress(offset)
        content = data[offset:] if data is not None else _file_chunks(path, offset, progress)
        response = await self._send(
            self.url(uri),
            content=content,
            headers={
                "X-Glia-Sha256": checksum,
                "Content-Length": str(size - offset),
                "Content-Type": "application/octet-stream",
                **({"X-Glia-Mtime": repr(mtime)} if mtime is not None else {}),
                **({"X-Glia-Executable": "1"} if executable else {}),
            },
            params={"offset": str(offset)} if offset else None,
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
        try:
            async for chunk in self._receive(self.url(uri), headers=headers):
                pending.append(chunk)
                pending_bytes += len(chunk)
                done += len(chunk)
                if pending_bytes >= 4 * CHUNK_BYTES:
                    await asyncio.to_thread(partial_file.write, pending)
                    pending, pending_bytes = [], 0
                if progress is not None:
                    progress(done)
            # The rest, and the rename, in one go: a small file costs one thread hop.
            await asyncio.to_thread(partial_file.finish, pending, path)
        finally:
            partial_file.close()
        return done


SMALL_FILE_BYTES = 4 * CHUNK_BYTES


def _read_small(path: Path) -> tuple[int, bytes | None, str | None]:
    """The file's size, and for a small one its bytes and SHA-256 (hex)."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > SMALL_FILE_BYTES:
            return size, None, None
        data = file.read()
    return len(data), data, hashlib.sha256(data).hexdigest()


class _PartialFile:
    """A download's partial file, opened at its first write, continued from ``offset``."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.position = offset
        self.fd: int | None = None

    def write(self, chunks: builtins.list[bytes]) -> None:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.ftruncate(self.fd, self.position)
        _write_at(self.fd, chunks, self.position)
        self.position += sum(len(chunk) for chunk in chunks)

    def finish(self, chunks: builtins.list[bytes], target: Path) -> None:
        self.write(chunks)
        self.close()
        os.replace(self.path, target)

    def close(self) -> None:
        if self.fd is not None:
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


async def _file_chunks(path: Path, offset: int, progress: Progress | None) -> AsyncIterator[bytes]:
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        position = offset
        while True:
            chunk = await asyncio.to_thread(os.pread, fd, 4 * CHUNK_BYTES, position)
            if not chunk:
                return
            position += len(chunk)
            yield chunk
            if progress is not None:
                progress(position)
    finally:
        os.close(fd)
