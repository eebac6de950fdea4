"""Secrets: values a project's jobs need and nobody reads back.

A secret belongs to a project on a cluster, ``secret://CLUSTER/ORG/PROJECT/KEY``
(`glia.secrets`); permissions are checked on ``secret://CLUSTER/ORG/PROJECT``, which the
project's roles cover like its jobs and buckets (`glia.tenancy`): readers list the keys,
writers set and delete secrets. A caller who may not see the project (or the cluster) gets
NOT_FOUND, as for a project that does not exist.

Values are sealed with the secrets keyring (`control_plane.keyring`) before they reach the
database. No method returns a value to a caller of the API: the only way out is
`SecretsService.reveal_for_job`, for the control plane starting a job, which returns it as a
`pydantic.SecretBytes` (its repr hides it). No message, log line or error here holds a value.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from urllib.parse import quote

from pydantic import SecretBytes
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from control_plane.keyring import Keyring, Unreadable
from control_plane.services.acl import AclService
from control_plane.services.blobs import BlobsService
from control_plane.services.pages import Order, SortKey, keyset_page
from control_plane.services.projects import ProjectsService
from control_plane.store.models import ClusterRow, UserRow
from control_plane.store.secrets import SecretRow
from glia.acl import Action
from glia.auth import User, UserKind
from glia.clock import utcnow
from glia.errors import BadInput, Conflict, NotFound
from glia.pages import Page, PageRequest
from glia.secrets import (
    SCHEME,
    Secret,
    SecretRef,
    SecretsRotation,
    check_secret_key,
    check_secret_value,
    parse_secret_uri,
    secrets_uri,
)
from glia.tenancy import check_name, cluster_uri

# Rows a rotation reads and rewrites per transaction (each value up to 1 MiB).
ROTATION_BATCH = 50
# Who may rotate: a grant covering every secret (platform admins hold "*").
ALL_SECRETS_URI = f"{SCHEME}://"

_BY_KEY = Order[Secret](
    name="SECRET_KEY",
    keys=[SortKey[Secret](SecretRow.key, lambda secret: secret.key)],
    descending=False,
)


class SecretsService:
    def __init__(
        self,
        *,
        acl: AclService,
        projects: ProjectsService,
        blobs: BlobsService,
        keyring: Keyring,
        public_url: str,
        default_cluster: str,
    ) -> None:
        self._acl = acl
        self._projects = projects
        self._blobs = blobs
        self._keyring = keyring
        self._public_url = public_url.rstrip("/")
        self._default_cluster = default_cluster

    # -- names and permissions --------------------------------------------------------------

    def url(self, ref: SecretRef) -> str:
        """The byte route that sets a secret's value: ``<server>/api/secrets/C/O/P/KEY``."""
        parts = (ref.cluster, ref.org, ref.project, ref.key)
        return f"{self._public_url}/api/secrets/" + "/".join(quote(p, safe="") for p in parts)

    def place(
        self,
        caller: User,
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> tuple[str, str, str]:
        """The cluster, org and project a caller means: the default cluster, and their
        personal project when neither org nor project is named (a service account, having
        none, must name both)."""
        if caller.kind is not UserKind.USER and (org is None or project is None):
            raise BadInput(
                "a service account names the org and project of its secrets",
                fields={"project": "required"},
            )
        in_org = org or caller.name
        in_project = project or (caller.name if org is None else "")
        if not in_project:
            raise BadInput("name the project of the org", fields={"project": "required"})
        check_name(in_org, "org")
        check_name(in_project, "project")
        return cluster or self._default_cluster, in_org, in_project

    async def _require(
        self, session: AsyncSession, who: User, ref_place: tuple[str, str, str], action: Action
    ) -> None:
        """NotFound unless ``who`` may see the project, its secrets and the cluster;
        Forbidden unless they may also do ``action`` on the project's secrets."""
        cluster, org, project = ref_place
        await self._projects.row(session, who, org, project)
        place = secrets_uri(cluster, org, project)
        visible = await self._acl.check(who.subject, place, Action.LIST)
        if not visible or not await self._acl.check(who.subject, cluster_uri(cluster), Action.READ):
            raise NotFound(f"project {org}/{project} has no secrets on cluster {cluster!r}")
        await self._acl.require(who.subject, place, action)

    async def _row(self, session: AsyncSession, ref: SecretRef) -> SecretRow | None:
        return await session.scalar(
            select(SecretRow).where(
                SecretRow.cluster == ref.cluster,
                SecretRow.org == ref.org,
                SecretRow.project == ref.project,
                SecretRow.key == ref.key,
            )
        )

    def _secret(self, row: SecretRow, updated_by: str | None) -> Secret:
        ref = SecretRef(cluster=row.cluster, org=row.org, project=row.project, key=row.key)
        return Secret(
            key=row.key,
            uri=ref.uri,
            cluster=row.cluster,
            org=row.org,
            project=row.project,
            created_at=row.created_at,
            updated_at=row.updated_at,
            updated_by=updated_by,
            url=self.url(ref),
        )

    async def _user_name(self, session: AsyncSession, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        name = await session.scalar(select(UserRow.name).where(UserRow.id == user_id))
        return None if name is None else str(name)

    # -- the API's operations ---------------------------------------------------------------

    async def list(
        self,
        session: AsyncSession,
        caller: User,
        page: PageRequest,
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> Page[Secret]:
        """A project's secrets by key (its readers), values left out."""
        in_cluster, in_org, in_project = self.place(
            caller, cluster=cluster, org=org, project=project
        )
        await self._require(session, caller, (in_cluster, in_org, in_project), Action.READ)
        where = (
            SecretRow.cluster == in_cluster,
            SecretRow.org == in_org,
            SecretRow.project == in_project,
        )
        total = await session.scalar(select(func.count()).select_from(SecretRow).where(*where))
        query = (
            select(SecretRow, UserRow.name)
            .outerjoin(UserRow, UserRow.id == SecretRow.updated_by)
            .where(*where)
            .options(defer(SecretRow.ciphertext))
        )
        return await keyset_page(
            session,
            query,
            order=_BY_KEY,
            request=page,
            total=total or 0,
            to_item=lambda found: self._secret(found[0], found[1]),
        )

    async def put(
        self, session: AsyncSession, caller: User, uri: str, value: bytes
    ) -> tuple[Secret, bool]:
        """Set a secret's value (the project's writers): the secret, and whether it is new."""
        ref = parse_secret_uri(uri)
        await self._require(session, caller, (ref.cluster, ref.org, ref.project), Action.WRITE)
        sealed = self._keyring.seal(check_secret_value(value))
        now = utcnow()
        row = await self._row(session, ref)
        created = row is None
        if row is None:
            row = SecretRow(
                id=str(uuid.uuid4()),
                cluster=ref.cluster,
                org=ref.org,
                project=ref.project,
                key=ref.key,
                ciphertext=sealed,
                version=1,
                updated_by=caller.id,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise Conflict(
                    f"secret {ref.uri} was added by someone else at the same time: try again",
                    fields={"key": "taken"},
                ) from None
        else:
            row.ciphertext = sealed
            row.version = row.version + 1
            row.updated_by = caller.id
            row.updated_at = now
            await session.commit()
        return self._secret(row, caller.name), created

    async def delete(self, session: AsyncSession, caller: User, uri: str) -> Secret:
        """Delete a secret (the project's writers)."""
        ref = parse_secret_uri(uri)
        place = (ref.cluster, ref.org, ref.project)
        await self._require(session, caller, place, Action.LIST)
        row = await self._row(session, ref)
        if row is None:
            raise NotFound(f"secret {ref.uri} not found")
        await self._acl.require(caller.subject, ref.place_uri, Action.WRITE)
        secret = self._secret(row, await self._user_name(session, row.updated_by))
        await session.delete(row)
        await session.commit()
        return secret

    # -- the control plane's own use --------------------------------------------------------

    async def reveal_for_job(
        self, session: AsyncSession, *, owner: User, uri: str | SecretRef
    ) -> SecretBytes:
        """The value of a secret for a job of ``owner``'s, which must be allowed to use it
        now: write on the project's secrets (its writers, who run its jobs; readers only see
        the keys). NotFound for a secret the owner may not see or that does not exist,
        Forbidden for one they may see but not use, Conflict when no key of the keyring
        opens it. Never call it to answer an API caller: a value leaves the control plane
        only into a job's workload (its environment or a 0400 file)."""
        ref = uri if isinstance(uri, SecretRef) else parse_secret_uri(uri)
        check_secret_key(ref.key)
        await self._require(session, owner, (ref.cluster, ref.org, ref.project), Action.LIST)
        row = await self._row(session, ref)
        if row is None:
            raise NotFound(f"secret {ref.uri} not found")
        await self._acl.require(owner.subject, ref.place_uri, Action.WRITE)
        try:
            return SecretBytes(self._keyring.open(row.ciphertext))
        except Unreadable:
            raise Conflict(
                f"secret {ref.uri} cannot be opened with this server's keys "
                "(GLIA_SECRETS_KEYS): add the key it was sealed with, or set it again"
            ) from None

    # -- rotation ---------------------------------------------------------------------------

    async def rotate_key(self, session: AsyncSession, caller: User) -> SecretsRotation:
        """Re-seal every secret and imported bucket credential under the keyring's current
        key (platform admins); those already under it are left alone, those no key opens
        are listed. Batches of `ROTATION_BATCH` rows, each committed; a row written since it
        was read (its version moved) already has the current key and is skipped."""
        await self._acl.require(caller.subject, ALL_SECRETS_URI, Action.MANAGE)
        rotated = 0
        unreadable: list[str] = []
        last = ""
        while True:
            batch: Sequence[tuple[str, int, str]] = [
                (row[0], row[1], row[2])
                for row in await session.execute(
                    select(SecretRow.id, SecretRow.version, SecretRow.ciphertext)
                    .where(SecretRow.id > last)
                    .order_by(SecretRow.id)
                    .limit(ROTATION_BATCH)
                )
            ]
            if not batch:
                break
            for secret_id, version, ciphertext in batch:
                if self._keyring.is_current(ciphertext):
                    continue
                try:
                    sealed = self._keyring.rotate(ciphertext)
                except Unreadable:
                    unreadable.append(secret_id)
                    continue
                done = await session.execute(
                    update(SecretRow)
                    .where(SecretRow.id == secret_id, SecretRow.version == version)
                    .values(ciphertext=sealed)
                )
                rotated += getattr(done, "rowcount", 0) or 0
            await session.commit()
            last = batch[-1][0]
        unreadable_uris = []
        for secret_id in unreadable:
            row = await session.get(SecretRow, secret_id, options=[defer(SecretRow.ciphertext)])
            if row is not None:
                ref = SecretRef(cluster=row.cluster, org=row.org, project=row.project, key=row.key)
                unreadable_uris.append(ref.uri)
        buckets, lost = await self._blobs.rotate_credentials(session)
        gateways, lost_gateways = await self._rotate_gateway_secrets(session)
        return SecretsRotation(
            secrets=rotated,
            bucket_credentials=buckets,
            gateway_secrets=gateways,
            unreadable=(
                *unreadable_uris,
                *(f"blob-credentials:{i}" for i in lost),
                *(f"gateway-secret:{name}" for name in lost_gateways),
            ),
        )

    async def _rotate_gateway_secrets(self, session: AsyncSession) -> tuple[int, Sequence[str]]:
        """Re-seal the remote clusters' gateway secrets (a few rows: one pass)."""
        rotated, lost = 0, []
        rows = await session.execute(
            select(ClusterRow.name, ClusterRow.gateway_secret).where(
                ClusterRow.gateway_secret.is_not(None)
            )
        )
        for name, sealed in rows.all():
            if sealed is None or self._keyring.is_current(sealed):
                continue
            try:
                resealed = self._keyring.rotate(sealed)
            except Unreadable:
                lost.append(name)
                continue
            await session.execute(
                update(ClusterRow)
                .where(ClusterRow.name == name, ClusterRow.gateway_secret == sealed)
                .values(gateway_secret=resealed)
            )
            rotated += 1
        await session.commit()
        return rotated, lost
