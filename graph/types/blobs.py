from __future__ import annotations

import strawberry

from glia import blobs as kernel
from graph.types.base import expose_enum, object_type

BlobProvider = expose_enum(kernel.BlobProvider)


@object_type(kernel.Bucket)
class Bucket:
    pass


@object_type(kernel.BlobObject)
class BlobObject:
    pass


@object_type(kernel.ObjectPage, name="BlobObjectPage")
class BlobObjectPage:
    pass


@object_type(kernel.SignedUrl)
class SignedUrl:
    pass


@object_type(kernel.BlobCredential)
class BlobCredential:
    pass


@strawberry.input(description="A bucket to create in a project")
class CreateBucketInput:
    name: str = strawberry.field(
        description="3-63 lowercase letters, digits and single '-', unique in the project"
    )
    cluster: str | None = strawberry.field(
        default=None, description="The cluster; null for the default one"
    )
    org: str | None = strawberry.field(
        default=None, description="The project's org; null for the caller's personal org"
    )
    project: str | None = strawberry.field(
        default=None, description="The project; null for the caller's personal project"
    )
    public: bool = strawberry.field(
        default=False,
        description="Whether anyone may read its objects, without a token (project managers)",
    )


@strawberry.input(
    description="An existing S3 bucket to bring into a project, with its provider credentials "
    "(stored encrypted, never shown again)"
)
class ImportBucketInput(CreateBucketInput):
    remote_name: str = strawberry.field(description="The bucket's name at the provider")
    access_key_id: str = strawberry.field(description="The provider's access key id")
    secret_access_key: str = strawberry.field(description="The provider's secret access key")
    endpoint_url: str | None = strawberry.field(
        default=None, description="The S3 endpoint (MinIO, Ceph, a region's URL); null for AWS"
    )
    region: str | None = strawberry.field(default=None, description="The provider's region")


@strawberry.type(description="The bucket")
class BucketPayload:
    bucket: Bucket = strawberry.field(description="The bucket")


@strawberry.input(description="A bucket to make public or private")
class UpdateBucketInput:
    uri: str = strawberry.field(description="`blob://CLUSTER/ORG/PROJECT/BUCKET`")
    public: bool = strawberry.field(description="Whether anyone may read its objects")


@strawberry.input(description="A bucket to delete")
class DeleteBucketInput:
    uri: str = strawberry.field(description="`blob://CLUSTER/ORG/PROJECT/BUCKET`")
    force: bool = strawberry.field(
        default=False,
        description="Delete its objects too (else a bucket with objects is a CONFLICT); an "
        "imported bucket is only forgotten, its objects stay at the provider",
    )


@strawberry.input(description="An object to delete")
class DeleteBlobObjectInput:
    uri: str = strawberry.field(description="`blob://CLUSTER/ORG/PROJECT/BUCKET/KEY`")


@strawberry.type(description="The object deleted")
class DeleteBlobObjectPayload:
    uri: str = strawberry.field(description="The object's URI")
    existed: bool = strawberry.field(
        description="Whether there was such an object (deleting none is no error, as in S3)"
    )


@strawberry.input(description="An object to hand out a signed URL for")
class SignBlobUrlInput:
    uri: str = strawberry.field(description="`blob://CLUSTER/ORG/PROJECT/BUCKET/KEY`")
    method: str = strawberry.field(
        default="GET", description="GET to read it, PUT to write it (the caller must be allowed)"
    )
    expires_in_seconds: int = strawberry.field(
        default=kernel.DEFAULT_SIGNED_URL_S,
        description="How long the URL works: 1 s to 604,800 s (7 days)",
    )


@strawberry.type(description="The signed URL")
class SignBlobUrlPayload:
    signed_url: SignedUrl = strawberry.field(description="The URL and when it expires")


@strawberry.input(description="An access key for programs outside Glia")
class CreateBlobCredentialsInput:
    name: str = strawberry.field(description="What it is for (1-128 characters)")
    buckets: list[str] = strawberry.field(
        description="The URIs of the buckets it covers (1 to 100), `blob://C/O/P/BUCKET`"
    )
    read_only: bool = strawberry.field(default=False, description="Whether it may only read")


@strawberry.type(description="The access key, and its secret (shown once)")
class CreateBlobCredentialsPayload:
    credential: BlobCredential = strawberry.field(description="The access key")
    secret: str = strawberry.field(
        description="Its secret, shown once: HTTP Basic auth `ACCESS_KEY_ID:SECRET` on the "
        "byte routes of its buckets"
    )


@strawberry.input(description="An access key to delete")
class DeleteBlobCredentialsInput:
    id: strawberry.ID = strawberry.field(description="Its id")


@strawberry.type(description="The access key deleted; it no longer works")
class DeleteBlobCredentialsPayload:
    credential: BlobCredential = strawberry.field(description="The key as it was")
