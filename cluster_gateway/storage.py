"""A cluster's file storage, behind a protocol like the `Gateway`'s.

`Storage` is network-ready: every method is async and takes or returns kernel values
(`glia.storage`), and bytes travel as async iterators of bounded chunks, so a remote
implementation (``glia gateway serve``) fits unchanged. `LocalStorage` keeps each project's
tree in a directory, ``<root>/ORG/PROJECT/…``: the embedded default.

Every path is checked before use: `glia.storage` refused hostile names already; here each
path is resolved (symlinks followed) and must stay inside the project's tree, the last name
of a file opened for writing is opened with ``O_NOFOLLOW``, and what is created is private
to the server's user (directories 0700, files 0600). All disk work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import hashlib
import heapq
import os
import shutil
import stat
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from glia.errors import BadInput, Conflict, NotFound, PayloadTooLarge
from glia.storage import (
    DiskUsage,
    FileStatus,
    FileType,
    GlobResult,
    StorageLocation,
    StorageUsage,
    SyncFile,
    SyncPlan,
    check_name,
    is_partial_name,
    partial_name,
    same_mtime,
    split_path,
)

CHUNK_BYTES = 1024 * 1024
# Writes are gathered to this size before a worker thread writes them.
WRITE_BUFFER_BYTES = 4 * 1024 * 1024


class Storage(Protocol):
    """One cluster's file storage. Paths are `StorageLocation`s; their cluster is this one."""

    async def stat(self, location: StorageLocation, *, follow: bool = False) -> FileStatus:
        """NOT_FOUND when nothing is there; ``follow``: what a symlink points to."""
        ...

    async def list(
        self, location: StorageLocation, *, after: str | None, limit: int
    ) -> tuple[builtins.list[FileStatus], bool, int]:
        """A directory's entries by name: the first ``limit`` after the name ``after``,
        whether more follow, and how many it holds in all. Upload partials are left out."""
        ...

    async def mkdir(self, location: StorageLocation, *, parents: bool = True) -> FileStatus: ...

    async def remove(self, location: StorageLocation, *, recursive: bool = False) -> int:
        """Remove a file, a link or (``recursive``, or empty) a directory; how many entries
        went."""
        ...

    async def move(self, source: StorageLocation, target: StorageLocation) -> FileStatus: ...

    async def copy(self, source: StorageLocation, target: StorageLocation) -> FileStatus: ...

    async def glob(self, location: StorageLocation, pattern: str, *, limit: int) -> GlobResult:
        """The entries under ``location`` whose path relative to it matches ``pattern``
        (``*``, ``?``, ``[…]`` within a name, ``**`` across directories)."""
        ...

    async def usage(self, location: StorageLocation, *, time_limit_s: float) -> StorageUsage: ...

    async def disk(self, cluster: str) -> DiskUsage: ...

    def read(
        self, location: StorageLocation, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """The file's bytes from ``offset``, in chunks of at most `CHUNK_BYTES`."""
        ...

    async def partial_size(self, location: StorageLocation) -> int:
        """How many bytes an interrupted upload to ``location`` kept (0: none)."""
        ...

    async def write(
        self,
        location: StorageLocation,
        chunks: AsyncIterator[bytes],
        *,
        offset: int = 0,
        sha256: str | None = None,
        max_bytes: int | None = None,
        mtime: float | None = None,
        executable: bool = False,
    ) -> FileStatus:
        """Write a file atomically: the bytes go to a partial file beside it, renamed over
        it once all arrived and ``sha256`` (hex, of the whole file) matches. ``offset`` > 0
        continues the kept partial of an interrupted upload at that byte (CONFLICT when it
        holds fewer); a failed transfer keeps the partial, a wrong checksum removes it.
        Missing parent directories are made. ``mtime`` (seconds since the epoch): the file's
        modification time instead of now; ``executable``: its owner may execute it."""
        ...

    async def sync_plan(self, location: StorageLocation, files: Sequence[SyncFile]) -> SyncPlan:
        """Make the directory at ``location`` ready to mirror ``files`` (paths relative to
        it): make it, remove every entry under it that ``files`` does not name (directories
        that only held such entries too), and say which of ``files`` it lacks or holds with
        another size, modification time or executable bit."""
        ...


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _type(mode: int) -> FileType:
    if stat.S_ISREG(mode):
        return FileType.FILE
    if stat.S_ISDIR(mode):
        return FileType.DIRECTORY
    if stat.S_ISLNK(mode):
        return FileType.SYMLINK
    return FileType.OTHER


def _status(location: StorageLocation, info: os.stat_result) -> FileStatus:
    kind = _type(info.st_mode)
    return FileStatus(
        uri=location.uri,
        path=location.path_text,
        name=location.name,
        type=kind,
        size=info.st_size if kind is not FileType.DIRECTORY else 0,
        modified_at=_utc(info.st_mtime),
    )


def _changed() -> BadInput:
    return BadInput(
        "a directory on the path was replaced by a link while it was used",
        fields={"path": "changed while in use"},
    )


def _not_found(location: StorageLocation) -> NotFound:
    return NotFound(f"{location.uri} does not exist")


class LocalStorage:
    """`Storage` in a local directory: ``<root>/ORG/PROJECT/…``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def open(self) -> None:
        await asyncio.to_thread(self._make_root)

    def _make_root(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    @property
    def _root(self) -> str:
        return os.path.realpath(self.root)

    # -- paths --

    def _tree(self, location: StorageLocation) -> str:
        check_name(location.org)
        check_name(location.project)
        return os.path.join(self._root, location.org, location.project)

    def _inside(self, path: str, tree: str) -> bool:
        return path == tree or path.startswith(tree + os.sep)

    def _path(self, location: StorageLocation, *, follow_last: bool = True) -> str:
        """The host path of ``location``, its symlinks resolved (the last one too, with
        ``follow_last``): BAD_USER_INPUT when that leaves the project's tree."""
        tree = self._tree(location)
        for name in location.path:
            check_name(name)
        joined = os.path.join(tree, *location.path)
        if follow_last or not location.path:
            resolved = os.path.realpath(joined)
        else:
            resolved = os.path.join(os.path.realpath(os.path.dirname(joined)), location.path[-1])
        if not self._inside(resolved, tree):
            raise BadInput(
                f"{location.uri} leads outside the project's storage (a symlink?)",
                fields={"path": "outside the project's tree"},
            )
        return resolved

    def _ensure_tree(self, location: StorageLocation) -> str:
        tree = self._tree(location)
        os.makedirs(tree, mode=0o700, exist_ok=True)
        return tree

    # -- metadata --

    async def stat(self, location: StorageLocation, *, follow: bool = False) -> FileStatus:
        return await asyncio.to_thread(self._stat, location, follow)

    def _stat(self, location: StorageLocation, follow: bool = False) -> FileStatus:
        if not location.path:
            self._ensure_tree(location)
        try:
            return _status(location, os.lstat(self._path(location, follow_last=follow)))
        except FileNotFoundError:
            raise _not_found(location) from None

    async def list(
        self, location: StorageLocation, *, after: str | None, limit: int
    ) -> tuple[builtins.list[FileStatus], bool, int]:
        return await asyncio.to_thread(self._list, location, after, limit)

    def _list(
        self, location: StorageLocation, after: str | None, limit: int
    ) -> tuple[builtins.list[FileStatus], bool, int]:
        if not location.path:
            self._ensure_tree(location)
        path = self._path(location)
        try:
            with os.scandir(path) as entries:
                every = [entry.name for entry in entries if not is_partial_name(entry.name)]
        except FileNotFoundError:
            raise _not_found(location) from None
        except NotADirectoryError:
            raise BadInput(f"{location.uri} is not a directory") from None
        names = every if after is None else [name for name in every if name > after]
        first = heapq.nsmallest(limit + 1, names)
        found: builtins.list[FileStatus] = []
        for name in first[:limit]:
            try:
                found.append(_status(location.child(name), os.lstat(os.path.join(path, name))))
            except FileNotFoundError:
                continue  # removed meanwhile
        return found, len(first) > limit, len(every)

    async def mkdir(self, location: StorageLocation, *, parents: bool = True) -> FileStatus:
        return await asyncio.to_thread(self._mkdir, location, parents)

    def _mkdir(self, location: StorageLocation, parents: bool) -> FileStatus:
        self._ensure_tree(location)
        current = location.parent if location.path else location
        # Each level is checked (resolved inside the tree) before the next is made under it.
        for depth in range(1, len(location.path) + 1):
            current = StorageLocation(
                location.cluster, location.org, location.project, location.path[:depth]
            )
            path = self._path(current)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                if not os.path.isdir(path):
                    raise Conflict(f"{current.uri} exists and is not a directory") from None
                if depth == len(location.path) and not parents:
                    raise Conflict(f"{current.uri} exists already") from None
            except FileNotFoundError:
                raise _not_found(current.parent) from None
            if not parents and depth < len(location.path) and not os.path.isdir(path):
                raise _not_found(current)
        return self._stat(location)

    async def remove(self, location: StorageLocation, *, recursive: bool = False) -> int:
        return await asyncio.to_thread(self._remove, location, recursive)

    def _remove(self, location: StorageLocation, recursive: bool) -> int:
        if not location.path:
            raise BadInput("the project's tree itself cannot be removed", fields={"path": "root"})
        path = self._path(location, follow_last=False)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise _not_found(location) from None
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(path)
            return 1
        if not recursive:
            try:
                os.rmdir(path)
            except OSError as exc:
                if exc.errno == errno.ENOTEMPTY:
                    raise Conflict(
                        f"{location.uri} is a directory that is not empty: remove it recursively"
                    ) from None
                raise
            return 1
        count = 1 + sum(len(dirs) + len(files) for _, dirs, files in os.walk(path))
        shutil.rmtree(path)
        return count

    def _pair(self, source: StorageLocation, target: StorageLocation) -> tuple[str, str]:
        if not source.path or not target.path:
            raise BadInput("the project's tree itself cannot be moved or copied onto")
        src = self._path(source, follow_last=False)
        dst = self._path(target, follow_last=False)
        if not os.path.lexists(src):
            raise _not_found(source)
        if os.path.isdir(dst) and not os.path.islink(dst):
            dst = os.path.join(self._path(target), source.path[-1])
            target = target.child(source.path[-1])
        if dst == src or dst.startswith(src + os.sep):
            raise BadInput(f"{target.uri} is {source.uri} or inside it")
        if not os.path.isdir(os.path.dirname(dst)):
            raise _not_found(target.parent)
        return src, dst

    def _target_of(self, target: StorageLocation, source: StorageLocation) -> StorageLocation:
        dst = self._path(target, follow_last=False)
        if os.path.isdir(dst) and not os.path.islink(dst):
            return target.child(source.path[-1])
        return target

    async def move(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        return await asyncio.to_thread(self._move, source, target)

    def _move(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        self._ensure_tree(target)
        final = self._target_of(target, source)
        src, dst = self._pair(source, target)
        if os.path.isdir(dst) and not os.path.islink(dst):
            raise Conflict(f"{final.uri} is a directory already")
        os.replace(src, dst)
        return self._stat(final)

    async def copy(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        return await asyncio.to_thread(self._copy, source, target)

    def _copy(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        self._ensure_tree(target)
        final = self._target_of(target, source)
        src, dst = self._pair(source, target)
        if os.path.lexists(dst) and os.path.isdir(dst):
            raise Conflict(f"{final.uri} exists already")
        if os.path.isdir(src) and not os.path.islink(src):
            # Links are copied as links: one that points outside stays unreadable here.
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
        return self._stat(final)

    async def glob(self, location: StorageLocation, pattern: str, *, limit: int) -> GlobResult:
        return await asyncio.to_thread(self._glob, location, pattern, limit)

    def _glob(self, location: StorageLocation, pattern: str, limit: int) -> GlobResult:
        parts = split_path(pattern, "pattern")
        if not parts:
            raise BadInput("the pattern is empty", fields={"pattern": "empty"})
        if not location.path:
            self._ensure_tree(location)
        tree = self._tree(location)
        base = self._path(location)
        found: list[FileStatus] = []
        truncated = False
        # Matches are taken as the walk finds them, up to the limit (sorting them all first
        # would read a whole huge tree), then sorted.
        for match in Path(base).glob("/".join(parts)):
            relative = match.relative_to(base).parts
            if any(is_partial_name(name) for name in relative):
                continue
            if not self._inside(os.path.realpath(match.parent), tree):
                continue
            if len(found) == limit:
                truncated = True
                break
            try:
                found.append(_status(location.child(*relative), os.lstat(match)))
            except FileNotFoundError:
                continue
        found.sort(key=lambda entry: entry.path)
        return GlobResult(matches=tuple(found), truncated=truncated)

    async def usage(self, location: StorageLocation, *, time_limit_s: float) -> StorageUsage:
        return await asyncio.to_thread(self._usage, location, time_limit_s)

    def _usage(self, location: StorageLocation, time_limit_s: float) -> StorageUsage:
        if not location.path:
            self._ensure_tree(location)
        path = self._path(location)
        if not os.path.exists(path):
            raise _not_found(location)
        deadline = time.monotonic() + time_limit_s
        size = files = directories = 0
        complete = True
        if not os.path.isdir(path):
            return StorageUsage(
                uri=location.uri, size=os.stat(path).st_size, files=1, directories=0, complete=True
            )
        pending = [path]
        while pending:
            if time.monotonic() > deadline:
                complete = False
                break
            try:
                with os.scandir(pending.pop()) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            directories += 1
                            pending.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            files += 1
                            size += entry.stat(follow_symlinks=False).st_size
            except (FileNotFoundError, NotADirectoryError):
                continue
        return StorageUsage(
            uri=location.uri, size=size, files=files, directories=directories, complete=complete
        )

    async def disk(self, cluster: str) -> DiskUsage:
        return await asyncio.to_thread(self._disk, cluster)

    def _disk(self, cluster: str) -> DiskUsage:
        info = os.statvfs(self._root)
        total = info.f_blocks * info.f_frsize
        free = info.f_bavail * info.f_frsize
        return DiskUsage(
            cluster=cluster, total=total, used=total - info.f_bfree * info.f_frsize, free=free
        )

    # -- workdirs --

    async def sync_plan(self, location: StorageLocation, files: Sequence[SyncFile]) -> SyncPlan:
        return await asyncio.to_thread(self._sync_plan, location, files)

    def _sync_plan(self, location: StorageLocation, files: Sequence[SyncFile]) -> SyncPlan:
        wanted: dict[str, SyncFile] = {}
        directories: set[str] = set()
        for file in files:
            parts = split_path(file.path, "files")
            if "/".join(parts) != file.path:
                raise BadInput(
                    f"{file.path[:200]!r}: a sync names files by relative paths (`src/a.py`)",
                    fields={"files": "not a relative path"},
                )
            wanted[file.path] = file
            directories.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
        clash = directories.intersection(wanted)
        if clash:
            raise BadInput(
                f"{sorted(clash)[0]!r} is named both as a file and as a directory",
                fields={"files": "a path is a file and a directory"},
            )
        if not location.path:
            raise BadInput("a sync needs a directory of its own", fields={"uri": "root"})
        self._mkdir(location, True)
        root = self._path(location)
        removed = 0
        upload: set[str] = set(wanted)
        # Not following links: a link is an entry like a file (removed, or replaced by one).
        for directory, dirs, names in os.walk(root):
            prefix = os.path.relpath(directory, root)
            prefix = "" if prefix == "." else prefix + "/"
            for name in list(dirs):
                relative = prefix + name
                path = os.path.join(directory, name)
                if relative in directories and not os.path.islink(path):
                    continue
                dirs.remove(name)
                removed += _remove_entry(path)
            for name in names:
                relative = prefix + name
                path = os.path.join(directory, name)
                local = wanted.get(relative)
                if local is None:
                    if not is_partial_name(name):
                        removed += _remove_entry(path)
                    continue
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode):
                    removed += _remove_entry(path)
                elif (
                    info.st_size == local.size
                    and same_mtime(info.st_mtime, local.mtime)
                    and bool(info.st_mode & stat.S_IXUSR) == local.executable
                ):
                    upload.discard(relative)
        return SyncPlan(upload=tuple(path for path in wanted if path in upload), removed=removed)

    def host_directory(self, location: StorageLocation) -> str:
        """The host path of the directory at ``location`` (links resolved, inside the
        project's tree): what a local runtime binds as a job's working directory.
        NOT_FOUND when it is missing, BAD_USER_INPUT when it is not a directory."""
        path = self._path(location)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise _not_found(location) from None
        if not stat.S_ISDIR(info.st_mode):
            raise BadInput(f"{location.uri} is not a directory", fields={"workdir": "a file"})
        return path

    # -- bytes --

    async def read(
        self, location: StorageLocation, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        fd = await asyncio.to_thread(self._open_for_reading, location)
        try:
            remaining = length
            position = offset
            while remaining is None or remaining > 0:
                size = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
                chunk = await asyncio.to_thread(os.pread, fd, size, position)
                if not chunk:
                    return
                position += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            os.close(fd)

    def _open_for_reading(self, location: StorageLocation) -> int:
        path = self._path(location)
        directory = self._walk(os.path.dirname(path), location)
        try:
            fd = os.open(
                os.path.basename(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory
            )
        except FileNotFoundError:
            raise _not_found(location) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _changed() from None
            raise
        finally:
            os.close(directory)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise BadInput(f"{location.uri} is not a file")
        return fd

    def _walk(self, directory: str, location: StorageLocation) -> int:
        """An fd of ``directory`` (a resolved path inside the storage root), reached a name at
        a time with ``O_NOFOLLOW``: a symlink swapped in after the path was checked (by a job
        writing in the tree, say) is refused instead of followed."""
        relative = os.path.relpath(directory, self._root)
        fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in relative.split(os.sep) if relative != "." else ():
                inner = os.open(
                    name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
                os.close(fd)
                fd = inner
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _changed() from None
            if exc.errno == errno.ENOENT:
                raise _not_found(location.parent) from None
            raise
        return fd

    async def partial_size(self, location: StorageLocation) -> int:
        return await asyncio.to_thread(self._partial_size, location)

    def _partial_size(self, location: StorageLocation) -> int:
        if not location.path:
            return 0
        try:
            return os.lstat(self._partial_path(location)).st_size
        except (FileNotFoundError, NotFound):
            return 0

    def _partial_path(self, location: StorageLocation) -> str:
        directory = self._path(location.parent)
        if not os.path.isdir(directory):
            raise _not_found(location.parent)
        return os.path.join(directory, partial_name(location.path[-1]))

    async def write(
        self,
        location: StorageLocation,
        chunks: AsyncIterator[bytes],
        *,
        offset: int = 0,
        sha256: str | None = None,
        max_bytes: int | None = None,
        mtime: float | None = None,
        executable: bool = False,
    ) -> FileStatus:
        meta = _Meta(mtime, executable)
        if not location.path:
            raise BadInput("an upload needs a file name", fields={"path": "no file name"})
        # Up to WRITE_BUFFER_BYTES are gathered first: a small file is then written, checked
        # and renamed in one worker-thread call (bench/storage.py: small files are most of
        # what `cp -r` sends); a bigger one is streamed.
        iterator = aiter(chunks)
        gathered: builtins.list[bytes] = []
        size = 0
        ended = False
        try:
            while size < WRITE_BUFFER_BYTES:
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    ended = True
                    break
                gathered.append(chunk)
                size += len(chunk)
                if max_bytes is not None and offset + size > max_bytes:
                    await asyncio.to_thread(self._drop_partial, location)
                    raise PayloadTooLarge(f"a file may hold at most {max_bytes} bytes")
        except PayloadTooLarge:
            raise
        except BaseException:
            # The transfer broke: keep what came, for a resume (here, not in a thread, so
            # that a cancellation cannot lose it).
            fd, upload, digest = self._open_partial(location, offset)
            try:
                _write_all(fd, digest, gathered)
            finally:
                os.close(fd)
                upload.close()
            raise
        if ended:
            return await asyncio.to_thread(
                self._write_whole, location, offset, gathered, sha256, meta
            )
        return await self._stream(location, iterator, gathered, offset, sha256, max_bytes, meta)

    def _write_whole(
        self,
        location: StorageLocation,
        offset: int,
        chunks: builtins.list[bytes],
        sha256: str | None,
        meta: _Meta,
    ) -> FileStatus:
        fd, upload, digest = self._open_partial(location, offset)
        try:
            try:
                _write_all(fd, digest, chunks)
            finally:
                os.close(fd)
            return self._finish(location, upload, digest, sha256, meta)
        finally:
            upload.close()

    def _drop_partial(self, location: StorageLocation) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._partial_path(location))

    async def _stream(
        self,
        location: StorageLocation,
        chunks: AsyncIterator[bytes],
        first: builtins.list[bytes],
        offset: int,
        sha256: str | None,
        max_bytes: int | None,
        meta: _Meta,
    ) -> FileStatus:
        fd, upload, digest = await asyncio.to_thread(self._open_partial, location, offset)
        try:
            return await self._stream_into(
                location, fd, upload, digest, chunks, first, offset, sha256, max_bytes, meta
            )
        finally:
            upload.close()

    async def _stream_into(
        self,
        location: StorageLocation,
        fd: int,
        upload: _Upload,
        digest: _Hash,
        chunks: AsyncIterator[bytes],
        first: builtins.list[bytes],
        offset: int,
        sha256: str | None,
        max_bytes: int | None,
        meta: _Meta,
    ) -> FileStatus:
        written = offset + sum(len(chunk) for chunk in first)
        pending: builtins.list[bytes] = []
        pending_bytes = 0
        # One batch is hashed and written in a thread while the next one arrives.
        writing: asyncio.Task[None] | None = asyncio.create_task(
            asyncio.to_thread(_write_all, fd, digest, first)
        )
        try:
            async for chunk in chunks:
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    if writing is not None:
                        await writing
                    await asyncio.to_thread(upload.discard)
                    raise PayloadTooLarge(f"a file may hold at most {max_bytes} bytes")
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= WRITE_BUFFER_BYTES:
                    if writing is not None:
                        await writing
                    writing = asyncio.create_task(
                        asyncio.to_thread(_write_all, fd, digest, pending)
                    )
                    pending, pending_bytes = [], 0
            if writing is not None:
                await writing
                writing = None
            await asyncio.to_thread(_write_all, fd, digest, pending)
        except PayloadTooLarge:
            raise
        except BaseException:
            # The transfer broke (or was cancelled): keep every byte that came, for a resume,
            # after the batch in flight. The rest is written here, not in a thread, so that a
            # cancellation cannot lose it.
            if writing is not None:
                await asyncio.shield(writing)
            _write_all(fd, digest, pending)
            raise
        finally:
            os.close(fd)
        return await asyncio.to_thread(self._finish, location, upload, digest, sha256, meta)

    def _open_partial(self, location: StorageLocation, offset: int) -> tuple[int, _Upload, _Hash]:
        """The partial file of an upload, opened through its directory's fd (`_walk`), with
        that directory, which the rename at the end goes through too."""
        self._ensure_tree(location)
        if not os.path.isdir(self._path(location.parent)):
            # An upload makes the directories it goes into, as mkdir -p (each level checked).
            self._mkdir(location.parent, True)
        upload = _Upload(
            self._walk(self._path(location.parent), location),
            partial_name(location.path[-1]),
            location.path[-1],
        )
        try:
            if upload.target_is_directory():
                raise Conflict(f"{location.uri} is a directory")
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(upload.partial, flags, 0o600, dir_fd=upload.directory)
        except BaseException:
            upload.close()
            raise
        fd_read = os.open(
            upload.partial, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=upload.directory
        )
        try:
            kept = os.fstat(fd).st_size
            if offset > kept:
                raise Conflict(
                    f"the upload can continue at byte {kept} at most, not {offset}",
                    details={"partialSize": kept},
                )
            os.ftruncate(fd, offset)
            digest = hashlib.sha256()
            # The checksum covers the whole file: the kept bytes are read again.
            position = 0
            while position < offset:
                block = os.pread(fd_read, min(CHUNK_BYTES, offset - position), position)
                if not block:
                    break
                digest.update(block)
                position += len(block)
            os.lseek(fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            upload.close()
            raise
        finally:
            os.close(fd_read)
        return fd, upload, digest

    def _finish(
        self,
        location: StorageLocation,
        upload: _Upload,
        digest: _Hash,
        sha256: str | None,
        meta: _Meta,
    ) -> FileStatus:
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            upload.discard()
            raise BadInput(
                f"the upload of {location.uri} does not match its checksum: it was discarded",
                fields={"sha256": "checksum mismatch"},
            )
        if upload.target_is_directory():
            raise Conflict(f"{location.uri} is a directory")
        upload.apply(meta)
        upload.rename()
        return self._stat(location)


@dataclass(frozen=True)
class _Meta:
    """What an upload gives its file beside its bytes (a workdir sync keeps them)."""

    mtime: float | None = None
    executable: bool = False


@dataclass
class _Upload:
    """Where an upload goes: an fd of its directory, and names in it."""

    directory: int
    partial: str
    name: str

    def target_is_directory(self) -> bool:
        try:
            info = os.stat(self.name, dir_fd=self.directory, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return stat.S_ISDIR(info.st_mode)

    def apply(self, meta: _Meta) -> None:
        """Give the partial its mode and time before it becomes the file."""
        if meta.executable:
            os.chmod(self.partial, 0o700, dir_fd=self.directory, follow_symlinks=False)
        if meta.mtime is not None:
            ns = int(meta.mtime * 1_000_000_000)
            os.utime(self.partial, ns=(ns, ns), dir_fd=self.directory, follow_symlinks=False)

    def rename(self) -> None:
        os.replace(self.partial, self.name, src_dir_fd=self.directory, dst_dir_fd=self.directory)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.partial, dir_fd=self.directory)

    def close(self) -> None:
        if self.directory >= 0:
            os.close(self.directory)
            self.directory = -1


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def _remove_entry(path: str) -> int:
    """Remove a file, link or tree (links not followed); how many entries went."""
    if os.path.isdir(path) and not os.path.islink(path):
        count = 1 + sum(len(dirs) + len(files) for _, dirs, files in os.walk(path))
        shutil.rmtree(path)
        return count
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return 1


def _write_all(fd: int, digest: _Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        digest.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]
