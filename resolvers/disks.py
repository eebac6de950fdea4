from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia import disks as kernel
from graph.context import Info
from graph.types.base import model_from_input
from graph.types.disks import CreateDiskInput, DeleteDiskInput, Disk, DiskPayload

NameArg = Annotated[str | None, strawberry.argument(description="Narrow to this one")]


@strawberry.type
class DisksQuery:
    @strawberry.field(
        description="The disks the caller may read (their project's readers), by place and "
        "creation; narrowed to a cluster, org or project when given"
    )
    async def disks(
        self,
        info: Info,
        cluster: NameArg = None,
        org: NameArg = None,
        project: NameArg = None,
    ) -> list[Disk]:
        ctx = info.context
        found = await ctx.platform.disks.list(
            ctx.session, await ctx.user(), cluster=cluster, org=org, project=project
        )
        return cast(list[Disk], found)

    @strawberry.field(
        description="A disk by id, or by name in the project named (the caller's personal "
        "one by default)"
    )
    async def disk(
        self,
        info: Info,
        disk: Annotated[str, strawberry.argument(description="Its id or name")],
        cluster: NameArg = None,
        org: NameArg = None,
        project: NameArg = None,
    ) -> Disk:
        ctx = info.context
        found = await ctx.platform.disks.get(
            ctx.session, await ctx.user(), disk, cluster=cluster, org=org, project=project
        )
        return cast(Disk, found)


@strawberry.type
class DisksMutation:
    @strawberry.mutation(
        description="Create a disk in a project (its writers): a filesystem of its size on "
        "the cluster, mounted read-write by one job at a time"
    )
    async def create_disk(
        self, info: Info, input: Annotated[CreateDiskInput, strawberry.argument(description="It")]
    ) -> DiskPayload:
        ctx = info.context
        new = model_from_input(kernel.NewDisk, input)
        disk = await ctx.platform.disks.create(ctx.session, await ctx.user(), new)
        return DiskPayload(disk=cast(Disk, disk))

    @strawberry.mutation(
        description="Delete a disk and its files (its project's writers); not while a job "
        "holds it (CONFLICT)"
    )
    async def delete_disk(
        self, info: Info, input: Annotated[DeleteDiskInput, strawberry.argument(description="It")]
    ) -> DiskPayload:
        ctx = info.context
        disk = await ctx.platform.disks.delete(
            ctx.session,
            await ctx.user(),
            input.disk,
            cluster=input.cluster,
            org=input.org,
            project=input.project,
        )
        return DiskPayload(disk=cast(Disk, disk))
