from __future__ import annotations

from typing import Annotated, cast

import strawberry
from pydantic import SecretStr

from control_plane.services.blobs import Accessor
from glia import blobs as kernel
from graph.context import Info
from graph.types.base import model_from_input
from graph.types.blobs import (
    BlobCredential,
    BlobObject,
    BlobObjectPage,
    Bucket,
    BucketPayload,
    CreateBlobCredentialsInput,
    CreateBlobCredentialsPayload,
    CreateBucketInput,
    DeleteBlobCredentialsInput,
    DeleteBlobCredentialsPayload,
    DeleteBlobObjectInput,
    DeleteBlobObjectPayload,
    DeleteBucketInput,
    ImportBucketInput,
    SignBlobUrlInput,
    SignBlobUrlPayload,
    SignedUrl,
    UpdateBucketInput,
)

BUCKET_URI = strawberry.argument(description="`blob://CLUSTER/ORG/PROJECT/BUCKET`")
OBJECT_URI = strawberry.argument(description="`blob://CLUSTER/ORG/PROJECT/BUCKET/KEY`")
FIRST = strawberry.argument(description="At most this many (1 to 1000)")


@strawberry.type
class BlobsQuery:
    @strawberry.field(
        description="The buckets the caller may read, by cluster, org, project and name"
    )
    async def buckets(
        self,
        info: Info,
        cluster: Annotated[
            str | None, strawberry.argument(description="Only this cluster's")
        ] = None,
        org: Annotated[str | None, strawberry.argument(description="Only this org's")] = None,
        project: Annotated[
            str | None, strawberry.argument(description="Only this project's")
        ] = None,
    ) -> list[Bucket]:
        ctx = info.context
        found = await ctx.platform.blobs.buckets(
            ctx.session, await ctx.user(), cluster=cluster, org=org, project=project
        )
        return cast(list[Bucket], found)

    @strawberry.field(description="A bucket")
    async def bucket(self, info: Info, uri: Annotated[str, BUCKET_URI]) -> Bucket:
        ctx = info.context
        return cast(Bucket, await ctx.platform.blobs.bucket(ctx.session, await ctx.user(), uri))

    @strawberry.field(
        description="A page of a bucket's objects in key order (UTF-8 bytes); with a "
        "delimiter (`/`), the keys beneath a common prefix are listed once as that prefix"
    )
    async def blob_objects(
        self,
        info: Info,
        uri: Annotated[str, BUCKET_URI],
        prefix: Annotated[str, strawberry.argument(description="Only keys starting so")] = "",
        delimiter: Annotated[
            str | None, strawberry.argument(description="`/` to group keys; null for none")
        ] = None,
        first: Annotated[int, FIRST] = kernel.MAX_OBJECT_PAGE,
        after: Annotated[
            str | None,
            strawberry.argument(description="The previous page's `nextCursor`"),
        ] = None,
    ) -> BlobObjectPage:
        ctx = info.context
        page = await ctx.platform.blobs.objects(
            ctx.session,
            Accessor.of(await ctx.user()),
            uri,
            prefix=prefix,
            delimiter=delimiter,
            first=first,
            after=after,
        )
        return cast(BlobObjectPage, page)

    @strawberry.field(description="An object's metadata (its bytes: `GET Bucket.url/KEY`)")
    async def blob_object(self, info: Info, uri: Annotated[str, OBJECT_URI]) -> BlobObject:
        ctx = info.context
        found = await ctx.platform.blobs.stat(ctx.session, Accessor.of(await ctx.user()), uri)
        return cast(BlobObject, found)

    @strawberry.field(
        description="The objects whose keys match a pattern (`*`, `?`, `[…]` within a part "
        "between '/', `**` across them), in key order"
    )
    async def blob_glob(
        self,
        info: Info,
        uri: Annotated[str, BUCKET_URI],
        pattern: Annotated[str, strawberry.argument(description="`data/**/*.csv`")],
        first: Annotated[int, FIRST] = kernel.MAX_OBJECT_PAGE,
    ) -> list[BlobObject]:
        ctx = info.context
        found = await ctx.platform.blobs.glob(
            ctx.session, Accessor.of(await ctx.user()), uri, pattern, first=first
        )
        return cast(list[BlobObject], found)

    @strawberry.field(description="The caller's access keys (never their secrets)")
    async def blob_credentials(self, info: Info) -> list[BlobCredential]:
        ctx = info.context
        found = await ctx.platform.blobs.credentials(ctx.session, await ctx.user())
        return cast(list[BlobCredential], found)


@strawberry.type
class BlobsMutation:
    @strawberry.mutation(
        description="Create a bucket in a project (its writers; a public one, its managers)"
    )
    async def create_bucket(
        self,
        info: Info,
        input: Annotated[CreateBucketInput, strawberry.argument(description="What")],
    ) -> BucketPayload:
        ctx = info.context
        new = model_from_input(kernel.NewBucket, input)
        bucket = await ctx.platform.blobs.create_bucket(ctx.session, await ctx.user(), new)
        return BucketPayload(bucket=cast(Bucket, bucket))

    @strawberry.mutation(
        description="Bring an existing S3 bucket into a project with its credentials (checked "
        "against the provider, stored encrypted, never shown again)"
    )
    async def import_bucket(
        self,
        info: Info,
        input: Annotated[ImportBucketInput, strawberry.argument(description="What")],
    ) -> BucketPayload:
        ctx = info.context
        new = model_from_input(
            kernel.ImportedBucket,
            {
                "name": input.name,
                "cluster": input.cluster,
                "org": input.org,
                "project": input.project,
                "public": input.public,
                "remote_name": input.remote_name,
                "endpoint_url": input.endpoint_url,
                "region": input.region,
                "access_key_id": input.access_key_id,
                "secret_access_key": SecretStr(input.secret_access_key),
            },
        )
        bucket = await ctx.platform.blobs.import_bucket(ctx.session, await ctx.user(), new)
        return BucketPayload(bucket=cast(Bucket, bucket))

    @strawberry.mutation(description="Make a bucket public or private (those who manage it)")
    async def update_bucket(
        self,
        info: Info,
        input: Annotated[UpdateBucketInput, strawberry.argument(description="What")],
    ) -> BucketPayload:
        ctx = info.context
        bucket = await ctx.platform.blobs.set_public(
            ctx.session, await ctx.user(), input.uri, input.public
        )
        return BucketPayload(bucket=cast(Bucket, bucket))

    @strawberry.mutation(description="Delete a bucket (its writers)")
    async def delete_bucket(
        self,
        info: Info,
        input: Annotated[DeleteBucketInput, strawberry.argument(description="What")],
    ) -> BucketPayload:
        ctx = info.context
        bucket = await ctx.platform.blobs.delete_bucket(
            ctx.session, await ctx.user(), input.uri, force=input.force
        )
        return BucketPayload(bucket=cast(Bucket, bucket))

    @strawberry.mutation(description="Delete an object (the bucket's writers)")
    async def delete_blob_object(
        self,
        info: Info,
        input: Annotated[DeleteBlobObjectInput, strawberry.argument(description="What")],
    ) -> DeleteBlobObjectPayload:
        ctx = info.context
        existed = await ctx.platform.blobs.delete_object(
            ctx.session, Accessor.of(await ctx.user()), input.uri
        )
        return DeleteBlobObjectPayload(uri=input.uri, existed=existed)

    @strawberry.mutation(
        description="A URL that reads (GET) or writes (PUT) one object without a token until "
        "it expires; the caller must be allowed the same"
    )
    async def sign_blob_url(
        self,
        info: Info,
        input: Annotated[SignBlobUrlInput, strawberry.argument(description="What")],
    ) -> SignBlobUrlPayload:
        ctx = info.context
        signed = await ctx.platform.blobs.sign_url(
            ctx.session,
            await ctx.user(),
            input.uri,
            method=input.method,
            expires_in_s=input.expires_in_seconds,
        )
        return SignBlobUrlPayload(signed_url=cast(SignedUrl, signed))

    @strawberry.mutation(
        description="An access key pair for programs outside Glia, covering some buckets with "
        "the caller's permissions (read-only if asked); the secret is shown once"
    )
    async def create_blob_credentials(
        self,
        info: Info,
        input: Annotated[CreateBlobCredentialsInput, strawberry.argument(description="What")],
    ) -> CreateBlobCredentialsPayload:
        ctx = info.context
        credential, secret = await ctx.platform.blobs.create_credentials(
            ctx.session,
            await ctx.user(),
            name=input.name,
            buckets=input.buckets,
            read_only=input.read_only,
        )
        return CreateBlobCredentialsPayload(
            credential=cast(BlobCredential, credential), secret=secret
        )

    @strawberry.mutation(description="Delete one of the caller's access keys")
    async def delete_blob_credentials(
        self,
        info: Info,
        input: Annotated[DeleteBlobCredentialsInput, strawberry.argument(description="What")],
    ) -> DeleteBlobCredentialsPayload:
        ctx = info.context
        credential = await ctx.platform.blobs.delete_credentials(
            ctx.session, await ctx.user(), str(input.id)
        )
        return DeleteBlobCredentialsPayload(credential=cast(BlobCredential, credential))
