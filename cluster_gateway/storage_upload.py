"""An upload's partial file: opened beside its target at an offset, hashed as it is
written, renamed over the target once whole (`LocalStorage.write`)."""

from __future__ import annotations

import builtins
import contextlib
import os
import stat
from dataclasses import dataclass, field

from glia.errors import Conflict
from glia.storage import DeclaredChecksum, Hash, preallocate

# The kept bytes of a resumed upload are read again in blocks of this size for its checksum.
REREAD_BYTES = 8 * 1024 * 1024


class Nothing:
    """The hash of an upload that declared no checksum: nothing to compute."""

    def update(self, data: bytes, /) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


@dataclass(frozen=True)
class FileMeta:
    """What an upload gives its file beside its bytes (a workdir sync keeps them)."""

    mtime: float | None = None
    executable: bool = False


@dataclass
class Upload:
    """Where an upload goes: an fd of its directory, names in it, and (once open) the
    partial file's fd and the running hash of the whole file."""

    directory: int
    partial: str
    name: str
    fd: int = -1
    digest: Hash = field(default_factory=Nothing)
    preallocated: bool = False

    def open(
        self, offset: int, checksum: DeclaredChecksum | None, length: int | None = None
    ) -> None:
        """Open the partial file at ``offset``; ``length``: the bytes the upload declares,
        set aside on disk up front (given back past what was written when it closes)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self.fd = os.open(self.partial, flags, 0o600, dir_fd=self.directory)
        kept = os.fstat(self.fd).st_size
        if offset > kept:
            raise Conflict(
                f"the upload can continue at byte {kept} at most, not {offset}",
                details={"partialSize": kept},
            )
        os.ftruncate(self.fd, offset)
        self.digest = checksum.new() if checksum is not None else Nothing()
        if checksum is not None:
            # The checksum covers the whole file: the kept bytes are read again.
            position = 0
            while position < offset:
                block = os.pread(self.fd, min(REREAD_BYTES, offset - position), position)
                if not block:
                    break
                self.digest.update(block)
                position += len(block)
        os.lseek(self.fd, offset, os.SEEK_SET)
        if length:
            self.preallocated = preallocate(self.fd, offset, length)

    def write(self, chunks: builtins.list[bytes]) -> None:
        for chunk in chunks:
            self.digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(self.fd, view) :]

    def target_is_directory(self) -> bool:
        try:
            info = os.stat(self.name, dir_fd=self.directory, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return stat.S_ISDIR(info.st_mode)

    def apply(self, meta: FileMeta) -> None:
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

    def close_file(self) -> None:
        if self.fd >= 0:
            if self.preallocated:
                # A truncate to its own size frees the blocks set aside past the end: an
                # upload that broke (or declared more than it sent) holds no more disk than
                # the bytes it kept.
                os.ftruncate(self.fd, os.lseek(self.fd, 0, os.SEEK_CUR))
            os.close(self.fd)
            self.fd = -1

    def close(self) -> None:
        self.close_file()
        if self.directory >= 0:
            os.close(self.directory)
            self.directory = -1
