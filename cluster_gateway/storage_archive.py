"""Many files of a project's tree as one tar stream, both ways (``/api/storage-archive``).

A file costs a request ~2–3 ms whatever its size (authentication, the ACL check, the HTTP
round trip); `glia storage cp -r` of thousands of small files sends them as tar members of a
few requests instead. Each member is held to what a single upload is: its name checked as a
storage path (no ``..``, NUL, control characters, absolute names), no links, devices or hard
links, at most the upload limit, its checksum (in its piece's ``GLIA.files`` record,
`glia.storage.ARCHIVE_FILES`) verified, and written atomically (a hidden temporary name,
renamed once whole and checked), through directory fds that never follow a link out of the
tree (`cluster_gateway.tree_fd`).

The archive is read by `tarfile` in a thread of a small pool of its own: the thread asks the
event loop for the request's next chunk (one at a time: memory stays bounded) and gives up
when none comes for `IDLE_S`, so a stalled client holds one of these threads for that long
at most, and no thread of the default pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import tarfile
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from cluster_gateway import tree_fd
from glia.errors import BadInput, Conflict, NotFound, PayloadTooLarge
from glia.storage import (
    ARCHIVE_END,
    PIECE_BYTES,
    ArchiveFiles,
    ArchivePiece,
    ArchiveResult,
    Checksum,
    OpenDirectories,
    StorageLocation,
    archive_member_path,
    archive_padding,
)

# A request's chunk must come within this many seconds, or the archive is given up.
IDLE_S = 60.0
# Data of a member is read and written in blocks of this size.
BLOCK_BYTES = 4 * 1024 * 1024
# What tarfile asks of the request at a time.
READ_BYTES = 256 * 1024
# What tarfile may read for one member's headers (pax records, a long name), its read-ahead
# included: it holds them in memory whole.
HEADER_BYTES = 1024 * 1024 + 2 * READ_BYTES


class Feed:
    """A blocking file object over an async iterator of chunks, for a worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = aiter(chunks)
        self._loop = loop
        self._buffer = b""
        self._offset = 0
        self._ended = False
        self._stopped = False
        self._budget: int | None = None
        # Nothing but NULs so far: tarfile calls that an empty file, tar an empty archive.
        self.blank = True
        self.received = 0

    async def _next(self) -> bytes:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return b""

    def stop(self) -> None:
        self._stopped = True

    def limit(self, budget: int | None) -> None:
        """Refuse to give more than ``budget`` bytes until the next call (None: no limit).
        `tarfile` reads a member's pax or GNU long-name header whole into memory: a header
        is held to this budget, a member's data (read a block at a time) is not."""
        self._budget = budget

    def read(self, size: int = -1) -> bytes:
        if self._stopped:
            raise BadInput("the archive's request ended", fields={"archive": "cancelled"})
        if self._offset >= len(self._buffer) and not self._ended:
            future = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
            try:
                chunk = future.result(timeout=IDLE_S)
            except FutureTimeout:
                future.cancel()
                raise BadInput(
                    f"the archive stalled: no bytes for {IDLE_S:.0f} s",
                    fields={"archive": "stalled"},
                ) from None
            self._ended = not chunk
            self.received += len(chunk)
            self.blank = self.blank and not chunk.strip(b"\0")
            self._buffer, self._offset = chunk, 0
        end = len(self._buffer) if size < 0 else min(len(self._buffer), self._offset + size)
        data = self._buffer[self._offset : end]
        self._offset = end
        if self._budget is not None:
            self._budget -= len(data)
            if self._budget < 0:
                raise BadInput(
                    f"an archive member's headers may hold at most {HEADER_BYTES} bytes",
                    fields={"archive": "header too large"},
                )
        return data


# Directory fds below an archive's directory, by path; opened through `tree_fd`.
Directories = OpenDirectories[tuple[str, ...]]


def unpack(
    feed: Feed, directories: Directories, location: StorageLocation, max_bytes: int | None
) -> ArchiveResult:
    """Write each member of the tar stream ``feed`` below ``location`` (blocking); the
    directory fds are closed at the end."""
    try:
        return _unpack(feed, directories, location, max_bytes)
    finally:
        directories.close()


def _unpack(
    feed: Feed, directories: Directories, location: StorageLocation, max_bytes: int | None
) -> ArchiveResult:
    files = size = 0
    feed.limit(HEADER_BYTES)
    try:
        archive = tarfile.open(fileobj=feed, mode="r|", bufsize=READ_BYTES)  # type: ignore[call-overload]
    except tarfile.TarError:
        if feed.blank:
            return ArchiveResult(files=0, size=0)  # an empty body, or tar's end alone
        raise BadInput("the body is not a tar archive", fields={"archive": "not tar"}) from None
    recorded = ArchiveFiles()
    with archive:
        while True:
            feed.limit(HEADER_BYTES)
            try:
                member = archive.next()
            except tarfile.TarError as exc:
                raise BadInput(
                    f"the archive is damaged: {exc}", fields={"archive": "damaged"}
                ) from None
            if member is None:
                break
            path = archive_member_path(member.name)
            if member.isdir():
                directories.get(path, True)
                continue
            if not member.isreg() or not path:
                raise BadInput(
                    f"{member.name!r}: only files and directories can be uploaded, not links "
                    "or special files",
                    fields={"archive": "not a file"},
                )
            if max_bytes is not None and member.size > max_bytes:
                raise PayloadTooLarge(f"a file may hold at most {max_bytes} bytes")
            checksum, _ = recorded.of(archive, member)
            feed.limit(None)
            data = archive.extractfile(member)
            if data is None:  # pragma: no cover - a regular member always has a file
                continue
            _write_member(directories.get(path[:-1], True), path[-1], data, checksum, location)
            files += 1
            size += member.size
    return ArchiveResult(files=files, size=size)


def _write_member(
    directory: int, name: str, data: Any, checksum: Checksum | None, location: StorageLocation
) -> None:
    temporary = tree_fd.temporary_name()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600, dir_fd=directory)
    try:
        digest = checksum.new() if checksum is not None else None
        try:
            while block := data.read(BLOCK_BYTES):
                if digest is not None:
                    digest.update(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        if checksum is not None and digest is not None and digest.hexdigest() != checksum.hex:
            raise BadInput(
                f"{name!r} in the archive does not match its checksum: it was discarded",
                fields={"checksum": "checksum mismatch"},
            )
        try:
            os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
        except IsADirectoryError:
            raise Conflict(f"{location.uri}: {name!r} is a directory") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=directory)
        raise


class Packer:
    """Tar pieces of the files at ``paths`` below a directory, for an archive download.

    `pack` gathers small files (read whole, their checksums in the piece's record) into one
    piece; it stops at a big one and hands its fd over to be sent in blocks. A path that is
    not a file there (anymore), or is a link, is left out: the receiver sees what it did not
    get.
    ``paths`` is read as the pieces are made (a walk of a whole tree holds no list of it)."""

    def __init__(self, directories: Directories, paths: Iterable[tuple[str, ...]]) -> None:
        self._directories = directories
        self._paths = iter(paths)
        self.done = False

    def pack(self) -> tuple[bytes, tuple[int, int] | None]:
        piece = ArchivePiece()
        while not piece.full:
            path = next(self._paths, None)
            if path is None:
                self.done = True
                break
            try:
                fd = self._open(path)
            except (OSError, NotFound, BadInput):
                continue  # not there, through a link out of the tree, or a link itself
            keep = False
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    continue
                name = "/".join(path)
                if info.st_size > PIECE_BYTES:
                    piece.add_header(name, info.st_size, info.st_mtime)
                    keep = True
                    return piece.take(), (fd, info.st_size)
                piece.add_file(name, os.pread(fd, info.st_size, 0), info.st_mtime)
            finally:
                if not keep:
                    os.close(fd)
        return piece.take(), None

    def _open(self, path: tuple[str, ...]) -> int:
        directory = self._directories.get(path[:-1], False)
        return os.open(path[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)

    def close(self) -> None:
        """Stop reading ``paths`` (a walk closes the directories it holds open)."""
        close = getattr(self._paths, "close", None)
        if close is not None:
            # A pack still running in its thread (the answer was dropped meanwhile) holds
            # the walk: it is closed when that thread lets go of it, by the collector.
            with contextlib.suppress(ValueError):
                close()


async def packed(packer: Packer, directories: Directories) -> AsyncIterator[bytes]:
    """The archive of `Packer`'s files, piece by piece, ending with tar's end blocks."""
    try:
        while not packer.done:
            piece, big = await asyncio.to_thread(packer.pack)
            try:
                if piece:
                    yield piece
                if big is None:
                    continue
                fd, size = big
                position = 0
                while position < size:
                    block = await asyncio.to_thread(
                        os.pread, fd, min(BLOCK_BYTES, size - position), position
                    )
                    if not block:
                        # Cut short meanwhile: the archive cannot go on truthfully.
                        raise OSError(f"a file shrank while it was sent ({position} of {size})")
                    position += len(block)
                    yield block
            finally:
                # Sent, or the answer was dropped while this piece or the file's blocks
                # were on their way.
                if big is not None:
                    os.close(big[0])
            yield archive_padding(size)
        yield ARCHIVE_END
    finally:
        await asyncio.to_thread(packer.close)
        await asyncio.to_thread(directories.close)
