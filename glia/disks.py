"""Disks: a fixed-size filesystem of a project on one cluster, mounted read-write by one job at
a time, deleted after it has gone unused for its timeout.

A disk's URI is ``disk://CLUSTER/ORG/PROJECT/ID``: grants on the project's
``disk://CLUSTER/ORG/PROJECT`` cover its disks. The cluster keeps its bytes (a `DiskStore`);
the control plane keeps its record and who holds it.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Protocol

from pydantic import Field, field_validator

from glia.acl import format_uri
from glia.errors import BadInput
from glia.model import DescribedEnum, Model

SCHEME = "disk"
DISK_ID_PREFIX = "disk-"
DISK_NAME_RE = re.compile(r"[a-z](-?[a-z0-9])*")
MIN_DISK_NAME, MAX_DISK_NAME = 3, 40
MIN_DISK_BYTES = 16 * 1024**2  # ext4's smallest useful size, with its journal
MAX_DISK_BYTES = 4 * 1024**4
MIN_UNUSED_TIMEOUT_S = 60.0
MAX_UNUSED_TIMEOUT_S = 5 * 365 * 86400.0


class DiskStatus(DescribedEnum):
    """Where a disk is in its life."""

    PENDING = "pending", "Being made"
    READY = "ready", "Ready to be mounted"
    BROKEN = "broken", "Its cluster could not make it, or lost it"


class Disk(Model):
    """A project's disk on one cluster."""

    id: str
    """`disk-<uuid>`."""
    name: str | None = None
    """A name unique among its project's disks on its cluster, if given."""
    uri: str
    """`disk://CLUSTER/ORG/PROJECT/ID`."""
    cluster: str
    """The cluster that holds it."""
    org: str
    """The org of its project."""
    project: str
    """Its project."""
    owner: str
    """Who created it."""
    size_bytes: int
    """Its size: what the jobs that mount it may write."""
    used_bytes: int | None = None
    """What its files take now; null when the cluster did not say."""
    status: DiskStatus
    """Pending, ready or broken."""
    status_description: str | None = None
    """Why it is broken."""
    timeout_unused_s: float | None = Field(default=None, alias="timeoutUnusedSeconds")
    """Deleted once no job has held it for this long; null: kept until deleted."""
    created_at: datetime
    """When it was created (UTC)."""
    last_used_at: datetime | None = None
    """When a job last held it (UTC)."""
    used_by: str | None = None
    """The unfinished job that holds it now, if any."""


class NewDisk(Model):
    """A disk to create."""

    size_bytes: int
    """Its size, 16 MiB to 4 TiB."""
    name: str | None = None
    """3 to 40 lowercase letters, digits and single '-', starting with a letter; unique
    among the project's disks on the cluster."""
    timeout_unused_s: float | None = Field(default=None, alias="timeoutUnusedSeconds")
    """Delete it once no job has held it for this long (1 minute to 5 years); null: keep it."""
    cluster: str | None = None
    """The cluster; null for the default one."""
    org: str | None = None
    """The org of its project; null for the caller's personal org."""
    project: str | None = None
    """Its project; null for the caller's personal project."""

    @field_validator("size_bytes")
    @classmethod
    def _size(cls, size: int) -> int:
        if not MIN_DISK_BYTES <= size <= MAX_DISK_BYTES:
            raise ValueError("a disk is 16 MiB to 4 TiB")
        return size

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None:
            check_disk_name(name)
        return name

    @field_validator("timeout_unused_s")
    @classmethod
    def _timeout(cls, timeout: float | None) -> float | None:
        if timeout is not None and not MIN_UNUSED_TIMEOUT_S <= timeout <= MAX_UNUSED_TIMEOUT_S:
            raise ValueError("an unused timeout is 1 minute to 5 years")
        return timeout


def check_disk_name(name: str) -> str:
    if not (MIN_DISK_NAME <= len(name) <= MAX_DISK_NAME and DISK_NAME_RE.fullmatch(name)) or (
        name.startswith(DISK_ID_PREFIX)
    ):
        raise BadInput(
            f"invalid disk name {name[:100]!r}: {MIN_DISK_NAME} to {MAX_DISK_NAME} lowercase "
            "letters, digits and single '-' between them, starting with a letter, not 'disk-'",
            fields={"name": "invalid"},
        )
    return name


def new_disk_id() -> str:
    return f"{DISK_ID_PREFIX}{uuid.uuid4()}"


def is_disk_id(value: str) -> bool:
    return value.startswith(DISK_ID_PREFIX) and len(value) == len(DISK_ID_PREFIX) + 36


def disk_uri(cluster: str, org: str, project: str, disk_id: str) -> str:
    return format_uri(SCHEME, (cluster, org, project, disk_id))


class DiskStore(Protocol):
    """A cluster's disks: their bytes, by id."""

    async def create(self, disk_id: str, size_bytes: int) -> None:
        """Make an empty filesystem of ``size_bytes``."""

    async def delete(self, disk_id: str) -> None:
        """Remove it and its files (none when it is gone already)."""

    async def used_bytes(self, disk_id: str) -> int | None:
        """What its files take; None when it cannot tell."""
