"""Volumes: what a job mounts from its platform — a directory of storage, a disk, a secret as
a file — and secrets it gets as environment variables.

The CLI's notation is ``KIND:REF:PATH[:ro|:rw]`` (``storage:data:/var/data:ro``,
``disk:scratch:/mnt/d``, ``secret:api-key:/etc/key``); `parse_volume` reads it. A REF is
relative to the job's project (``storage:data``; ``disk:NAME``; ``secret:KEY``) or absolute
(``storage:/ORG/PROJECT/path``, ``storage://CLUSTER/ORG/PROJECT/path``, ``disk:disk-<uuid>``).
The server resolves it, checks the caller's permission on it (read for a read-only mount,
write otherwise) and refuses what they may not use, naming it.
"""

from __future__ import annotations

import posixpath
import re
from typing import Self

from pydantic import SecretBytes, ValidationError, field_validator, model_validator

from glia.errors import BadInput
from glia.model import DescribedEnum, Model

MAX_VOLUMES = 32
# `-e NAME=secret:KEY`: the CLI's notation for a variable set from a secret.
SECRET_PREFIX = "secret:"
MAX_SECRET_ENV = 64
# Where a volume may not go: what the sandbox itself shows (the system, the job's working
# directory and HOME, /proc, /dev, /tmp) would be hidden or replaced.
RESERVED_PATHS = (
    "/bin",
    "/boot",
    "/dev",
    "/job",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/tmp",
    "/usr",
)
# The system's files in /etc the sandbox shows (a secret may not replace them).
ETC_FILES = frozenset(
    {
        "/etc/group",
        "/etc/host.conf",
        "/etc/hosts",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/etc/nsswitch.conf",
        "/etc/passwd",
        "/etc/resolv.conf",
    }
)
_PATH_RE = re.compile(r"/[A-Za-z0-9._@+=,/-]*")


class VolumeKind(DescribedEnum):
    """What a volume mounts."""

    STORAGE = "storage", "A directory of the cluster's storage"
    DISK = "disk", "A disk of the project (read-write by one job at a time)"
    SECRET = "secret", "A secret of the project, as a read-only file 0400 of the job's uid"


class Volume(Model):
    """Something a job mounts at a path of its sandbox."""

    kind: VolumeKind
    """Storage, a disk or a secret."""
    ref: str
    """What: a storage path (`data`, `/ORG/PROJECT/data`, `storage://…`), a disk's name or id,
    or a secret's key."""
    mount_path: str
    """An absolute path in the job, outside the system's directories (`/var/data`)."""
    read_only: bool = False
    """Mounted read-only (a secret always is)."""

    @field_validator("ref")
    @classmethod
    def _ref(cls, ref: str) -> str:
        if not ref or len(ref) > 4096 or any(ord(c) < 32 for c in ref):
            raise ValueError(f"invalid volume reference {ref[:100]!r}")
        return ref

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, path: str) -> str:
        return check_mount_path(path)

    @model_validator(mode="after")
    def _kind_and_path(self) -> Self:
        if self.kind is VolumeKind.SECRET and not self.read_only:
            raise ValueError("a secret is mounted read-only")
        under_etc = self.mount_path == "/etc" or self.mount_path.startswith("/etc/")
        if under_etc and (self.kind is not VolumeKind.SECRET or self.mount_path in ETC_FILES):
            raise ValueError(
                f"{self.mount_path}: only a secret's file goes under /etc, beside the system's own"
            )
        return self


class SecretEnv(Model):
    """An environment variable whose value is a secret of the job's project."""

    name: str
    """The variable's name."""
    key: str
    """The secret's key."""


class SecretFile(Model):
    """A secret volume's content for the runtime (never part of anything shown)."""

    mount_path: str
    content: SecretBytes


def check_mount_path(path: str) -> str:
    if len(path) > 1024 or not _PATH_RE.fullmatch(path):
        raise ValueError(
            f"a mount path is an absolute path of letters, digits and ._@+=,-: {path[:100]!r}"
        )
    normal = posixpath.normpath(path)
    if normal != path.rstrip("/") or normal == "/" or "/../" in f"{path}/":
        raise ValueError(f"a mount path is absolute and normal, not {path!r}")
    for reserved in RESERVED_PATHS:
        if normal == reserved or normal.startswith(reserved + "/"):
            raise ValueError(f"{path} is inside {reserved}, which the sandbox keeps for itself")
    return normal


def check_volumes(volumes: tuple[Volume, ...]) -> tuple[Volume, ...]:
    if len(volumes) > MAX_VOLUMES:
        raise ValueError(f"at most {MAX_VOLUMES} volumes")
    paths = [volume.mount_path for volume in volumes]
    for path in paths:
        if paths.count(path) > 1:
            raise ValueError(f"two volumes are mounted at {path}")
    return volumes


def parse_volume(text: str) -> Volume:
    """``storage:data:/var/data:ro`` → a `Volume`; BadInput naming the part at fault."""
    kind_text, _, rest = text.partition(":")
    try:
        kind = VolumeKind(kind_text)
    except ValueError:
        raise BadInput(
            f"volume {text!r}: it starts with storage:, disk: or secret:",
            fields={"volumes": "unknown kind"},
        ) from None
    read_only = kind is VolumeKind.SECRET
    for mode, flag in ((":ro", True), (":rw", False)):
        if rest.endswith(mode):
            rest, read_only = rest[: -len(mode)], flag
            break
    ref, _, mount_path = rest.rpartition(":")
    if not ref or not mount_path:
        raise BadInput(
            f"volume {text!r}: expected {kind.value}:REF:PATH[:ro|:rw]",
            fields={"volumes": "expected KIND:REF:PATH"},
        )
    try:
        return Volume(kind=kind, ref=ref, mount_path=mount_path, read_only=read_only)
    except ValidationError as exc:
        said = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise BadInput(f"volume {text!r}: {said}", fields={"volumes": said}) from None


def format_volume(volume: Volume) -> str:
    """The notation `parse_volume` reads (a resolved storage URI as ``storage://…``)."""
    mode = ":ro" if volume.read_only and volume.kind is not VolumeKind.SECRET else ""
    ref = volume.ref.removeprefix("storage:") if volume.ref.startswith("storage://") else volume.ref
    return f"{volume.kind.value}:{ref}:{volume.mount_path}{mode}"
