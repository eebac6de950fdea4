"""A cluster's file storage: where a file is, and what is known of it.

Every project has a tree of its own on each cluster, ``storage://CLUSTER/ORG/PROJECT/…``.
A path inside it is a tuple of names; `parse_storage_uri` and `split_path` are the one check
of a name (no ``.``/``..``, no ``/``, NUL or control characters, at most `MAX_NAME_BYTES`
bytes), so the control plane, the gateway and the SDK refuse the same hostile paths.

Names may hold characters a resource URI segment may not (spaces, ``#``, ``*``): the ACL is
checked on `StorageLocation.acl_uri`, which percent-encodes each name.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import re
import tarfile
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

import xxhash

from glia.acl import MAX_URI_LENGTH
from glia.errors import BadInput
from glia.model import DescribedEnum, Model

SCHEME = "storage"
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
# NUL, C0 and C1 control characters and DEL: never in a stored name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# What an upload keeps beside the file it becomes, until its last byte and checksum arrive.
PARTIAL_PREFIX = "."
PARTIAL_SUFFIX = ".glia-partial"


class FileType(DescribedEnum):
    """What a storage entry is."""

    FILE = "file", "A regular file"
    DIRECTORY = "directory", "A directory"
    SYMLINK = "symlink", "A symbolic link (followed only inside the project's tree)"
    OTHER = "other", "Anything else (a socket, a FIFO)"


class FileStatus(Model):
    """A file or directory of a project's storage."""

    uri: str
    """Where it is: ``storage://CLUSTER/ORG/PROJECT/path``."""
    path: str
    """Its path inside the project's tree, ``/`` for the tree itself."""
    name: str
    """Its own name (the last part of `path`)."""
    type: FileType
    """A file, a directory, a symlink or something else."""
    size: int
    """Its size in bytes (0 for a directory)."""
    modified_at: datetime
    """When its content last changed (UTC)."""


class StorageUsage(Model):
    """How much a tree holds (``du``)."""

    uri: str
    """The tree measured."""
    size: int
    """Bytes in its files."""
    files: int
    """How many files it holds."""
    directories: int
    """How many directories it holds, itself not counted."""
    complete: bool
    """False when the walk stopped at its time limit: the figures are a lower bound."""


class DiskUsage(Model):
    """The space of the disk a cluster's storage is on (``df``)."""

    cluster: str
    """The cluster."""
    total: int
    """Bytes on the disk."""
    used: int
    """Bytes in use."""
    free: int
    """Bytes a new file may take."""


class GlobResult(Model):
    """The entries a pattern matched, up to a limit."""

    matches: tuple[FileStatus, ...]
    """The entries matched, by path."""
    truncated: bool
    """True when more entries matched than were returned."""


class SyncFile(Model):
    """A file of a local directory that a sync mirrors into storage (``glia run``'s workdir)."""

    path: str
    """Its path relative to the directory, `/`-separated: `src/train.py`."""
    size: int
    """Its size in bytes."""
    mtime: float
    """When its content last changed, in seconds since the epoch."""
    executable: bool = False
    """Whether its owner may execute it."""


class SyncPlan(Model):
    """What a sync must still send, once the server removed what the directory no longer has."""

    upload: tuple[str, ...]
    """The paths (relative, as given) whose size, time or mode differ from the server's, or
    that it lacks."""
    removed: int
    """How many files and directories the server removed: those the directory no longer has."""


def same_mtime(a: float, b: float) -> bool:
    """Whether two modification times are the same as a sync compares them (to the
    millisecond: a JSON float holds a time of today to about a microsecond)."""
    return abs(a - b) < 0.001


def check_name(name: str, field: str = "path") -> str:
    """``name`` if it can be a file's name in storage; `BadInput` otherwise."""
    if name in ("", ".", ".."):
        raise BadInput(f"{name!r} is not a file name", fields={field: "empty, '.' or '..'"})
    if "/" in name:
        raise BadInput(f"{name!r} holds '/'", fields={field: "'/' in a name"})
    if _CONTROL.search(name):
        raise BadInput(
            f"{name!r} holds NUL or a control character", fields={field: "control character"}
        )
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise BadInput(
            f"a name is longer than {MAX_NAME_BYTES} bytes", fields={field: "name too long"}
        )
    return name


def split_path(path: str, field: str = "path") -> tuple[str, ...]:
    """A path inside a project's tree as its names; ``""`` and ``/`` are the tree itself.

    ``split_path("/data/a b.txt") == ("data", "a b.txt")``; `BadInput` for ``..``, ``.``,
    an empty name (``a//b``), NUL or control characters, a name longer than `MAX_NAME_BYTES`
    or a path longer than `MAX_PATH_BYTES`.
    """
    if not isinstance(path, str):
        raise BadInput("a path must be a string", fields={field: "not a string"})
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadInput(
            f"the path is longer than {MAX_PATH_BYTES} bytes", fields={field: "path too long"}
        )
    inner = path.strip("/")
    if not inner:
        return ()
    return tuple(check_name(name, field) for name in inner.split("/"))


@dataclass(frozen=True)
class StorageLocation:
    """A place in storage: a cluster, an org, a project and a path in the project's tree."""

    cluster: str
    org: str
    project: str
    path: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """``storage://default/acme/vision/data/x`` (names as they are, unencoded)."""
        return "/".join((f"{SCHEME}://{self.cluster}", self.org, self.project, *self.path))

    @property
    def path_text(self) -> str:
        return "/" + "/".join(self.path)

    @property
    def name(self) -> str:
        return self.path[-1] if self.path else self.project

    @property
    def acl_uri(self) -> str:
        """The URI permissions are checked on: each name percent-encoded, and cut to the
        longest prefix of whole names a grant can have (grant URIs are at most
        `MAX_URI_LENGTH` long, so a grant covers the path exactly when it covers that
        prefix)."""
        uri = f"{SCHEME}://{self.cluster}/{self.org}/{self.project}"
        for name in self.path:
            longer = f"{uri}/{quote(name, safe='')}"
            if len(longer) > MAX_URI_LENGTH:
                break
            uri = longer
        return uri

    def child(self, *names: str) -> StorageLocation:
        return StorageLocation(self.cluster, self.org, self.project, (*self.path, *names))

    @property
    def parent(self) -> StorageLocation:
        return StorageLocation(self.cluster, self.org, self.project, self.path[:-1])


def parse_storage_uri(uri: str, field: str = "uri") -> StorageLocation:
    """``storage://CLUSTER/ORG/PROJECT[/path]`` as a `StorageLocation`; `BadInput` otherwise.

    ``parse_storage_uri("storage://default/acme/vision/data/a.csv").path == ("data", "a.csv")``
    """
    if not isinstance(uri, str):
        raise BadInput("a storage URI must be a string", fields={field: "not a string"})
    scheme, sep, rest = uri.partition("://")
    if scheme != SCHEME or not sep:
        raise BadInput(
            f"{uri!r} is not a storage URI: expected storage://CLUSTER/ORG/PROJECT/path",
            fields={field: "expected storage://CLUSTER/ORG/PROJECT/path"},
        )
    parts = rest.split("/", 3)
    if len(parts) < 3 or not all(parts[:3]):
        raise BadInput(
            f"{uri!r} names no project: expected storage://CLUSTER/ORG/PROJECT/path",
            fields={field: "expected storage://CLUSTER/ORG/PROJECT/path"},
        )
    for part in parts[:3]:
        check_name(part, field)
    path = split_path(parts[3], field) if len(parts) == 4 else ()
    return StorageLocation(parts[0], parts[1], parts[2], path)


def is_partial_name(name: str) -> bool:
    """Whether ``name`` is an upload's kept partial file (hidden from listings)."""
    return name.startswith(PARTIAL_PREFIX) and name.endswith(PARTIAL_SUFFIX)


def partial_name(name: str) -> str:
    """The partial file an upload of ``name`` writes before its rename."""
    partial = f"{PARTIAL_PREFIX}{name}{PARTIAL_SUFFIX}"
    if len(partial.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES:
        return partial
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PARTIAL_PREFIX}{digest}{PARTIAL_SUFFIX}"


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


# What a transfer's checksum may be: SHA-256 (what ``sha256sum`` prints, for curl) or
# xxh3-128, which the SDK sends (a checksum against damage, not an attacker: the sender
# is the one who could forge it anyway; ~30 GB/s where SHA-256 is ~2).
CHECKSUMS: dict[str, tuple[Callable[[], Hash], int]] = {
    "sha256": (hashlib.sha256, 64),
    "xxh3-128": (xxhash.xxh3_128, 32),
}
FAST_CHECKSUM = "xxh3-128"
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Checksum:
    """A whole file's checksum: an algorithm of `CHECKSUMS` and its hex digest."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str, field: str = "checksum") -> Checksum:
        """``Checksum.parse("xxh3-128=0123…") == Checksum("xxh3-128", "0123…")``."""
        algorithm, sep, digest = text.strip().partition("=")
        algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
        known = CHECKSUMS.get(algorithm)
        if not sep or known is None:
            raise BadInput(
                f"a checksum is ALGORITHM=HEX with ALGORITHM one of {', '.join(CHECKSUMS)}",
                fields={field: "unknown algorithm"},
            )
        if len(digest) != known[1] or not _HEX.fullmatch(digest):
            raise BadInput(
                f"a {algorithm} checksum is {known[1]} hexadecimal digits",
                fields={field: "malformed digest"},
            )
        return cls(algorithm, digest)

    @property
    def header(self) -> str:
        return f"{self.algorithm}={self.hex}"

    def new(self) -> Hash:
        return CHECKSUMS[self.algorithm][0]()


def new_hash(algorithm: str = FAST_CHECKSUM) -> Hash:
    return CHECKSUMS[algorithm][0]()


# ``X-Glia-Checksum: ALGORITHM=trailer``: the digest follows the bytes it covers. An older
# peer refuses the value (it is no hex digest) before it writes anything, rather than
# storing the digest as part of the file.
TRAILER = "trailer"


class ChecksumTrailer:
    """An upload's checksum sent after its bytes: the body ends with the hex digest of the
    whole file (as many characters as the algorithm's digest has). The sender hashes each
    block as it reads it for sending instead of reading the file once more before it
    starts, which for a large file not in the page cache is a second read of it from disk.

    `split` passes the file's bytes of the body on and keeps the digest; `hex` is known once
    they have all passed, which is when an upload compares it (`Checksum`'s interface)."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.digits = CHECKSUMS[algorithm][1]
        self._tail = bytearray()

    @property
    def header(self) -> str:
        return f"{self.algorithm}={TRAILER}"

    @property
    def hex(self) -> str:
        digest = self._tail.decode("ascii", "replace").lower()
        if len(digest) != self.digits or not _HEX.fullmatch(digest):
            raise BadInput(
                f"the upload did not end with its {self.algorithm} checksum "
                f"({self.digits} hexadecimal digits): it was discarded",
                fields={"checksum": "malformed trailer"},
            )
        return digest

    def new(self) -> Hash:
        return CHECKSUMS[self.algorithm][0]()

    def split(self, body: AsyncIterator[bytes], length: int | None) -> AsyncIterator[bytes]:
        """The first ``length`` bytes of ``body`` (the file's, passed on as they came: only
        the block that holds the boundary is cut), keeping the rest as the digest. Without
        a length (or one shorter than the digest) where the digest starts is unknown: that
        is refused here, before a byte is read."""
        if length is None or length < 0:
            raise BadInput(
                "an upload whose checksum follows its bytes needs a length that counts them "
                "and the checksum",
                fields={"length": "missing"},
            )
        return self._split(body, length)

    async def _split(self, body: AsyncIterator[bytes], length: int) -> AsyncIterator[bytes]:
        remaining = length
        async for chunk in body:
            if len(chunk) <= remaining:
                remaining -= len(chunk)
                if chunk:
                    yield chunk
                continue
            if remaining:
                yield chunk[:remaining]
            self._tail += chunk[remaining:]
            remaining = 0
            if len(self._tail) > self.digits:
                return  # longer than declared: `hex` refuses it, and the rest is not read

    async def follow(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks``, then what `split` kept as the digest, for passing the upload on (as
        it came: the next hop judges it, and discards an upload whose digest is wrong)."""
        async for chunk in chunks:
            yield chunk
        yield bytes(self._tail)


DeclaredChecksum = Checksum | ChecksumTrailer


def declared_checksum(text: str, field: str = "checksum") -> DeclaredChecksum:
    """``ALGORITHM=HEX`` (`Checksum.parse`) or ``ALGORITHM=trailer`` (`ChecksumTrailer`)."""
    algorithm, sep, digest = text.strip().partition("=")
    algorithm = algorithm.strip().lower()
    if sep and digest.strip().lower() == TRAILER and algorithm in CHECKSUMS:
        return ChecksumTrailer(algorithm)
    return Checksum.parse(text, field)


_FALLOC_FL_KEEP_SIZE = 1


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return call


def preallocate(fd: int, offset: int, length: int) -> bool:
    """Set aside disk for ``length`` bytes from ``offset`` of a file about to be written
    there, its size unchanged (Linux ``fallocate`` with ``FALLOC_FL_KEEP_SIZE``; Python's
    ``os.posix_fallocate`` would grow the size, and a partial file's size is what a resume
    trusts). The filesystem then maps the blocks once instead of page by page as they are
    written: ext4 writes 1 GiB in 0.10 s instead of 0.17 s on the bench machine. Best
    effort: False where the call or the filesystem does not offer it, or the disk lacks the
    room (the writes then allocate, or fail, as they go)."""
    call = _fallocate()
    if call is None or length <= 0:
        return False
    return call(fd, _FALLOC_FL_KEEP_SIZE, offset, length) == 0


# Many files travel as one tar stream (``/api/storage-archive``), sent in pieces. Each piece
# starts with a pax global header, `ARCHIVE_FILES`: a JSON object from each of the piece's
# member names to ``[CHECKSUM, MTIME]`` (`Checksum.header` or null, the exact modification
# time). Each member then has a plain ustar header (pax only for a name ustar cannot hold):
# one header to write and to parse per file instead of two, which is half of what `tarfile`
# costs per small file. Any tar reads the stream; GNU tar warns of the unknown keyword.
ARCHIVE_FILES = "GLIA.files"
ARCHIVE_MAX_PATHS = 10_000
ARCHIVE_END = b"\0" * (2 * tarfile.BLOCKSIZE)
# A piece names at most this many members (its record is read whole, in one header), and
# its members' bytes stop growing past this size (a piece is held in memory whole).
PIECE_FILES = 1000
PIECE_BYTES = 4 * 1024 * 1024
# A recorded mtime is within this many seconds of 1970 (past it, utime overflows).
MAX_MTIME = 1e11


class ArchiveResult(Model):
    """What an archive upload wrote."""

    files: int
    """Files written."""
    size: int
    """Bytes in them."""


class ArchivePiece:
    """Members of an archive gathered in memory, then sent as one piece with their record."""

    def __init__(self) -> None:
        self._members = bytearray()
        self._files: dict[str, tuple[str | None, float]] = {}

    def __len__(self) -> int:
        """The bytes of the members so far."""
        return len(self._members)

    @property
    def full(self) -> bool:
        """Whether the piece is to be sent before another member is added."""
        return len(self._files) >= PIECE_FILES or len(self._members) >= PIECE_BYTES

    def add_file(self, name: str, data: bytes, mtime: float) -> None:
        """A whole file, its checksum computed here."""
        digest = new_hash()
        digest.update(data)
        self._files[name] = (Checksum(FAST_CHECKSUM, digest.hexdigest()).header, mtime)
        self._members += _member_header(name, len(data), mtime)
        self._members += data
        self._members += archive_padding(len(data))

    def add_header(self, name: str, size: int, mtime: float) -> None:
        """The header of a file whose ``size`` bytes follow the piece (sent in blocks, with
        no checksum), then `archive_padding`."""
        self._files[name] = (None, mtime)
        self._members += _member_header(name, size, mtime)

    def take(self) -> bytes:
        """The piece (empty when no member was added), and a new one begins."""
        if not self._files:
            return b""
        record = json.dumps(self._files, separators=(",", ":"))
        header = tarfile.TarInfo.create_pax_global_header({ARCHIVE_FILES: record})
        piece = header + self._members
        self._members, self._files = bytearray(), {}
        return bytes(piece)


def _member_header(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    # Whole seconds in the header: a float would make tarfile add a pax header for it. The
    # exact time is in the piece's record.
    info.mtime = int(mtime)
    info.mode = 0o600
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class ArchiveFiles:
    """What the `ARCHIVE_FILES` record of the piece being read says of its members: read
    once per piece (a member whose piece has no record, as in an archive made by ``tar``,
    has no checksum and the header's mtime)."""

    def __init__(self, field: str = "archive") -> None:
        self._field = field
        self._record: str | None = None
        self._files: dict[str, Any] = {}

    def of(
        self, archive: tarfile.TarFile, member: tarfile.TarInfo
    ) -> tuple[Checksum | None, float]:
        record = archive.pax_headers.get(ARCHIVE_FILES)
        if record is not self._record:
            self._files = self._parse(record)
            self._record = record
        found = self._files.get(member.name)
        if found is None:
            return None, member.mtime
        if (
            not isinstance(found, list)
            or len(found) != 2
            or not isinstance(found[0], str | None)
            or not isinstance(found[1], int | float)
            or isinstance(found[1], bool)
            or not abs(found[1]) < MAX_MTIME  # NaN and infinities too
        ):
            raise BadInput(
                f"{member.name!r}: its {ARCHIVE_FILES} entry is not [checksum, mtime]",
                fields={self._field: "damaged"},
            )
        checksum = None if found[0] is None else Checksum.parse(found[0], self._field)
        return checksum, float(found[1])

    def _parse(self, record: str | None) -> dict[str, Any]:
        if record is None:
            return {}
        try:
            files = json.loads(record)
        except ValueError:
            files = None
        if not isinstance(files, dict):
            raise BadInput(
                f"the archive's {ARCHIVE_FILES} record is not a JSON object",
                fields={self._field: "damaged"},
            )
        return files


def archive_padding(size: int) -> bytes:
    """The NULs after a member's ``size`` bytes of data, to the next tar block."""
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def archive_member_path(name: str, field: str = "archive") -> tuple[str, ...]:
    """A member's name as a path below the archive's directory (``()``: the directory
    itself); a leading ``./`` (``tar c -C dir .``) is dropped. `BadInput` for an absolute
    name and every name `split_path` refuses."""
    if name.startswith("/"):
        raise BadInput(f"{name!r}: an archive member's name is relative", fields={field: name})
    while name.startswith("./"):
        name = name[2:]
    return () if name == "." else split_path(name, field)


K = TypeVar("K", bound=Hashable)


class OpenDirectories(Generic[K]):
    """Directory fds by key, each opened by ``opener(key, make)`` when first asked for, the
    last ``limit`` kept open (the least recently used closed first). Files are then made and
    renamed by name in their directory's fd: the kernel does not walk the whole path again
    for each call, and a directory is checked once, when it is opened."""

    def __init__(self, opener: Callable[[K, bool], int], *, limit: int = 64) -> None:
        self._opener = opener
        self._limit = limit
        self._open: dict[K, int] = {}

    def get(self, key: K, make: bool) -> int:
        fd = self._open.pop(key, None)
        if fd is None:
            fd = self._opener(key, make)
            if len(self._open) >= self._limit:
                os.close(self._open.pop(next(iter(self._open))))
        self._open[key] = fd  # the most recent last
        return fd

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def __del__(self) -> None:
        # An owner dropped before its own cleanup ran (an answer never started).
        self.close()
