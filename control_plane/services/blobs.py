"""Buckets and their objects: who may do what, where a bucket's objects are, and how to reach
them from outside.

A bucket belongs to a project on a cluster, ``blob://CLUSTER/ORG/PROJECT/BUCKET``; the
project's readers read it and its writers write it (`glia.tenancy`), and a bucket nobody may
read is NOT_FOUND, as one that does not exist. A public bucket's objects may be read by
anyone, without a token; making a bucket public is for those who manage it.

The objects are a provider's (`cluster_gateway.blobs`): by default the cluster's own, kept
on the filesystem where the cluster is (under the control plane's data dir for the clusters
it runs itself, behind `glia gateway serve` for a remote one: `RemoteBlobStore`), or the S3
bucket an import named, with its credentials kept sealed by the secrets keyring
(`control_plane.keyring`, `blob_secrets`), never returned or logged; `rotate_credentials`
re-seals them under the keyring's current key.

Who calls is an `Accessor`: a signed-in user, a user acting through one of their access keys
(limited to its buckets, read-only if it says so), or nobody (public buckets only). Signed
URLs carry their own proof: an HMAC of the method, the path and the expiry with a key derived
from the server's secret, or S3's own presigning for S3 buckets.
"""

from __future__ import annotations

import asyncio
import builtins
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cluster_gateway.blobs.base import BlobStore
from control_plane.keyring import Keyring, Unreadable
from control_plane.services.acl import AclService
from control_plane.services.clusters import ClusterRegistry
from control_plane.services.projects import ProjectsService
from control_plane.settings import Settings
from control_plane.store.blobs import BlobCredentialRow, BlobSecretRow, BucketRow
from control_plane.store.database import Database
from control_plane.store.models import UserRow
from glia.acl import Action
from glia.auth import User, UserKind
from glia.blobs import (
    DEFAULT_SIGNED_URL_S,
    MAX_OBJECT_PAGE,
    MAX_SIGNED_URL_S,
    BlobCredential,
    BlobObject,
    BlobProvider,
    BlobRef,
    Bucket,
    ImportedBucket,
    MultipartUpload,
    NewBucket,
    ObjectPage,
    SignedUrl,
    UploadedPart,
    bucket_uri,
    check_key,
    check_prefix,
    parse_blob_uri,
)
from glia.errors import BadInput, Conflict, Forbidden, NotFound, Unauthenticated, Unavailable
from glia.tenancy import cluster_uri

# Glob listings read at most this many keys before they give up (and say so).
MAX_GLOB_SCAN = 100_000
MAX_CREDENTIALS_PER_USER = 100
ACCESS_KEY_PREFIX = "GLIA"
_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits
_ACCESS_KEY = re.compile(ACCESS_KEY_PREFIX + r"[A-Z0-9]{16}")
# What a cluster, org or project name may be (a filter naming anything else matches nothing).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Accessor:
    """Who calls: a user (None: nobody signed in), and how far an access key limits them."""

    user: User | None
    bucket_ids: frozenset[str] | None = None
    read_only: bool = False
    # A signed URL's holder: its signature stands for the permission (checked by the route).
    signed: bool = False

    @classmethod
    def of(cls, user: User | None) -> Accessor:
        return cls(user=user)


@dataclass(frozen=True)
class S3Config:
    """Where the default cluster's own buckets go when its provider is S3."""

    endpoint_url: str | None
    region: str | None
    access_key_id: str
    secret_access_key: str = field(repr=False)
    bucket_prefix: str = "glia-"


def blob_s3_config(settings: Settings) -> S3Config | None:
    """The settings' S3 provider for the cluster's buckets; None for the filesystem."""
    if settings.blob_provider == BlobProvider.FILESYSTEM.value:
        return None
    if settings.blob_provider != BlobProvider.S3.value:
        raise ValueError(f"GLIA_BLOB_PROVIDER is filesystem or s3, not {settings.blob_provider!r}")
    secret = settings.blob_s3_secret_access_key
    if not settings.blob_s3_access_key_id or secret is None:
        raise ValueError(
            "GLIA_BLOB_PROVIDER=s3 needs GLIA_BLOB_S3_ACCESS_KEY_ID and _SECRET_ACCESS_KEY"
        )
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", settings.blob_s3_bucket_prefix):
        raise ValueError("GLIA_BLOB_S3_BUCKET_PREFIX: up to 31 lowercase letters, digits, '-'")
    return S3Config(
        endpoint_url=settings.blob_s3_endpoint_url,
        region=settings.blob_s3_region,
        access_key_id=settings.blob_s3_access_key_id,
        secret_access_key=secret.get_secret_value(),
        bucket_prefix=settings.blob_s3_bucket_prefix,
    )


@dataclass(frozen=True)
class ObjectTarget:
    """A bucket the caller may use as asked, and the store that holds its objects."""

    bucket: Bucket
    physical_name: str
    store: BlobStore


async def refuse_private_endpoint(endpoint_url: str) -> None:
    """BAD_USER_INPUT for an endpoint on this host or a private network: importing a bucket
    makes the server connect where a project writer says, which must not reach what only the
    server can (its metadata service, its database, other internal hosts). Admins allow it
    with ``GLIA_BLOB_IMPORT_PRIVATE_ENDPOINTS``. The name is resolved here and again when
    connecting, so a name that changes its answer in between is not caught (an egress
    policy on the host is the complete answer)."""
    host = urlsplit(endpoint_url).hostname
    if not host:
        raise BadInput("the endpoint has no host", fields={"endpointUrl": "no host"})
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        raise BadInput(
            f"the endpoint's host {host!r} does not resolve", fields={"endpointUrl": "unknown"}
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise BadInput(
                f"the endpoint {host!r} is on this host or a private network ({address}): "
                "only public endpoints may be imported unless an admin allows private ones "
                "(GLIA_BLOB_IMPORT_PRIVATE_ENDPOINTS)",
                fields={"endpointUrl": "not a public address"},
            )


class BlobsService:
    def __init__(
        self,
        *,
        db: Database,
        acl: AclService,
        projects: ProjectsService,
        cluster_blobs: ClusterRegistry[BlobStore],
        secret_key: str,
        public_url: str,
        default_cluster: str,
        cluster_s3: S3Config | None = None,
        import_private_endpoints: bool = False,
        keyring: Keyring | None = None,
    ) -> None:
        self._import_private_endpoints = import_private_endpoints
        self._db = db
        self._acl = acl
        self._projects = projects
        self._cluster_blobs = cluster_blobs
        self._public_url = public_url.rstrip("/")
        self._default_cluster = default_cluster
        self._keyring = keyring or Keyring.from_config(secret_key=secret_key, secrets_keys=None)
        self._url_key = hashlib.sha256(b"glia-blob-urls\x00" + secret_key.encode()).digest()
        self._stores: dict[str, BlobStore] = {}
        # The default cluster's own buckets on S3, when configured so.
        self._cluster_s3 = cluster_s3

    async def close(self) -> None:
        stores, self._stores = self._stores, {}
        for store in stores.values():
            await store.close()

    # -- where objects are ------------------------------------------------------------------

    def _store(self, row: BucketRow) -> BlobStore:
        if row.provider == BlobProvider.FILESYSTEM.value:
            try:
                return self._cluster_blobs.get(row.cluster)
            except NotFound:  # its gateway is not open (the cluster's reason says why)
                raise Unavailable(f"cluster {row.cluster!r} cannot be reached now") from None
        from cluster_gateway.blobs.s3 import S3BlobStore

        if row.credentials_ref is None:  # one of the cluster's own buckets
            config = self._cluster_s3
            if config is None or row.cluster != self._default_cluster:
                raise Unavailable(f"cluster {row.cluster!r} has no S3 provider configured")
            key = f"s3-cluster:{row.cluster}"
            if key not in self._stores:
                self._stores[key] = S3BlobStore(
                    endpoint_url=config.endpoint_url,
                    region=config.region,
                    access_key_id=config.access_key_id,
                    secret_access_key=config.secret_access_key,
                )
            return self._stores[key]
        key = f"s3:{row.id}"
        if key not in self._stores:
            if row.secret is None:
                raise NotFound(f"bucket {row.name!r} lost its provider credentials")
            try:
                keys = json.loads(self._keyring.open(row.secret.ciphertext))
            except (Unreadable, ValueError):
                raise Conflict(
                    f"the credentials of bucket {row.name!r} cannot be read with this "
                    "server's keys (GLIA_SECRETS_KEYS, GLIA_SECRET_KEY): import it again"
                ) from None
            self._stores[key] = S3BlobStore(
                endpoint_url=row.endpoint_url,
                region=row.region,
                access_key_id=keys["access_key_id"],
                secret_access_key=keys["secret_access_key"],
            )
        return self._stores[key]

    def _bucket(self, row: BucketRow) -> Bucket:
        path = "/".join(quote(part, safe="") for part in (row.cluster, row.org, row.project))
        return Bucket(
            name=row.name,
            uri=bucket_uri(row.cluster, row.org, row.project, row.name),
            cluster=row.cluster,
            org=row.org,
            project=row.project,
            provider=BlobProvider(row.provider),
            public=row.public,
            imported=row.credentials_ref is not None or row.endpoint_url is not None,
            created_at=row.created_at,
            url=f"{self._public_url}/api/blob/{path}/{row.name}",
        )

    # -- permissions ------------------------------------------------------------------------

    async def _row(self, session: AsyncSession, ref: BlobRef) -> BucketRow | None:
        return await session.scalar(
            select(BucketRow).where(
                BucketRow.cluster == ref.cluster,
                BucketRow.org == ref.org,
                BucketRow.project == ref.project,
                BucketRow.name == ref.bucket,
            )
        )

    async def _allowed(
        self, session: AsyncSession, who: Accessor, ref: BlobRef, action: Action
    ) -> BucketRow:
        """The bucket, if ``who`` may do ``action`` on ``ref`` (NotFound for a caller who may
        not read it, as for none; Forbidden for one who may read but not do this)."""
        row = await self._row(session, ref)
        if who.signed:
            if row is None:
                raise NotFound(f"bucket {ref.bucket_uri} not found")
            return row
        subject = who.user.subject if who.user is not None else None
        in_scope = row is not None and (who.bucket_ids is None or row.id in who.bucket_ids)
        readable = (
            row is not None
            and in_scope
            and (
                row.public
                or (
                    subject is not None
                    and await self._acl.check(subject, ref.bucket_uri, Action.READ)
                )
            )
        )
        if not readable:
            if subject is None:
                raise Unauthenticated("log in first: send Authorization: Bearer <token>")
            raise NotFound(f"bucket {ref.bucket_uri} not found")
        assert row is not None
        if action > Action.READ:
            if subject is None:
                raise Unauthenticated("log in first: send Authorization: Bearer <token>")
            if who.read_only:
                raise Forbidden(
                    "this access key may only read",
                    details={"subject": subject, "uri": ref.uri, "action": action.label},
                )
            await self._acl.require(subject, ref.uri, action)
        return row

    async def target(
        self, session: AsyncSession, who: Accessor, uri: str, action: Action
    ) -> tuple[ObjectTarget, BlobRef]:
        """The bucket of ``uri`` and its store, once ``who`` may do ``action`` on it."""
        ref = parse_blob_uri(uri)
        row = await self._allowed(session, who, ref, action)
        return ObjectTarget(self._bucket(row), row.physical_name, self._store(row)), ref

    async def _place(
        self, session: AsyncSession, caller: User, new: NewBucket
    ) -> tuple[str, str, str]:
        if caller.kind is not UserKind.USER and (new.org is None or new.project is None):
            raise BadInput(
                "a service account names the org and project of a bucket",
                fields={"project": "required"},
            )
        cluster = new.cluster or self._default_cluster
        org = new.org or caller.name
        project = new.project or (caller.name if new.org is None else "")
        if not project:
            raise BadInput("name the project of the org", fields={"project": "required"})
        await self._projects.row(session, caller, org, project)
        if not await self._acl.check(caller.subject, cluster_uri(cluster), Action.READ):
            raise NotFound(f"cluster {cluster!r} not found")
        place = f"blob://{cluster}/{org}/{project}"
        await self._acl.require(caller.subject, place, Action.WRITE)
        if new.public:
            await self._acl.require(
                caller.subject, bucket_uri(cluster, org, project, new.name), Action.MANAGE
            )
        return cluster, org, project

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, session: AsyncSession, caller: User, new: NewBucket) -> Bucket:
        """A new bucket on the cluster's own provider (project writers; public: managers)."""
        cluster, org, project = await self._place(session, caller, new)
        ref = BlobRef(cluster=cluster, org=org, project=project, bucket=new.name)
        if await self._row(session, ref) is not None:
            raise Conflict(f"bucket {ref.bucket_uri} exists already", fields={"name": "taken"})
        row = BucketRow(
            id=str(uuid.uuid4()),
            cluster=cluster,
            org=org,
            project=project,
            name=new.name,
            provider=BlobProvider.FILESYSTEM.value,
            physical_name=uuid.uuid4().hex,
            public=new.public,
            created_by=caller.id,
        )
        if self._cluster_s3 is not None and cluster == self._default_cluster:
            row.provider = BlobProvider.S3.value
            row.physical_name = self._cluster_s3.bucket_prefix + uuid.uuid4().hex[:24]
        await self._store(row).create_bucket(row.physical_name)
        return await self._insert(session, row, ref)

    async def _insert(self, session: AsyncSession, row: BucketRow, ref: BlobRef) -> Bucket:
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise Conflict(
                f"bucket {ref.bucket_uri} exists already", fields={"name": "taken"}
            ) from None
        return self._bucket(row)

    async def import_bucket(
        self, session: AsyncSession, caller: User, new: ImportedBucket
    ) -> Bucket:
        """An existing S3 bucket brought into a project with its credentials, which are
        checked (the bucket must answer) and kept encrypted."""
        from cluster_gateway.blobs.s3 import S3BlobStore

        cluster, org, project = await self._place(session, caller, new)
        ref = BlobRef(cluster=cluster, org=org, project=project, bucket=new.name)
        if await self._row(session, ref) is not None:
            raise Conflict(f"bucket {ref.bucket_uri} exists already", fields={"name": "taken"})
        if new.endpoint_url is not None and not self._import_private_endpoints:
            await refuse_private_endpoint(new.endpoint_url)
        secret = new.secret_access_key.get_secret_value()
        probe = S3BlobStore(
            endpoint_url=new.endpoint_url,
            region=new.region,
            access_key_id=new.access_key_id,
            secret_access_key=secret,
        )
        try:
            if not await probe.bucket_exists(new.remote_name):
                raise NotFound(
                    f"the provider has no bucket {new.remote_name!r}",
                    fields={"remoteName": "not found"},
                )
        finally:
            await probe.close()
        sealed = self._keyring.seal(
            json.dumps({"access_key_id": new.access_key_id, "secret_access_key": secret}).encode()
        )
        secret_row = BlobSecretRow(id=str(uuid.uuid4()), ciphertext=sealed)
        session.add(secret_row)
        row = BucketRow(
            id=str(uuid.uuid4()),
            cluster=cluster,
            org=org,
            project=project,
            name=new.name,
            provider=BlobProvider.S3.value,
            physical_name=new.remote_name,
            public=new.public,
            endpoint_url=new.endpoint_url,
            region=new.region,
            credentials_ref=secret_row.id,
            created_by=caller.id,
        )
        row.secret = secret_row
        return await self._insert(session, row, ref)

    async def buckets(
        self,
        session: AsyncSession,
        caller: User,
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> builtins.list[Bucket]:
        """The buckets the caller may read, by place and name; narrowed to a cluster, an org
        or a project when given."""
        for value, what in ((cluster, "cluster"), (org, "org"), (project, "project")):
            if value is not None and not _NAME.fullmatch(value):
                raise BadInput(f"invalid {what} {value!r}", fields={what: "invalid"})
        query = select(BucketRow).order_by(
            BucketRow.cluster, BucketRow.org, BucketRow.project, BucketRow.name
        )
        if cluster is not None:
            query = query.where(BucketRow.cluster == cluster)
        if org is not None:
            query = query.where(BucketRow.org == org)
        if project is not None:
            query = query.where(BucketRow.project == project)
        found = []
        for row in await session.scalars(query):
            uri = bucket_uri(row.cluster, row.org, row.project, row.name)
            if await self._acl.check(caller.subject, uri, Action.READ):
                found.append(self._bucket(row))
        return found

    async def bucket(self, session: AsyncSession, caller: User, uri: str) -> Bucket:
        ref = parse_blob_uri(uri, key=False)
        return self._bucket(await self._allowed(session, Accessor.of(caller), ref, Action.READ))

    async def set_public(
        self, session: AsyncSession, caller: User, uri: str, public: bool
    ) -> Bucket:
        """Make a bucket public or private (those who manage it)."""
        ref = parse_blob_uri(uri, key=False)
        row = await self._allowed(session, Accessor.of(caller), ref, Action.MANAGE)
        row.public = public
        await session.commit()
        return self._bucket(row)

    async def delete_bucket(
        self, session: AsyncSession, caller: User, uri: str, *, force: bool = False
    ) -> Bucket:
        """Delete a bucket (writers): an empty one, or with ``force`` its objects too. An
        imported bucket is only forgotten: its objects stay at the provider."""
        ref = parse_blob_uri(uri, key=False)
        row = await self._allowed(session, Accessor.of(caller), ref, Action.WRITE)
        bucket = self._bucket(row)
        if not bucket.imported:
            try:
                await self._store(row).delete_bucket(row.physical_name, force=force)
            except NotFound:
                pass  # gone from the disk already: forget it
        store = self._stores.pop(f"s3:{row.id}", None)
        if store is not None:
            await store.close()
        secret = row.secret
        await session.delete(row)
        if secret is not None:
            await session.delete(secret)
        await session.commit()
        return bucket

    async def rotate_credentials(self, session: AsyncSession) -> tuple[int, list[str]]:
        """Re-seal every imported bucket's credentials not under the keyring's current key
        (the caller checked who may): how many, and the ids of those no key opens (left as
        they are). A row is rewritten only if it still holds what was read."""
        rotated = 0
        unreadable: list[str] = []
        rows = (await session.execute(select(BlobSecretRow.id, BlobSecretRow.ciphertext))).all()
        for secret_id, ciphertext in rows:
            if self._keyring.is_current(ciphertext):
                continue
            try:
                sealed = self._keyring.rotate(ciphertext)
            except Unreadable:
                unreadable.append(secret_id)
                continue
            done = await session.execute(
                update(BlobSecretRow)
                .where(BlobSecretRow.id == secret_id, BlobSecretRow.ciphertext == ciphertext)
                .values(ciphertext=sealed)
            )
            rotated += getattr(done, "rowcount", 0) or 0
        await session.commit()
        return rotated, unreadable

    # -- objects ----------------------------------------------------------------------------

    async def objects(
        self,
        session: AsyncSession,
        who: Accessor,
        uri: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        first: int = 1000,
        after: str | None = None,
    ) -> ObjectPage:
        """A page of a bucket's objects (and common prefixes, with a delimiter)."""
        if not 1 <= first <= MAX_OBJECT_PAGE:
            raise BadInput(f"first is 1 to {MAX_OBJECT_PAGE}", fields={"first": "out of range"})
        check_prefix(prefix)
        target, ref = await self.target(session, who, uri, Action.READ)
        if ref.key is not None:
            raise BadInput("list a bucket: give the key as the prefix", fields={"uri": "a key"})
        return await target.store.list(
            target.physical_name, prefix=prefix, delimiter=delimiter, limit=first, after=after
        )

    async def glob(
        self, session: AsyncSession, who: Accessor, uri: str, pattern: str, *, first: int = 1000
    ) -> builtins.list[BlobObject]:
        """The objects whose keys match ``pattern`` (``*`` and ``?`` within a segment, ``**``
        across segments, ``**/`` none or more, ``[...]``), in key order, at most ``first``."""
        if not pattern or len(pattern) > 1024:
            raise BadInput("give a pattern of at most 1024 characters", fields={"pattern": ""})
        if not 1 <= first <= MAX_OBJECT_PAGE:
            raise BadInput(f"first is 1 to {MAX_OBJECT_PAGE}", fields={"first": "out of range"})
        target, _ = await self.target(session, who, uri, Action.READ)
        literal = _literal_prefix(pattern)
        matcher = _glob_regex(pattern)
        found: builtins.list[BlobObject] = []
        scanned = 0
        cursor: str | None = None
        while len(found) < first:
            page = await target.store.list(
                target.physical_name, prefix=literal, limit=MAX_OBJECT_PAGE, after=cursor
            )
            for item in page.objects:
                if matcher(item.key):
                    found.append(item)
                    if len(found) == first:
                        break
            scanned += len(page.objects)
            cursor = page.next_cursor
            if cursor is None:
                break
            if scanned >= MAX_GLOB_SCAN:
                raise BadInput(
                    f"the pattern would read over {MAX_GLOB_SCAN} keys: start it with a "
                    "longer literal prefix",
                    fields={"pattern": "too broad"},
                )
        return found

    async def stat(self, session: AsyncSession, who: Accessor, uri: str) -> BlobObject:
        target, ref = await self.target(session, who, uri, Action.READ)
        return await target.store.stat(target.physical_name, _key(ref))

    async def delete_object(self, session: AsyncSession, who: Accessor, uri: str) -> bool:
        """Delete an object (writers); False when there was none (as S3, not an error)."""
        target, ref = await self.target(session, who, uri, Action.WRITE)
        return await target.store.delete(target.physical_name, _key(ref))

    async def put(self, who: Accessor, uri: str, chunks: AsyncIterator[bytes]) -> BlobObject:
        """Write an object from a stream; the permission is checked before a byte is read,
        in a session that is closed before the upload starts."""
        async with self._db.session() as session:
            target, ref = await self.target(session, who, uri, Action.WRITE)
        return await target.store.put(target.physical_name, _key(ref), chunks)

    async def open(self, who: Accessor, uri: str) -> tuple[ObjectTarget, BlobObject]:
        """An object to read, once ``who`` may: its bucket's store and its metadata."""
        async with self._db.session() as session:
            target, ref = await self.target(session, who, uri, Action.READ)
        return target, await target.store.stat(target.physical_name, _key(ref))

    async def create_upload(self, who: Accessor, uri: str) -> MultipartUpload:
        async with self._db.session() as session:
            target, ref = await self.target(session, who, uri, Action.WRITE)
        return await target.store.create_upload(target.physical_name, _key(ref))

    async def put_part(
        self, who: Accessor, uri: str, upload_id: str, number: int, chunks: AsyncIterator[bytes]
    ) -> UploadedPart:
        async with self._db.session() as session:
            target, ref = await self.target(session, who, uri, Action.WRITE)
        return await target.store.put_part(
            target.physical_name, _key(ref), upload_id, number, chunks
        )

    async def complete_upload(
        self, who: Accessor, uri: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> BlobObject:
        async with self._db.session() as session:
            target, ref = await self.target(session, who, uri, Action.WRITE)
        return await target.store.complete_upload(target.physical_name, _key(ref), upload_id, parts)

    async def abort_upload(self, who: Accessor, uri: str, upload_id: str) -> None:
        async with self._db.session() as session:
            target, ref = await self.target(session, who, uri, Action.WRITE)
        await target.store.abort_upload(target.physical_name, _key(ref), upload_id)

    # -- signed URLs ------------------------------------------------------------------------

    def _signature(self, method: str, path: str, expires: int) -> str:
        message = f"{method}\n{path}\n{expires}".encode()
        return hmac.new(self._url_key, message, hashlib.sha256).hexdigest()

    async def sign_url(
        self,
        session: AsyncSession,
        caller: User,
        uri: str,
        *,
        method: str = "GET",
        expires_in_s: int = DEFAULT_SIGNED_URL_S,
    ) -> SignedUrl:
        """A URL that allows ``method`` (GET or PUT) on one object, to anyone holding it,
        for ``expires_in_s`` seconds; the caller must be allowed the same now."""
        method = method.upper()
        if method not in ("GET", "PUT"):
            raise BadInput("a signed URL reads (GET) or writes (PUT)", fields={"method": ""})
        if not 1 <= expires_in_s <= MAX_SIGNED_URL_S:
            raise BadInput(
                f"a signed URL lasts 1 s to {MAX_SIGNED_URL_S} s (7 days)",
                fields={"expiresInSeconds": "out of range"},
            )
        action = Action.READ if method == "GET" else Action.WRITE
        target, ref = await self.target(session, Accessor.of(caller), uri, action)
        key = _key(ref)
        expires = int(time.time()) + expires_in_s
        expires_at = datetime.fromtimestamp(expires, UTC)
        url = await target.store.presign(
            target.physical_name, key, method=method, expires_s=expires_in_s
        )
        if url is None:
            path = self.object_path(ref)
            signature = self._signature(method, path, expires)
            query = urlencode({"X-Glia-Expires": expires, "X-Glia-Signature": signature})
            url = f"{self._public_url}{path}?{query}"
        return SignedUrl(url=url, expires_at=expires_at, method=method)

    @staticmethod
    def object_path(ref: BlobRef) -> str:
        """The byte route's path of an object: ``/api/blob/C/O/P/B/KEY``, URL-quoted."""
        parts = [ref.cluster, ref.org, ref.project, ref.bucket, *_key(ref).split("/")]
        return "/api/blob/" + "/".join(quote(part, safe="") for part in parts)

    def check_signature(self, method: str, path: str, expires: str, signature: str) -> None:
        """Nothing when a signed URL's proof holds for ``method`` on ``path`` now;
        Unauthenticated otherwise (a wrong signature and an expired one alike)."""
        try:
            until = int(expires)
        except ValueError:
            raise Unauthenticated("the signed URL is malformed") from None
        # HEAD reads what GET reads.
        signed_method = "GET" if method == "HEAD" else method
        good = hmac.compare_digest(self._signature(signed_method, path, until), signature)
        if not good:
            raise Unauthenticated("the signed URL's signature does not match")
        if until < time.time():
            raise Unauthenticated("the signed URL has expired")

    def signed_accessor(self) -> Accessor:
        """Who a valid signed URL acts as: its signature stands for the permission."""
        return _SIGNED

    # -- access keys ------------------------------------------------------------------------

    async def create_credentials(
        self,
        session: AsyncSession,
        caller: User,
        *,
        name: str,
        buckets: Sequence[str],
        read_only: bool = False,
    ) -> tuple[BlobCredential, str]:
        """A new access key of the caller's for ``buckets`` (URIs), and its secret, returned
        this once. The caller must be allowed now what the key allows."""
        if not name or len(name) > 128 or any(c < " " for c in name):
            raise BadInput("give the key a name of 1-128 characters", fields={"name": "invalid"})
        if not buckets or len(buckets) > 100:
            raise BadInput("name 1 to 100 buckets", fields={"buckets": "count"})
        action = Action.READ if read_only else Action.WRITE
        rows = []
        for uri in dict.fromkeys(buckets):
            ref = parse_blob_uri(uri, key=False, field="buckets")
            rows.append(await self._allowed(session, Accessor.of(caller), ref, action))
        owned = await session.scalars(
            select(BlobCredentialRow.id).where(BlobCredentialRow.owner_id == caller.id)
        )
        if len(builtins.list(owned)) >= MAX_CREDENTIALS_PER_USER:
            raise BadInput(
                f"you have {MAX_CREDENTIALS_PER_USER} access keys: delete one first",
                fields={"name": "too many"},
            )
        access_key_id = ACCESS_KEY_PREFIX + "".join(
            secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(16)
        )
        secret = secrets.token_urlsafe(30)
        row = BlobCredentialRow(
            id=str(uuid.uuid4()),
            name=name,
            owner_id=caller.id,
            access_key_id=access_key_id,
            secret_hash=_hash(secret),
            read_only=read_only,
            bucket_ids=[bucket.id for bucket in rows],
        )
        session.add(row)
        await session.commit()
        return await self._credential(session, row, caller.name), secret

    async def _credential(
        self, session: AsyncSession, row: BlobCredentialRow, owner: str
    ) -> BlobCredential:
        buckets = await session.scalars(select(BucketRow).where(BucketRow.id.in_(row.bucket_ids)))
        uris = sorted(bucket_uri(b.cluster, b.org, b.project, b.name) for b in buckets)
        return BlobCredential(
            id=row.id,
            name=row.name,
            access_key_id=row.access_key_id,
            buckets=tuple(uris),
            read_only=row.read_only,
            owner=owner,
            created_at=row.created_at,
        )

    async def credentials(
        self, session: AsyncSession, caller: User
    ) -> builtins.list[BlobCredential]:
        """The caller's access keys, newest first (their secrets are never shown again)."""
        rows = await session.scalars(
            select(BlobCredentialRow)
            .where(BlobCredentialRow.owner_id == caller.id)
            .order_by(BlobCredentialRow.created_at.desc(), BlobCredentialRow.id)
        )
        return [await self._credential(session, row, caller.name) for row in rows]

    async def delete_credentials(
        self, session: AsyncSession, caller: User, credential_id: str
    ) -> BlobCredential:
        """Delete one of the caller's access keys: it stops working at once."""
        try:
            uuid.UUID(credential_id)
        except ValueError:
            raise NotFound(f"access key {credential_id!r} not found") from None
        row = await session.get(BlobCredentialRow, credential_id)
        if row is None or row.owner_id != caller.id:
            raise NotFound(f"access key {credential_id!r} not found")
        credential = await self._credential(session, row, caller.name)
        await session.delete(row)
        await session.commit()
        return credential

    async def accessor_for_key(self, access_key_id: str, secret: str) -> Accessor:
        """Who an access key acts as: its owner, limited to its buckets (Unauthenticated for
        a wrong or deleted key, or an owner who can no longer sign in)."""
        from control_plane.services.auth import user_from_row

        if not _ACCESS_KEY.fullmatch(access_key_id):
            raise Unauthenticated("unknown access key or wrong secret")
        async with self._db.session() as session:
            row = await session.scalar(
                select(BlobCredentialRow).where(BlobCredentialRow.access_key_id == access_key_id)
            )
            expected = row.secret_hash if row is not None else _hash("")
            good = hmac.compare_digest(expected, _hash(secret))
            if row is None or not good:
                raise Unauthenticated("unknown access key or wrong secret")
            owner = await session.get(UserRow, row.owner_id)
            if owner is None or owner.disabled:
                raise Unauthenticated("unknown access key or wrong secret")
            return Accessor(
                user=user_from_row(owner),
                bucket_ids=frozenset(row.bucket_ids),
                read_only=row.read_only,
            )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(ref: BlobRef) -> str:
    if ref.key is None:
        raise BadInput(f"{ref.uri!r} names no object", fields={"uri": "no key"})
    return check_key(ref.key, "uri")


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard: where the listing starts."""
    for index, char in enumerate(pattern):
        if char in "*?[":
            return pattern[:index]
    return pattern


def _glob_regex(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A matcher of keys: ``*``, ``?`` and ``[...]`` within a segment, ``**`` across them."""
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")  # any number of parts, none included
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                parts.append(re.escape("["))
                index += 1
            else:
                parts.append(fnmatch.translate(pattern[index : end + 1])[4:-3])
                index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    try:
        return re.compile("".join(parts), re.DOTALL).fullmatch
    except re.error as error:
        raise BadInput(f"invalid pattern: {error}", fields={"pattern": "invalid"}) from None


_SIGNED = Accessor(user=None, signed=True)
