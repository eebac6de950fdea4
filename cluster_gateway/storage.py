"""A cluster's file storage, behind a protocol like the `Gateway`'s.

`Storage` is network-ready: every method is async and takes or returns kernel values
(`glia.storage`), and bytes travel as async iterators of bounded chunks, so a remote
implementation (``glia gateway serve``) fits unchanged. `LocalStorage` keeps each project's
tree in a directory, ``<root>/ORG/PROJECT/…``: the embedded default.

Every path is checked before use: `glia.storage` refused hostile names already; here each
path is walked a name at a time under directory fds (`cluster_gateway.tree_fd`), symlinks
resolved by hand and kept inside the project's tree, so a directory swapped for a link
between a check and a use is refused, never followed. What is created is private to the
server's user (directories 0700, files 0600). All disk work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import heapq
import os
import shutil
import stat
import time
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cluster_gateway import storage_archive, tree_fd
from cluster_gateway.storage_upload import FileMeta, Upload
from glia.errors import BadInput, Conflict, NotFound, PayloadTooLarge
from glia.storage import (
    ArchiveResult,
    DeclaredChecksum,
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
# A download reads and sends blocks of this size (fewer thread hops and sends per byte).
READ_BYTES = 4 * CHUNK_BYTES
ARCHIVE_THREADS = 8
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
        """The file's bytes from ``offset``, in chunks of at most `READ_BYTES`."""
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
        checksum: DeclaredChecksum | None = None,
        max_bytes: int | None = None,
        mtime: float | None = None,
        executable: bool = False,
        length: int | None = None,
    ) -> FileStatus:
        """Write a file atomically: the bytes go to a partial file beside it, renamed over
        it once all arrived and ``checksum`` (of the whole file) matches. ``offset`` > 0
        continues the kept partial of an interrupted upload at that byte (CONFLICT when it
        holds fewer); a failed transfer keeps the partial, a wrong checksum removes it.
        Missing parent directories are made. ``mtime`` (seconds since the epoch): the file's
        modification time instead of now; ``executable``: its owner may execute it;
        ``length``: the bytes the upload declares, set aside on disk before they arrive."""
        ...

    async def sync_plan(self, location: StorageLocation, files: Sequence[SyncFile]) -> SyncPlan:
        """Make the directory at ``location`` ready to mirror ``files`` (paths relative to
        it): make it, remove every entry under it that ``files`` does not name (directories
        that only held such entries too), and say which of ``files`` it lacks or holds with
        another size, modification time or executable bit."""
        ...

    async def write_archive(
        self, location: StorageLocation, chunks: AsyncIterator[bytes], *, max_bytes: int | None
    ) -> ArchiveResult:
        """Write each member of a tar stream below the directory ``location`` (made when
        missing), each file as `write` would (checked, atomic); links and special files are
        BAD_USER_INPUT. Files written before a failure stay."""
        ...

    async def read_archive(
        self, location: StorageLocation, paths: Sequence[tuple[str, ...]] | None
    ) -> AsyncIterator[bytes]:
        """Once the directory ``location`` is found: a tar stream of the files at ``paths``
        below it, each with its checksum; a path that is not a file is left out. ``None``:
        every file below it, at any depth (links, partial uploads and special files are
        left out)."""
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


def _named(found: tree_fd.Resolved, location: StorageLocation) -> str:
    """The name of the entry ``found`` (a link that leads to the tree itself has none)."""
    if found.name is None:
        raise BadInput(
            f"{location.uri} is the project's tree itself", fields={"path": "the tree itself"}
        )
    return found.name


def _close_after(read: asyncio.Future[bytes], fd: int) -> None:
    if not read.cancelled():
        read.exception()  # retrieved: the stream that wanted it is gone
    os.close(fd)


def _not_found(location: StorageLocation) -> NotFound:
    return NotFound(f"{location.uri} does not exist")


class LocalStorage:
    """`Storage` in a local directory: ``<root>/ORG/PROJECT/…``.

    Every operation reaches its path through directory fds (`cluster_gateway.tree_fd`):
    a symlink inside the tree is followed, one that leads out of it is refused, and a
    directory swapped for a link while an operation runs makes it fail, never follow."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Archive uploads read their tar stream here, not in the default pool (see
        # `cluster_gateway.storage_archive`): at most this many at once, the others wait.
        self._archives = ThreadPoolExecutor(ARCHIVE_THREADS, thread_name_prefix="storage-archive")

    async def open(self) -> None:
        await asyncio.to_thread(self._make_root)

    def _make_root(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    @property
    def _root(self) -> str:
        return os.path.realpath(self.root)

    # -- paths --

    @contextlib.contextmanager
    def _tree(self, location: StorageLocation, *, create: bool = True) -> Iterator[_Tree]:
        """The fd of the project's tree (made when missing, with ``create``)."""
        check_name(location.org)
        check_name(location.project)
        root = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = os.dup(root)
            try:
                for name in (location.org, location.project):
                    if create:
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(name, 0o700, dir_fd=fd)
                    try:
                        inner = tree_fd.open_directory(name, fd)
                    except FileNotFoundError:
                        raise _not_found(location) from None
                    os.close(fd)
                    fd = inner
            except BaseException:
                os.close(fd)
                raise
        finally:
            os.close(root)
        try:
            yield _Tree(fd, os.path.join(self._root, location.org, location.project))
        finally:
            os.close(fd)

    def _resolve(
        self,
        location: StorageLocation,
        *,
        follow_last: bool = True,
        make_parents: bool = False,
    ) -> tree_fd.Resolved:
        with self._tree(location) as tree:
            try:
                return tree_fd.resolve(
                    tree.fd,
                    tree.path,
                    location.path,
                    follow_last=follow_last,
                    make_parents=make_parents,
                )
            except NotFound:
                raise _not_found(location) from None

    def _directory(self, location: StorageLocation) -> int:
        """An fd of the directory at ``location`` (links in the tree followed)."""
        with self._resolve(location) as found:
            try:
                return found.open_directory()
            except FileNotFoundError:
                raise _not_found(location) from None
            except NotADirectoryError:
                raise BadInput(
                    f"{location.uri} is not a directory", fields={"path": "not a directory"}
                ) from None

    # -- metadata --

    async def stat(self, location: StorageLocation, *, follow: bool = False) -> FileStatus:
        return await asyncio.to_thread(self._stat, location, follow)

    def _stat(self, location: StorageLocation, follow: bool = False) -> FileStatus:
        with self._resolve(location, follow_last=follow) as found:
            info = found.lstat()
        if info is None:
            raise _not_found(location)
        return _status(location, info)

    async def list(
        self, location: StorageLocation, *, after: str | None, limit: int
    ) -> tuple[builtins.list[FileStatus], bool, int]:
        return await asyncio.to_thread(self._list, location, after, limit)

    def _list(
        self, location: StorageLocation, after: str | None, limit: int
    ) -> tuple[builtins.list[FileStatus], bool, int]:
        directory = self._directory(location)
        try:
            every = [
                entry.name for entry in tree_fd.scan(directory) if not is_partial_name(entry.name)
            ]
            names = every if after is None else [name for name in every if name > after]
            first = heapq.nsmallest(limit + 1, names)
            found: builtins.list[FileStatus] = []
            for name in first[:limit]:
                try:
                    info = os.stat(name, dir_fd=directory, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed meanwhile
                found.append(_status(location.child(name), info))
        finally:
            os.close(directory)
        return found, len(first) > limit, len(every)

    async def mkdir(self, location: StorageLocation, *, parents: bool = True) -> FileStatus:
        return await asyncio.to_thread(self._mkdir, location, parents)

    def _mkdir(self, location: StorageLocation, parents: bool) -> FileStatus:
        if not location.path:
            return self._stat(location)
        with self._resolve(location, make_parents=parents) as found:
            try:
                os.mkdir(_named(found, location), 0o700, dir_fd=found.directory)
            except FileExistsError:
                info = found.lstat()
                if info is None or not stat.S_ISDIR(info.st_mode):
                    raise Conflict(f"{location.uri} exists and is not a directory") from None
                if not parents:
                    raise Conflict(f"{location.uri} exists already") from None
            info = found.lstat()
        if info is None:
            raise _not_found(location)
        return _status(location, info)

    async def remove(self, location: StorageLocation, *, recursive: bool = False) -> int:
        return await asyncio.to_thread(self._remove, location, recursive)

    def _remove(self, location: StorageLocation, recursive: bool) -> int:
        if not location.path:
            raise BadInput("the project's tree itself cannot be removed", fields={"path": "root"})
        with self._resolve(location, follow_last=False) as found:
            name = _named(found, location)
            info = found.lstat()
            if info is None:
                raise _not_found(location)
            if not stat.S_ISDIR(info.st_mode):
                os.unlink(name, dir_fd=found.directory)
                return 1
            if not recursive:
                try:
                    os.rmdir(name, dir_fd=found.directory)
                except OSError as exc:
                    if exc.errno == errno.ENOTEMPTY:
                        raise Conflict(
                            f"{location.uri} is a directory that is not empty: "
                            "remove it recursively"
                        ) from None
                    raise
                return 1
            inner = found.open_directory()
            try:
                count = 1 + tree_fd.count_entries(inner)
            finally:
                os.close(inner)
            tree_fd.remove_tree(found.directory, name)
            return count

    def _ends(
        self, source: StorageLocation, target: StorageLocation
    ) -> tuple[tree_fd.Resolved, tree_fd.Resolved, StorageLocation, os.stat_result]:
        """Where a move or copy goes from and to: the target's directory receives the source
        under its own name when the target is a directory."""
        if not source.path or not target.path:
            raise BadInput("the project's tree itself cannot be moved or copied onto")
        src = self._resolve(source, follow_last=False)
        try:
            info = src.lstat()
            if info is None:
                raise _not_found(source)
            dst = self._resolve(target, follow_last=False)
            try:
                existing = dst.lstat()
                if existing is not None and stat.S_ISDIR(existing.st_mode):
                    inner = dst.open_directory()
                    dst.close()
                    dst = tree_fd.Resolved(
                        inner, source.path[-1], (*dst.chain, (existing.st_dev, existing.st_ino))
                    )
                    target = target.child(source.path[-1])
                same = dst.lstat()
                if (info.st_dev, info.st_ino) in dst.chain or (
                    same is not None and (same.st_dev, same.st_ino) == (info.st_dev, info.st_ino)
                ):
                    raise BadInput(f"{target.uri} is {source.uri} or inside it")
            except BaseException:
                dst.close()
                raise
        except BaseException:
            src.close()
            raise
        return src, dst, target, info

    async def move(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        return await asyncio.to_thread(self._move, source, target)

    def _move(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        src, dst, final, _ = self._ends(source, target)
        with src, dst:
            existing = dst.lstat()
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise Conflict(f"{final.uri} is a directory already")
            try:
                os.replace(
                    _named(src, source),
                    _named(dst, final),
                    src_dir_fd=src.directory,
                    dst_dir_fd=dst.directory,
                )
            except FileNotFoundError:
                raise _not_found(source) from None
            except (NotADirectoryError, IsADirectoryError):
                raise Conflict(f"{final.uri} exists and is not a directory") from None
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    raise BadInput(f"{final.uri} is inside {source.uri}") from None
                raise
        return self._stat(final)

    async def copy(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        return await asyncio.to_thread(self._copy, source, target)

    def _copy(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        src, dst, final, info = self._ends(source, target)
        with src, dst:
            source_name, target_name = _named(src, source), _named(dst, final)
            existing = dst.lstat()
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise Conflict(f"{final.uri} exists already")
            if stat.S_ISDIR(info.st_mode):
                inner = src.open_directory()
                try:
                    os.mkdir(target_name, 0o700, dir_fd=dst.directory)
                    made = tree_fd.open_directory(target_name, dst.directory)
                    try:
                        tree_fd.copy_tree(inner, made, refuse=(info.st_dev, info.st_ino))
                    finally:
                        os.close(made)
                finally:
                    os.close(inner)
            else:
                tree_fd.copy_file(src.directory, source_name, dst.directory, target_name)
        return self._stat(final)

    async def glob(self, location: StorageLocation, pattern: str, *, limit: int) -> GlobResult:
        return await asyncio.to_thread(self._glob, location, pattern, limit)

    def _glob(self, location: StorageLocation, pattern: str, limit: int) -> GlobResult:
        parts = split_path(pattern, "pattern")
        if not parts:
            raise BadInput("the pattern is empty", fields={"pattern": "empty"})
        directory = self._directory(location)
        found: dict[tuple[str, ...], FileStatus] = {}
        truncated = False
        # Matches are taken as the walk finds them, up to the limit (sorting them all first
        # would read a whole huge tree), then sorted. Links are matched, never entered.
        try:
            for relative, info in tree_fd.glob(directory, parts):
                if any(is_partial_name(name) for name in relative) or relative in found:
                    continue
                if len(found) == limit:
                    truncated = True
                    break
                found[relative] = _status(location.child(*relative), info)
        finally:
            os.close(directory)
        matches = sorted(found.values(), key=lambda entry: entry.path)
        return GlobResult(matches=tuple(matches), truncated=truncated)

    async def usage(self, location: StorageLocation, *, time_limit_s: float) -> StorageUsage:
        return await asyncio.to_thread(self._usage, location, time_limit_s)

    def _usage(self, location: StorageLocation, time_limit_s: float) -> StorageUsage:
        with self._resolve(location) as found:
            info = found.lstat()
            if info is None:
                raise _not_found(location)
            if not stat.S_ISDIR(info.st_mode):
                return StorageUsage(
                    uri=location.uri, size=info.st_size, files=1, directories=0, complete=True
                )
            directory = found.open_directory()
        deadline = time.monotonic() + time_limit_s
        size = files = directories = 0
        complete = True
        try:
            for count, (parent, entry) in enumerate(tree_fd.walk(directory)):
                if count % 1000 == 0 and time.monotonic() > deadline:
                    complete = False
                    break
                if entry.is_dir(follow_symlinks=False):
                    directories += 1
                elif entry.is_file(follow_symlinks=False):
                    files += 1
                    with contextlib.suppress(FileNotFoundError):
                        size += os.stat(entry.name, dir_fd=parent, follow_symlinks=False).st_size
        finally:
            os.close(directory)
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

    # -- bytes --

    async def read(
        self, location: StorageLocation, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        fd = await asyncio.to_thread(self._open_for_reading, location)
        end = None if length is None else offset + length
        position = offset

        def block_at(start: int) -> asyncio.Future[bytes] | None:
            size = READ_BYTES if end is None else min(READ_BYTES, end - start)
            if size <= 0:
                return None
            return asyncio.ensure_future(asyncio.to_thread(os.pread, fd, size, start))

        # The next block is read while this one is sent. A read in flight when the
        # stream ends (or is cancelled: shield keeps it from being cancelled under its
        # thread) closes the fd when it is done, not before.
        reading = block_at(position)
        try:
            while reading is not None:
                chunk = await asyncio.shield(reading)
                if not chunk:
                    return
                position += len(chunk)
                reading = block_at(position)
                yield chunk
        finally:
            if reading is not None and not reading.done():
                reading.add_done_callback(lambda done: _close_after(done, fd))
            else:
                os.close(fd)

    def _open_for_reading(self, location: StorageLocation) -> int:
        with self._resolve(location) as found:
            if found.name is None:
                raise BadInput(f"{location.uri} is not a file")
            try:
                fd = os.open(
                    found.name,
                    os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    dir_fd=found.directory,
                )
            except FileNotFoundError:
                raise _not_found(location) from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise tree_fd.changed() from None
                raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise BadInput(f"{location.uri} is not a file")
        return fd

    async def partial_size(self, location: StorageLocation) -> int:
        return await asyncio.to_thread(self._partial_size, location)

    def _partial_size(self, location: StorageLocation) -> int:
        if not location.path:
            return 0
        try:
            with self._resolve(location.parent) as found:
                directory = found.open_directory()
        except (NotFound, FileNotFoundError, NotADirectoryError):
            return 0
        try:
            info = os.stat(partial_name(location.path[-1]), dir_fd=directory, follow_symlinks=False)
        except FileNotFoundError:
            return 0
        finally:
            os.close(directory)
        return info.st_size if stat.S_ISREG(info.st_mode) else 0

    async def write_archive(
        self, location: StorageLocation, chunks: AsyncIterator[bytes], *, max_bytes: int | None
    ) -> ArchiveResult:
        loop = asyncio.get_running_loop()
        directories = storage_archive.Directories(
            lambda path, make: self._archive_directory(location, path, make)
        )
        feed = storage_archive.Feed(chunks, loop)
        # The thread owns the directory fds and closes them; a cancelled request stops its
        # feed, and so the thread, at its next read.
        try:
            return await loop.run_in_executor(
                self._archives, storage_archive.unpack, feed, directories, location, max_bytes
            )
        finally:
            feed.stop()

    def _archive_directory(
        self, location: StorageLocation, path: tuple[str, ...], make: bool
    ) -> int:
        inner = location.child(*path)
        return self._made_directory(inner) if make else self._directory(inner)

    async def read_archive(
        self, location: StorageLocation, paths: Sequence[tuple[str, ...]] | None
    ) -> AsyncIterator[bytes]:
        directories = storage_archive.Directories(
            lambda path, make: self._archive_directory(location, path, make)
        )
        # The directory itself must be there, and be one (NOT_FOUND, BAD_USER_INPUT), before
        # an answer starts.
        try:
            root = await asyncio.to_thread(directories.get, (), False)
        except BaseException:
            await asyncio.to_thread(directories.close)
            raise
        files = _tree_files(root) if paths is None else paths
        return storage_archive.packed(storage_archive.Packer(directories, files), directories)

    def upload_directory(self, location: StorageLocation) -> int:
        """An fd of the directory an upload to ``location`` goes into, made as ``mkdir -p``
        when missing (blocking)."""
        if not location.path:
            raise BadInput("an upload needs a file name", fields={"path": "no file name"})
        return self._made_directory(location.parent)

    def _made_directory(self, location: StorageLocation) -> int:
        with self._resolve(location, make_parents=True) as found:
            if found.name is not None:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(found.name, 0o700, dir_fd=found.directory)
            try:
                return found.open_directory()
            except NotADirectoryError:
                raise Conflict(f"{location.uri} is not a directory") from None

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
        root = self.host_directory(location)
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
        """The host path of the directory at ``location``, found as every path is (under
        directory fds, links inside the tree followed) and checked to be inside the
        project's tree: what a local runtime binds into a job. NOT_FOUND when it is
        missing, BAD_USER_INPUT when it is not a directory."""
        fd = self._directory(location)
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        tree = os.path.join(self._root, location.org, location.project)
        if path != tree and not path.startswith(tree + "/"):
            raise tree_fd.outside()
        return path

    async def write(
        self,
        location: StorageLocation,
        chunks: AsyncIterator[bytes],
        *,
        offset: int = 0,
        checksum: DeclaredChecksum | None = None,
        max_bytes: int | None = None,
        mtime: float | None = None,
        executable: bool = False,
        length: int | None = None,
    ) -> FileStatus:
        meta = FileMeta(mtime, executable)
        if not location.path:
            raise BadInput("an upload needs a file name", fields={"path": "no file name"})
        # Up to WRITE_BUFFER_BYTES are gathered first: a small file is then written, checked
        # and renamed in one worker-thread call; a bigger one is streamed.
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
            upload = self._open_partial(location, offset, checksum)
            try:
                upload.write(gathered)
            finally:
                upload.close()
            raise
        if ended:
            return await asyncio.to_thread(
                self._write_whole, location, offset, gathered, checksum, meta
            )
        return await self._stream(
            location, iterator, gathered, offset, checksum, max_bytes, meta, length
        )

    def _write_whole(
        self,
        location: StorageLocation,
        offset: int,
        chunks: builtins.list[bytes],
        checksum: DeclaredChecksum | None,
        meta: FileMeta,
    ) -> FileStatus:
        upload = self._open_partial(location, offset, checksum)
        try:
            upload.write(chunks)
            return self._finish(location, upload, checksum, meta)
        finally:
            upload.close()

    def _drop_partial(self, location: StorageLocation) -> None:
        try:
            directory = self.upload_directory(location)
        except (NotFound, Conflict):
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial_name(location.path[-1]), dir_fd=directory)
        finally:
            os.close(directory)

    async def _stream(
        self,
        location: StorageLocation,
        chunks: AsyncIterator[bytes],
        first: builtins.list[bytes],
        offset: int,
        checksum: DeclaredChecksum | None,
        max_bytes: int | None,
        meta: FileMeta,
        length: int | None,
    ) -> FileStatus:
        if length is not None and max_bytes is not None:
            length = min(length, max(0, max_bytes - offset))
        upload = await asyncio.to_thread(self._open_partial, location, offset, checksum, length)
        try:
            await self._stream_into(upload, chunks, first, offset, max_bytes)
            return await asyncio.to_thread(self._finish, location, upload, checksum, meta)
        finally:
            upload.close()

    async def _stream_into(
        self,
        upload: Upload,
        chunks: AsyncIterator[bytes],
        first: builtins.list[bytes],
        offset: int,
        max_bytes: int | None,
    ) -> None:
        written = offset + sum(len(chunk) for chunk in first)
        pending: builtins.list[bytes] = []
        pending_bytes = 0
        # One batch is hashed and written in a thread while the next one arrives.
        writing: asyncio.Task[None] | None = asyncio.create_task(
            asyncio.to_thread(upload.write, first)
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
                    writing = asyncio.create_task(asyncio.to_thread(upload.write, pending))
                    pending, pending_bytes = [], 0
            if writing is not None:
                await writing
                writing = None
            await asyncio.to_thread(upload.write, pending)
        except PayloadTooLarge:
            raise
        except BaseException:
            # The transfer broke (or was cancelled): keep every byte that came, for a resume,
            # after the batch in flight. The rest is written here, not in a thread, so that a
            # cancellation cannot lose it.
            if writing is not None:
                await asyncio.shield(writing)
            upload.write(pending)
            raise

    def _open_partial(
        self,
        location: StorageLocation,
        offset: int,
        checksum: DeclaredChecksum | None,
        length: int | None = None,
    ) -> Upload:
        """The partial file of an upload, opened under its directory's fd, which the rename
        at the end goes through too."""
        directory = self.upload_directory(location)
        upload = Upload(directory, partial_name(location.path[-1]), location.path[-1])
        try:
            if upload.target_is_directory():
                raise Conflict(f"{location.uri} is a directory")
            upload.open(offset, checksum, length)
        except BaseException:
            upload.close()
            raise
        return upload

    def _finish(
        self,
        location: StorageLocation,
        upload: Upload,
        checksum: DeclaredChecksum | None,
        meta: FileMeta | None = None,
    ) -> FileStatus:
        upload.close_file()
        try:
            expected = checksum.hex if checksum is not None else None
        except BadInput:  # a trailing checksum that did not come whole: nothing to trust
            upload.discard()
            raise
        if expected is not None and upload.digest.hexdigest() != expected:
            upload.discard()
            raise BadInput(
                f"the upload of {location.uri} does not match its checksum: it was discarded",
                fields={"checksum": "checksum mismatch"},
            )
        if upload.target_is_directory():
            raise Conflict(f"{location.uri} is a directory")
        if meta is not None:
            upload.apply(meta)
        upload.rename()
        info = os.stat(upload.name, dir_fd=upload.directory, follow_symlinks=False)
        return _status(location, info)


class _Tree:
    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path


def _tree_files(directory: int) -> Generator[tuple[str, ...]]:
    """The files below a directory fd (`tree_fd.files`, which holds fds of its own while it
    walks), less uploads still arriving (partial files); closing this closes the walk."""
    with contextlib.closing(tree_fd.files(directory)) as walked:
        for path in walked:
            if not is_partial_name(path[-1]):
                yield path


def _remove_entry(path: str) -> int:
    """Remove a file, link or tree (links not followed); how many entries went."""
    if os.path.isdir(path) and not os.path.islink(path):
        count = 1 + sum(len(dirs) + len(files) for _, dirs, files in os.walk(path))
        shutil.rmtree(path)
        return count
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return 1
