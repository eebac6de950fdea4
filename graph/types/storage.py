"""GraphQL's view of the clusters' file storage (metadata only: bytes go over /api/storage)."""

from __future__ import annotations

import strawberry

from glia import storage as kernel
from graph.types.base import expose_enum, field_description, input_type, object_type
from graph.types.scalars import BigInt

FileType = expose_enum(kernel.FileType)


@object_type(kernel.FileStatus, name="StorageEntry")
class StorageEntry:
    size: BigInt = strawberry.field(description=field_description(kernel.FileStatus, "size"))


@object_type(kernel.GlobResult, name="StorageGlobResult")
class StorageGlobResult:
    pass


@object_type(kernel.StorageUsage)
class StorageUsage:
    size: BigInt = strawberry.field(description=field_description(kernel.StorageUsage, "size"))


@object_type(kernel.DiskUsage, name="StorageDiskUsage")
class StorageDiskUsage:
    total: BigInt = strawberry.field(description=field_description(kernel.DiskUsage, "total"))
    used: BigInt = strawberry.field(description=field_description(kernel.DiskUsage, "used"))
    free: BigInt = strawberry.field(description=field_description(kernel.DiskUsage, "free"))


URI = "`storage://CLUSTER/ORG/PROJECT/path`"


@strawberry.input(description="A directory to make, with its parents")
class MakeStorageDirectoryInput:
    uri: str = strawberry.field(description=f"Where: {URI}")
    parents: bool = strawberry.field(
        default=True, description="Make missing parents too, and accept one that exists (-p)"
    )


@strawberry.input(description="A file or directory to remove")
class RemoveStorageEntryInput:
    uri: str = strawberry.field(description=f"What: {URI}")
    recursive: bool = strawberry.field(
        default=False, description="Remove a directory and everything in it (-r)"
    )


@strawberry.input(description="A file or directory to move or copy, on one cluster")
class StorageTransferInput:
    source: str = strawberry.field(description=f"From: {URI}")
    target: str = strawberry.field(
        description=f"To: {URI}; into it, when it is a directory that exists"
    )


@strawberry.type(description="The entry as it is now")
class StorageEntryPayload:
    entry: StorageEntry = strawberry.field(description="The entry")


@strawberry.type(description="What went")
class RemoveStorageEntryPayload:
    removed: int = strawberry.field(description="How many files and directories were removed")


@input_type(kernel.SyncFile, name="StorageSyncFile")
class StorageSyncFile:
    size: BigInt = strawberry.field(description=field_description(kernel.SyncFile, "size"))


@strawberry.input(description="A local directory's files, for a directory of storage to mirror")
class SyncStorageDirectoryInput:
    uri: str = strawberry.field(description=f"The directory that mirrors them: {URI}")
    files: list[StorageSyncFile] = strawberry.field(
        description="Every file the local directory holds (at most 5,000)"
    )


@object_type(kernel.SyncPlan, name="SyncStorageDirectoryPayload")
class SyncStorageDirectoryPayload:
    pass
