"""A job's volumes at submission (`glia.volumes`): each reference resolved to what it names in
the job's project and cluster, and the submitter's permission checked on it — read for a
read-only mount, write otherwise. What the submitter may not read is refused as NOT_FOUND,
what they may read but not write as FORBIDDEN, each naming the volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.acl import AclService
from control_plane.services.disks import DisksService
from control_plane.services.secrets import SecretsService
from control_plane.services.storage import check_access
from glia.acl import Action
from glia.auth import User
from glia.disks import DiskStatus
from glia.errors import BadInput
from glia.storage import parse_storage_uri
from glia.volumes import SecretEnv, SecretFile, Volume, VolumeKind


@dataclass(frozen=True)
class JobPlace:
    """Where a job runs: its cluster, org and project."""

    cluster: str
    org: str
    project: str


class VolumesService:
    def __init__(self, *, acl: AclService, disks: DisksService, secrets: SecretsService) -> None:
        self._acl = acl
        self._disks = disks
        self._secrets = secrets

    async def resolve(
        self,
        session: AsyncSession,
        user: User,
        place: JobPlace,
        volumes: Sequence[Volume],
        secret_env: Sequence[SecretEnv],
    ) -> tuple[list[Volume], list[SecretEnv]]:
        """The volumes with their references made absolute (storage URIs, disk ids), once
        ``user`` may use each."""
        resolved = [await self._resolve(session, user, place, volume) for volume in volumes]
        env = [
            var.model_copy(update={"key": await self._secret(session, user, place, var.key)})
            for var in secret_env
        ]
        return resolved, env

    async def _secret(self, session: AsyncSession, user: User, place: JobPlace, ref: str) -> str:
        """A secret's URI, once ``user`` may give it to a job (its project's writers)."""
        uri = ref if ref.startswith("secret://") else secret_uri(place, ref)
        # The value is opened to be sure the job will get it, and dropped.
        await self._secrets.reveal_for_job(session, owner=user, uri=uri)
        return uri

    async def disk_sizes(self, session: AsyncSession, volumes: Sequence[Volume]) -> dict[str, int]:
        """The size of each disk among a job's (resolved) volumes: a cluster that makes a
        disk when a job first mounts it (Kubernetes: its claim) makes it this big."""
        disks = [volume.ref for volume in volumes if volume.kind is VolumeKind.DISK]
        return await self._disks.sizes(session, disks)

    async def reveal(
        self,
        session: AsyncSession,
        owner: User,
        volumes: Sequence[Volume],
        env: Sequence[SecretEnv],
    ) -> tuple[list[SecretFile], dict[str, SecretStr]]:
        """What a starting job gets of its secrets: its secret volumes' contents and its
        secret variables' values, opened for its owner (who must still be allowed)."""
        files = [
            SecretFile(
                mount_path=volume.mount_path,
                content=await self._secrets.reveal_for_job(session, owner=owner, uri=volume.ref),
            )
            for volume in volumes
            if volume.kind is VolumeKind.SECRET
        ]
        values: dict[str, SecretStr] = {}
        for var in env:
            value = await self._secrets.reveal_for_job(session, owner=owner, uri=var.key)
            try:
                values[var.name] = SecretStr(value.get_secret_value().decode())
            except UnicodeDecodeError:
                raise BadInput(
                    f"secret {var.key} is not text: mount it as a file instead",
                    fields={"secretEnv": "not text"},
                ) from None
        return files, values

    async def _resolve(
        self, session: AsyncSession, user: User, place: JobPlace, volume: Volume
    ) -> Volume:
        action = Action.READ if volume.read_only else Action.WRITE
        if volume.kind is VolumeKind.STORAGE:
            uri = storage_uri(place, volume.ref)
            location = parse_storage_uri(uri, "volumes")
            if location.cluster != place.cluster:
                raise BadInput(
                    f"volume {volume.ref!r}: the job runs on cluster {place.cluster!r}, its "
                    f"storage is on {location.cluster!r}",
                    fields={"volumes": "another cluster"},
                )
            await check_access(self._acl, user, location, action, "volumes")
            return volume.model_copy(update={"ref": location.uri})
        if volume.kind is VolumeKind.DISK:
            row = await self._disks.row(
                session,
                user,
                volume.ref,
                action,
                cluster=place.cluster,
                org=place.org,
                project=place.project,
            )
            if row.cluster != place.cluster:
                raise BadInput(
                    f"disk {volume.ref!r} is on cluster {row.cluster!r}, the job runs on "
                    f"{place.cluster!r}",
                    fields={"volumes": "another cluster"},
                )
            if row.status != DiskStatus.READY.value:
                raise BadInput(
                    f"disk {volume.ref!r} is {row.status}: {row.status_description or ''}",
                    fields={"volumes": f"disk {row.status}"},
                )
            return volume.model_copy(update={"ref": row.id})
        return volume.model_copy(
            update={"ref": await self._secret(session, user, place, volume.ref)}
        )


def storage_uri(place: JobPlace, ref: str) -> str:
    """A storage reference as a URI: ``data`` in the job's project, ``/ORG/PROJECT/data`` in
    another project of its cluster, ``//CLUSTER/ORG/PROJECT/data`` or ``storage://…``."""
    if ref.startswith("storage://"):
        return ref
    if ref.startswith("//"):
        return f"storage:{ref}"
    if ref.startswith("/"):
        return f"storage://{place.cluster}{ref}"
    return f"storage://{place.cluster}/{place.org}/{place.project}/{ref}"


def secret_uri(place: JobPlace, key: str) -> str:
    return f"secret://{place.cluster}/{place.org}/{place.project}/{key}"
