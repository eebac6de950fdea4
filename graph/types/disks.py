from __future__ import annotations

import strawberry

from glia import disks as kernel
from graph.types.base import expose_enum, field_description, input_type, object_type
from graph.types.scalars import BigInt

DiskStatus = expose_enum(kernel.DiskStatus)


@object_type(kernel.Disk)
class Disk:
    size_bytes: BigInt = strawberry.field(description=field_description(kernel.Disk, "size_bytes"))
    used_bytes: BigInt | None = strawberry.field(
        description=field_description(kernel.Disk, "used_bytes")
    )


@input_type(kernel.NewDisk, name="CreateDiskInput")
class CreateDiskInput:
    size_bytes: BigInt = strawberry.field(
        description=field_description(kernel.NewDisk, "size_bytes")
    )


@strawberry.input(description="A disk to delete")
class DeleteDiskInput:
    disk: str = strawberry.field(description="Its id, or its name in the project named")
    cluster: str | None = strawberry.field(default=None, description="The cluster of a name")
    org: str | None = strawberry.field(default=None, description="The org of a name")
    project: str | None = strawberry.field(default=None, description="The project of a name")


@strawberry.type(description="The disk created or deleted")
class DiskPayload:
    disk: Disk = strawberry.field(description="The disk (as it was, when deleted)")
