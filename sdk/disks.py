"""Disks: a project's fixed-size filesystems on a cluster (`glia.disks`)."""

from __future__ import annotations

import builtins

from glia.disks import Disk, NewDisk
from glia.model import parse_input
from sdk import documents
from sdk.resource import Resource


class DisksResource(Resource):
    async def create(
        self,
        size_bytes: int,
        *,
        name: str | None = None,
        timeout_unused_s: float | None = None,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> Disk:
        """A new disk in ``project`` (the caller's personal one by default)."""
        new = parse_input(
            NewDisk,
            {
                "size_bytes": size_bytes,
                "name": name,
                "timeout_unused_s": timeout_unused_s,
                "cluster": cluster,
                "org": org,
                "project": project,
            },
        )
        data = await self._client.execute(documents.CREATE_DISK, {"input": new.to_wire()})
        return Disk.model_validate(data["createDisk"]["disk"])

    async def list(
        self, *, cluster: str | None = None, org: str | None = None, project: str | None = None
    ) -> builtins.list[Disk]:
        variables = {"cluster": cluster, "org": org, "project": project}
        data = await self._client.execute(documents.DISKS, variables)
        return [Disk.model_validate(d) for d in data["disks"]]

    async def get(
        self,
        disk: str,
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> Disk:
        """A disk by id, or by name in the project named."""
        variables = {"disk": disk, "cluster": cluster, "org": org, "project": project}
        data = await self._client.execute(documents.DISK, variables)
        return Disk.model_validate(data["disk"])

    async def delete(
        self,
        disk: str,
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> Disk:
        variables = {"input": {"disk": disk, "cluster": cluster, "org": org, "project": project}}
        data = await self._client.execute(documents.DELETE_DISK, variables)
        return Disk.model_validate(data["deleteDisk"]["disk"])
