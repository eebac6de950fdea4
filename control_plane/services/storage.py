"""The clusters' file storage, as users see it: every operation checked on the full URI.

A project's tree is ``storage://CLUSTER/ORG/PROJECT/…``. Whoever may not even list a path
gets NOT_FOUND (a stranger learns nothing, not even that a project exists); whoever may see
it but not do what they ask gets FORBIDDEN (a project reader writing). Reading metadata needs
``list``, reading bytes ``read``, every change ``write``; a move needs ``write`` on both
ends, a copy ``read`` on its source.

The work itself is the cluster's `Storage`, found in the platform's `ClusterRegistry` of
them; every listing, glob and walk is bounded here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from cluster_gateway.storage import Storage
from control_plane.services.acl import AclService
from control_plane.services.clusters import ClusterRegistry
from glia.acl import Action
from glia.auth import User
from glia.errors import BadInput, Forbidden, NotFound
from glia.pages import Page, PageRequest
from glia.storage import (
    ARCHIVE_MAX_PATHS,
    ArchiveResult,
    DeclaredChecksum,
    DiskUsage,
    FileStatus,
    GlobResult,
    StorageLocation,
    StorageUsage,
    SyncFile,
    SyncPlan,
    parse_storage_uri,
)

GLOB_LIMIT = 1000
MAX_SYNC_FILES = 5_000
USAGE_TIME_LIMIT_S = 10.0


@dataclass(frozen=True)
class Download:
    """A file to send: its status, and `read` from an offset."""

    status: FileStatus
    _storage: Storage
    _location: StorageLocation

    def read(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._storage.read(self._location, offset=offset, length=length)


def _cursor(name: str) -> str:
    return base64.urlsafe_b64encode(f"name:{name}".encode()).decode()


def _name_of(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    if not text.startswith("name:"):
        raise BadInput("not a cursor of a storage listing", fields={"after": "bad cursor"})
    return text.removeprefix("name:")


async def check_access(
    acl: AclService, user: User, uri: str | StorageLocation, action: Action, field: str = "uri"
) -> StorageLocation:
    """The location of ``uri`` if ``user`` may do ``action`` there: NOT_FOUND for whoever
    may not even list it, FORBIDDEN for whoever may list it only (the module docstring).
    Job submission checks a job's storage workdir with it too (``write``)."""
    location = uri if isinstance(uri, StorageLocation) else parse_storage_uri(uri, field)
    target = location.acl_uri
    if not await acl.check(user.subject, target, Action.LIST):
        raise NotFound(f"{location.uri} not found")
    if action > Action.LIST and not await acl.check(user.subject, target, action):
        raise Forbidden(
            f"{user.name} may not {action.label} {location.uri}",
            details={"uri": location.uri, "action": action.label},
        )
    return location


async def check_storage_workdir(acl: AclService, user: User, cluster: str, uri: str) -> None:
    """A job's working directory in storage: on the job's cluster, and one its submitter may
    write (a job may change what it works in)."""
    location = await check_access(acl, user, uri, Action.WRITE, "storageWorkdir")
    if location.cluster != cluster:
        raise BadInput(
            f"the job runs on cluster {cluster!r}: its storage workdir must be there too, "
            f"not on {location.cluster!r}",
            fields={"storageWorkdir": "another cluster"},
        )


class StorageService:
    def __init__(
        self,
        *,
        acl: AclService,
        storages: ClusterRegistry[Storage],
        max_upload_bytes: int,
        glob_limit: int = GLOB_LIMIT,
        usage_time_limit_s: float = USAGE_TIME_LIMIT_S,
    ) -> None:
        self._acl = acl
        self._storages = storages
        self.max_upload_bytes = max_upload_bytes
        self._glob_limit = glob_limit
        self._usage_time_limit_s = usage_time_limit_s

    async def _allowed(
        self, user: User, uri: str | StorageLocation, action: Action, field: str = "uri"
    ) -> tuple[Storage, StorageLocation]:
        location = await check_access(self._acl, user, uri, action, field)
        return self._storages.get(location.cluster), location

    # -- metadata --

    async def stat(self, user: User, uri: str) -> FileStatus:
        storage, location = await self._allowed(user, uri, Action.LIST)
        return await storage.stat(location)

    async def list(self, user: User, uri: str, page: PageRequest) -> Page[FileStatus]:
        """A directory's entries by name, a page at a time (forwards only)."""
        if not page.forwards:
            raise BadInput("a storage listing pages forwards: use first and after")
        storage, location = await self._allowed(user, uri, Action.LIST)
        after = _name_of(page.after) if page.after is not None else None
        items, more, total = await storage.list(location, after=after, limit=page.size)
        return Page(
            items=tuple(items),
            cursors=tuple(_cursor(item.name) for item in items),
            total_count=total,
            has_next_page=more,
            has_previous_page=after is not None,
        )

    async def glob(self, user: User, uri: str, pattern: str) -> GlobResult:
        storage, location = await self._allowed(user, uri, Action.LIST)
        return await storage.glob(location, pattern, limit=self._glob_limit)

    async def usage(self, user: User, uri: str) -> StorageUsage:
        storage, location = await self._allowed(user, uri, Action.LIST)
        return await storage.usage(location, time_limit_s=self._usage_time_limit_s)

    async def disk(self, user: User, uri: str) -> DiskUsage:
        """The disk of the cluster a project's storage is on."""
        storage, location = await self._allowed(user, uri, Action.LIST)
        return await storage.disk(location.cluster)

    async def partial_size(self, user: User, uri: str) -> int:
        storage, location = await self._allowed(user, uri, Action.WRITE)
        return await storage.partial_size(location)

    # -- changes --

    async def mkdir(self, user: User, uri: str, *, parents: bool = True) -> FileStatus:
        storage, location = await self._allowed(user, uri, Action.WRITE)
        return await storage.mkdir(location, parents=parents)

    async def remove(self, user: User, uri: str, *, recursive: bool = False) -> int:
        storage, location = await self._allowed(user, uri, Action.WRITE)
        return await storage.remove(location, recursive=recursive)

    async def move(self, user: User, source: str, target: str) -> FileStatus:
        storage, src = await self._allowed(user, source, Action.WRITE, "source")
        _, dst = await self._allowed(user, target, Action.WRITE, "target")
        self._same_cluster(src, dst)
        return await storage.move(src, dst)

    async def copy(self, user: User, source: str, target: str) -> FileStatus:
        storage, src = await self._allowed(user, source, Action.READ, "source")
        _, dst = await self._allowed(user, target, Action.WRITE, "target")
        self._same_cluster(src, dst)
        return await storage.copy(src, dst)

    @staticmethod
    def _same_cluster(source: StorageLocation, target: StorageLocation) -> None:
        if source.cluster != target.cluster:
            raise BadInput(
                "storage moves and copies stay on one cluster: download and upload instead",
                fields={"target": "another cluster"},
            )

    async def sync_plan(self, user: User, uri: str, files: Sequence[SyncFile]) -> SyncPlan:
        """Ready a directory to mirror a local one (`Storage.sync_plan`): one round trip
        that removes what went and says what to upload. Needs ``write`` on the directory."""
        if len(files) > MAX_SYNC_FILES:
            raise BadInput(
                f"a sync names at most {MAX_SYNC_FILES} files, not {len(files)}: "
                "exclude some in .gliaignore",
                fields={"files": "too many"},
            )
        storage, location = await self._allowed(user, uri, Action.WRITE)
        return await storage.sync_plan(location, files)

    # -- bytes --

    async def download(self, user: User, location: StorageLocation) -> Download:
        storage, location = await self._allowed(user, location, Action.READ)
        status = await storage.stat(location, follow=True)
        return Download(status=status, _storage=storage, _location=location)

    async def upload(
        self,
        user: User,
        location: StorageLocation,
        chunks: AsyncIterator[bytes],
        *,
        offset: int = 0,
        checksum: DeclaredChecksum | None = None,
        mtime: float | None = None,
        executable: bool = False,
        length: int | None = None,
    ) -> FileStatus:
        storage, location = await self._allowed(user, location, Action.WRITE)
        return await storage.write(
            location,
            chunks,
            offset=offset,
            checksum=checksum,
            max_bytes=self.max_upload_bytes,
            mtime=mtime,
            executable=executable,
            length=length,
        )

    async def upload_archive(
        self, user: User, location: StorageLocation, chunks: AsyncIterator[bytes]
    ) -> ArchiveResult:
        """The files of a tar stream, written below the directory ``location``: ``write`` on
        it covers every path beneath."""
        storage, location = await self._allowed(user, location, Action.WRITE)
        return await storage.write_archive(location, chunks, max_bytes=self.max_upload_bytes)

    async def download_archive(
        self, user: User, location: StorageLocation, paths: Sequence[tuple[str, ...]] | None
    ) -> AsyncIterator[bytes]:
        """A tar stream of the files at ``paths`` below the directory ``location`` (at most
        `ARCHIVE_MAX_PATHS`; None: every file below it, at any depth): ``read`` on it covers
        every path beneath."""
        if paths is not None and len(paths) > ARCHIVE_MAX_PATHS:
            raise BadInput(
                f"an archive holds at most {ARCHIVE_MAX_PATHS} files",
                fields={"paths": "too many"},
            )
        storage, location = await self._allowed(user, location, Action.READ)
        return await storage.read_archive(location, paths)
