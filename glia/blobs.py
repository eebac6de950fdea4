"""Buckets and their objects: names, keys and the values every side speaks.

A bucket lives in a project on a cluster, ``blob://CLUSTER/ORG/PROJECT/BUCKET``, and an object
beneath it, ``blob://CLUSTER/ORG/PROJECT/BUCKET/a/b.txt``: the project's readers read them,
its writers write them (`glia.tenancy`). Keys are ``/``-separated segments, checked here once
for every provider: a key no filesystem or S3 implementation could hold the same way (empty
segments, ``.`` and ``..``, control characters, over 1024 bytes) is refused with BAD_USER_INPUT.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator

from glia.acl import format_uri, parse_uri
from glia.errors import BadInput
from glia.model import DescribedEnum, Model

SCHEME = "blob"
# S3's own rule, less dots (a dotted name breaks virtual-host TLS).
BUCKET_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
MAX_KEY_BYTES = 1024
# A segment becomes a file name (with a two-character prefix) on the filesystem provider.
MAX_SEGMENT_BYTES = 240
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DELIMITER = "/"
MAX_OBJECT_PAGE = 1000
# Signed URLs and their limits, in seconds.
MAX_SIGNED_URL_S = 7 * 24 * 3600
DEFAULT_SIGNED_URL_S = 3600
# Multipart uploads: S3's limits, which the filesystem provider keeps too.
MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PARTS = 10_000


class BlobProvider(DescribedEnum):
    """Where a bucket's objects are kept."""

    FILESYSTEM = "filesystem", "A directory on the cluster (the embedded default)"
    S3 = "s3", "An S3-compatible object store (AWS, MinIO, Ceph, …)"


def check_bucket_name(name: str) -> str:
    """``name`` if it can name a bucket; else `BadInput`."""
    if not isinstance(name, str) or not BUCKET_NAME_RE.fullmatch(name) or "--" in name:
        raise BadInput(
            f"invalid bucket name {name!r}: 3-63 lowercase letters, digits and single '-', "
            "starting and ending with a letter or digit",
            fields={"name": "invalid"},
        )
    return name


def check_key(key: str, field: str = "key") -> str:
    """``key`` if it can name an object everywhere; else `BadInput` naming ``field``.

    ``check_key("data/train.csv")`` passes; ``"../x"``, ``"a//b"``, ``"/a"``, ``"a/"`` and
    ``"a\\x00b"`` do not.
    """
    if not isinstance(key, str) or not key:
        raise BadInput("an object key must not be empty", fields={field: "empty"})
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise BadInput(f"an object key is at most {MAX_KEY_BYTES} bytes", fields={field: "long"})
    if _CONTROL.search(key):
        raise BadInput(
            "an object key must not hold control characters", fields={field: "control character"}
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("an object key must be valid UTF-8", fields={field: "not UTF-8"}) from None
    for segment in key.split(DELIMITER):
        if segment in ("", ".", ".."):
            raise BadInput(
                f"invalid object key {key!r}: no empty, '.' or '..' segments, no leading or "
                "trailing '/'",
                fields={field: "bad segment"},
            )
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise BadInput(
                f"a part of an object key between '/' is at most {MAX_SEGMENT_BYTES} bytes",
                fields={field: "long segment"},
            )
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, a key, or a key ending with ``/``."""
    if prefix:
        check_key(
            prefix.removesuffix(DELIMITER) if prefix.endswith(DELIMITER) else prefix, "prefix"
        )
    return prefix


def bucket_uri(cluster: str, org: str, project: str, bucket: str) -> str:
    return format_uri(SCHEME, (cluster, org, project, bucket))


class BlobRef(Model):
    """A bucket, or an object in it, as a URI names it."""

    cluster: str
    org: str
    project: str
    bucket: str
    key: str | None = None

    @property
    def bucket_uri(self) -> str:
        return bucket_uri(self.cluster, self.org, self.project, self.bucket)

    @property
    def uri(self) -> str:
        return self.bucket_uri + (f"/{self.key}" if self.key else "")

    @property
    def project_uri(self) -> str:
        return format_uri(SCHEME, (self.cluster, self.org, self.project))


def parse_blob_uri(uri: str, *, key: bool | None = None, field: str = "uri") -> BlobRef:
    """``blob://c/acme/vision/data/x.csv`` -> ``BlobRef(c, acme, vision, data, "x.csv")``.

    ``key=True`` requires a key, ``key=False`` refuses one, None takes either.
    """
    if not isinstance(uri, str) or not uri.startswith(f"{SCHEME}://"):
        raise BadInput(f"not a bucket URI: {uri!r}", fields={field: "expected blob://…"})
    rest = uri[len(SCHEME) + 3 :]
    parts = rest.split(DELIMITER, 4)
    if len(parts) < 4:
        raise BadInput(
            f"{uri!r} names no bucket: expected blob://CLUSTER/ORG/PROJECT/BUCKET[/KEY]",
            fields={field: "expected blob://CLUSTER/ORG/PROJECT/BUCKET[/KEY]"},
        )
    try:
        parse_uri(format_uri(SCHEME, parts[:3]))
    except BadInput:
        raise BadInput(f"invalid bucket URI {uri!r}", fields={field: "invalid"}) from None
    check_bucket_name(parts[3])
    object_key = parts[4] if len(parts) == 5 and parts[4] != "" else None
    if object_key is not None:
        check_key(object_key, field)
    if key is True and object_key is None:
        raise BadInput(f"{uri!r} names no object", fields={field: "no key"})
    if key is False and object_key is not None:
        raise BadInput(f"{uri!r} names an object, not a bucket", fields={field: "a key"})
    return BlobRef(
        cluster=parts[0], org=parts[1], project=parts[2], bucket=parts[3], key=object_key
    )


# -- values ----------------------------------------------------------------------------------


class Bucket(Model):
    """A bucket of objects in a project, on one cluster."""

    name: str
    """Its name, unique in its project on its cluster."""
    uri: str
    """`blob://CLUSTER/ORG/PROJECT/BUCKET`: grants on it cover its objects."""
    cluster: str
    """The cluster that holds it."""
    org: str
    """The org of its project."""
    project: str
    """The project it belongs to."""
    provider: BlobProvider
    """Where its objects are kept."""
    public: bool = False
    """Whether anyone, signed in or not, may read its objects (never write them)."""
    imported: bool = False
    """Whether it is an existing bucket of a provider, brought in with its credentials."""
    created_at: datetime
    """When it was created or imported (UTC)."""
    url: str
    """The byte route of its objects: `GET`/`PUT`/`DELETE` `<url>/<key>`."""


class BlobObject(Model):
    """An object in a bucket: its metadata (its bytes go over the byte route)."""

    key: str
    """Its key in the bucket: `data/train.csv`."""
    size: int
    """Its size in bytes."""
    modified_at: datetime
    """When it was last written (UTC)."""
    etag: str
    """An opaque tag that changes whenever the object does."""


class ObjectPage(Model):
    """One page of a bucket's listing, in key order (UTF-8 bytes)."""

    objects: tuple[BlobObject, ...] = ()
    """The objects of this page."""
    prefixes: tuple[str, ...] = ()
    """With a delimiter: the common prefixes (`logs/`) that stand for the keys beneath them."""
    next_cursor: str | None = None
    """Where the next page starts (give it as `after`); null on the last page."""


class MultipartUpload(Model):
    """An upload of a large object in parts, each put on its own, then joined."""

    upload_id: str
    """The upload's id, for its parts and its completion."""
    key: str
    """The object it will make."""


class UploadedPart(Model):
    """A part of a multipart upload that was put."""

    number: int
    """Its number, 1 to 10,000: the object is the parts in this order."""
    etag: str
    """What putting it answered."""


class SignedUrl(Model):
    """A URL that reads (or writes) one object without any other credentials, until it expires."""

    url: str
    """The URL (carry it as a secret: whoever holds it may use it)."""
    expires_at: datetime
    """When it stops working (UTC)."""
    method: str
    """The HTTP method it allows: GET or PUT."""


class BlobCredential(Model):
    """A key pair for a program outside Glia: HTTP Basic auth (`ACCESS_KEY:SECRET`) on the
    byte routes of the buckets it covers, with the permissions of its owner, read-only if asked."""

    id: str
    """Its id, to delete it."""
    name: str
    """What it is for."""
    access_key_id: str
    """The public half, the Basic auth user name."""
    buckets: tuple[str, ...]
    """The URIs of the buckets it covers."""
    read_only: bool = False
    """Whether it may only read."""
    owner: str
    """The user who made it, whose permissions it acts with."""
    created_at: datetime
    """When it was made (UTC)."""


class NewBucket(Model):
    """A bucket to create in a project, or an existing one to import with its credentials."""

    name: str
    """Its name: 3-63 lowercase letters, digits and single '-'."""
    cluster: str | None = None
    """The cluster; null for the default one."""
    org: str | None = None
    """The org of the project; null for the caller's personal org."""
    project: str | None = None
    """The project; null for the caller's personal project."""
    public: bool = False
    """Whether anyone may read its objects (the project's managers decide)."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not BUCKET_NAME_RE.fullmatch(name) or "--" in name:
            raise ValueError(f"invalid bucket name {name!r}")
        return name


class ImportedBucket(NewBucket):
    """An existing S3 bucket to bring into a project: its objects stay where they are."""

    remote_name: str
    """The bucket's name at the provider."""
    endpoint_url: str | None = None
    """The S3 endpoint (`https://s3.eu-west-1.amazonaws.com`, a MinIO URL); null for AWS."""
    region: str | None = None
    """The provider's region, if it needs one."""
    access_key_id: str
    """The provider's access key id (stored encrypted, never shown again)."""
    secret_access_key: SecretStr
    """The provider's secret access key (stored encrypted, never shown again)."""

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError("an S3 endpoint is an http:// or https:// URL with a host")
        return url.rstrip("/")

    @field_validator("region")
    @classmethod
    def _region(cls, region: str | None) -> str | None:
        if region is not None and not re.fullmatch(r"[a-z0-9-]{1,32}", region):
            raise ValueError(f"invalid region {region!r}")
        return region

    @field_validator("access_key_id")
    @classmethod
    def _access_key_id(cls, key: str) -> str:
        if not re.fullmatch(r"[\x21-\x7e]{1,128}", key):
            raise ValueError("an access key id is 1-128 printable characters, no spaces")
        return key

    @field_validator("secret_access_key")
    @classmethod
    def _secret(cls, secret: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[\x21-\x7e]{1,256}", secret.get_secret_value()):
            raise ValueError("a secret access key is 1-256 printable characters, no spaces")
        return secret

    @field_validator("remote_name")
    @classmethod
    def _remote_name(cls, name: str) -> str:
        # S3's own rule (dots allowed): the provider's names are not Glia's.
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
            raise ValueError(f"invalid S3 bucket name {name!r}")
        return name
