from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia.pages import PageRequest
from glia.storage import SyncFile
from graph.context import Info
from graph.types.base import model_from_input
from graph.types.pages import AFTER, FIRST, Connection
from graph.types.storage import (
    BigInt,
    MakeStorageDirectoryInput,
    RemoveStorageEntryInput,
    RemoveStorageEntryPayload,
    StorageDiskUsage,
    StorageEntry,
    StorageEntryPayload,
    StorageGlobResult,
    StorageTransferInput,
    StorageUsage,
    SyncStorageDirectoryInput,
    SyncStorageDirectoryPayload,
)

URI = strawberry.argument(description="`storage://CLUSTER/ORG/PROJECT/path`")


@strawberry.type
class StorageQuery:
    @strawberry.field(description="A file or directory of a project's storage (stat)")
    async def storage_entry(self, info: Info, uri: Annotated[str, URI]) -> StorageEntry:
        ctx = info.context
        found = await ctx.platform.storage.stat(await ctx.user(), uri)
        return cast(StorageEntry, found)

    @strawberry.field(description="A directory's entries, by name, a page at a time (ls)")
    async def storage_entries(
        self,
        info: Info,
        uri: Annotated[str, URI],
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Connection[StorageEntry]:
        ctx = info.context
        page = model_from_input(PageRequest, {"first": first, "after": after})
        found = await ctx.platform.storage.list(await ctx.user(), uri, page)
        return Connection[StorageEntry].of(found)

    @strawberry.field(
        description="The entries under a directory whose path matches a pattern: `*`, `?`, "
        "`[…]` within a name, `**` across directories; at most 1,000"
    )
    async def storage_glob(
        self,
        info: Info,
        uri: Annotated[str, URI],
        pattern: Annotated[str, strawberry.argument(description="`*.csv`, `data/**/*.pt`")],
    ) -> StorageGlobResult:
        ctx = info.context
        found = await ctx.platform.storage.glob(await ctx.user(), uri, pattern)
        return cast(StorageGlobResult, found)

    @strawberry.field(description="How much a file or tree holds (du), within a time limit")
    async def storage_usage(self, info: Info, uri: Annotated[str, URI]) -> StorageUsage:
        ctx = info.context
        return cast(StorageUsage, await ctx.platform.storage.usage(await ctx.user(), uri))

    @strawberry.field(description="The space of the disk a project's storage is on (df)")
    async def storage_disk(self, info: Info, uri: Annotated[str, URI]) -> StorageDiskUsage:
        ctx = info.context
        return cast(StorageDiskUsage, await ctx.platform.storage.disk(await ctx.user(), uri))

    @strawberry.field(
        description="How many bytes an interrupted upload to this file kept: `PUT "
        "/api/storage/…?offset=N` continues it (0: start over)"
    )
    async def storage_upload_offset(self, info: Info, uri: Annotated[str, URI]) -> BigInt:
        ctx = info.context
        return BigInt(await ctx.platform.storage.partial_size(await ctx.user(), uri))


@strawberry.type
class StorageMutation:
    @strawberry.mutation(description="Make a directory, and its parents (mkdir -p)")
    async def make_storage_directory(
        self,
        info: Info,
        input: Annotated[
            MakeStorageDirectoryInput, strawberry.argument(description="The directory")
        ],
    ) -> StorageEntryPayload:
        ctx = info.context
        made = await ctx.platform.storage.mkdir(await ctx.user(), input.uri, parents=input.parents)
        return StorageEntryPayload(entry=cast(StorageEntry, made))

    @strawberry.mutation(description="Remove a file, or a directory with `recursive` (rm -r)")
    async def remove_storage_entry(
        self,
        info: Info,
        input: Annotated[
            RemoveStorageEntryInput, strawberry.argument(description="What to remove")
        ],
    ) -> RemoveStorageEntryPayload:
        ctx = info.context
        removed = await ctx.platform.storage.remove(
            await ctx.user(), input.uri, recursive=input.recursive
        )
        return RemoveStorageEntryPayload(removed=removed)

    @strawberry.mutation(description="Move or rename a file or directory (mv)")
    async def move_storage_entry(
        self,
        info: Info,
        input: Annotated[
            StorageTransferInput, strawberry.argument(description="From where to where")
        ],
    ) -> StorageEntryPayload:
        ctx = info.context
        moved = await ctx.platform.storage.move(await ctx.user(), input.source, input.target)
        return StorageEntryPayload(entry=cast(StorageEntry, moved))

    @strawberry.mutation(description="Copy a file or directory inside a cluster's storage (cp -r)")
    async def copy_storage_entry(
        self,
        info: Info,
        input: Annotated[
            StorageTransferInput, strawberry.argument(description="From where to where")
        ],
    ) -> StorageEntryPayload:
        ctx = info.context
        copied = await ctx.platform.storage.copy(await ctx.user(), input.source, input.target)
        return StorageEntryPayload(entry=cast(StorageEntry, copied))

    @strawberry.mutation(
        description="Ready a directory to mirror a local one, in one round trip: remove what "
        "the local one no longer holds, and list the files to upload (`PUT /api/storage/…` "
        "with `X-Glia-Mtime`) because the server lacks them or holds them with another size, "
        "time or executable bit. `glia run` syncs its working directory this way"
    )
    async def sync_storage_directory(
        self,
        info: Info,
        input: Annotated[
            SyncStorageDirectoryInput,
            strawberry.argument(description="The directory and the local files"),
        ],
    ) -> SyncStorageDirectoryPayload:
        ctx = info.context
        files = [model_from_input(SyncFile, file) for file in input.files]
        plan = await ctx.platform.storage.sync_plan(await ctx.user(), input.uri, files)
        return cast(SyncStorageDirectoryPayload, plan)
