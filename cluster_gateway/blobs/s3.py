"""Buckets on any S3-compatible store (AWS, MinIO, Ceph), through aioboto3.

One client per store, opened on first use. An object put from a stream is sent in one
request when it fits in `PART_BYTES`, else as a multipart upload of such parts, so memory
stays bounded whatever the size. Listing cursors are S3's continuation tokens; presigned URLs
are S3's own (SigV4), so their holders talk to the store directly.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC
from typing import Any, NoReturn

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cluster_gateway.blobs.base import CHUNK_BYTES, BlobStore
from glia.blobs import (
    DELIMITER,
    BlobObject,
    MultipartUpload,
    ObjectPage,
    UploadedPart,
    check_key,
    check_prefix,
)
from glia.errors import BadInput, Conflict, NotFound, Unavailable

# What a put buffers before it turns into a multipart upload, and the size of its parts.
PART_BYTES = 8 * 1024 * 1024
# Spooled to a temporary file past this, so a large part is not held in memory.
_SPOOL_BYTES = 8 * 1024 * 1024

_NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "NoSuchUpload", "404", "NotFound"}
_CONFLICT = {"BucketAlreadyExists", "BucketAlreadyOwnedByYou", "BucketNotEmpty"}
_BAD_INPUT = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "InvalidArgument"}


def _fail(error: Exception, what: str) -> NoReturn:
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            raise NotFound(f"{what} not found") from None
        if code in _CONFLICT:
            message = "is not empty" if code == "BucketNotEmpty" else "exists already"
            raise Conflict(f"{what} {message}") from None
        if code in _BAD_INPUT:
            raise BadInput(f"{what}: {error.response['Error'].get('Message', code)}") from None
        raise Unavailable(f"the object store refused {what}: {code}") from None
    raise Unavailable(f"the object store cannot be reached: {error}") from None


class S3BlobStore(BlobStore):
    def __init__(
        self,
        *,
        endpoint_url: str | None,
        access_key_id: str,
        secret_access_key: str,
        region: str | None = None,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region or "us-east-1",
        )
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3BlobStore(endpoint_url={self._endpoint_url!r})"

    async def _s3(self) -> Any:
        if self._client is None:
            try:
                self._client = await self._open()
            except (BotoCoreError, ValueError) as error:
                raise Unavailable(f"the object store's client cannot be made: {error}") from None
        return self._client

    async def _open(self) -> Any:
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        return await self._stack.enter_async_context(
            self._session.client("s3", endpoint_url=self._endpoint_url, config=config)
        )

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, bucket: str) -> None:
        # us-east-1 answers 200 to creating a bucket its owner has: ask first.
        if await self.bucket_exists(bucket):
            raise Conflict(f"bucket {bucket!r} exists already")
        s3 = await self._s3()
        extra: dict[str, Any] = {}
        if self._region and self._region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            await s3.create_bucket(Bucket=bucket, **extra)
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"bucket {bucket!r}")

    async def delete_bucket(self, bucket: str, *, force: bool = False) -> None:
        s3 = await self._s3()
        try:
            if force:
                uploads = await s3.list_multipart_uploads(Bucket=bucket)
                for upload in uploads.get("Uploads", []):
                    await s3.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                paginator = s3.get_paginator("list_objects_v2")
                async for page in paginator.paginate(Bucket=bucket):
                    keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                    if keys:
                        await s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            else:
                listed = await s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
                uploads = await s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
                if listed.get("KeyCount", 0) or uploads.get("Uploads"):
                    raise Conflict(f"bucket {bucket!r} is not empty")
            await s3.delete_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"bucket {bucket!r}")

    async def bucket_exists(self, bucket: str) -> bool:
        s3 = await self._s3()
        try:
            await s3.head_bucket(Bucket=bucket)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in _NOT_FOUND:
                return False
            _fail(error, f"bucket {bucket!r}")
        except BotoCoreError as error:
            _fail(error, f"bucket {bucket!r}")
        return True

    # -- listing ----------------------------------------------------------------------------

    async def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> ObjectPage:
        check_prefix(prefix)
        if delimiter not in (None, "", DELIMITER):
            raise BadInput("the delimiter may only be '/'", fields={"delimiter": "not '/'"})
        if limit < 1:
            raise BadInput("a page holds at least one object", fields={"first": "too small"})
        s3 = await self._s3()
        arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": limit}
        if delimiter:
            arguments["Delimiter"] = delimiter
        if after:
            arguments["ContinuationToken"] = after
        try:
            answer = await s3.list_objects_v2(**arguments)
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"bucket {bucket!r}")
        objects = tuple(
            BlobObject(
                key=item["Key"],
                size=item["Size"],
                modified_at=item["LastModified"].astimezone(UTC),
                etag=item["ETag"].strip('"'),
            )
            for item in answer.get("Contents", [])
        )
        prefixes = tuple(item["Prefix"] for item in answer.get("CommonPrefixes", []))
        more = answer.get("IsTruncated") and answer.get("NextContinuationToken")
        return ObjectPage(
            objects=objects,
            prefixes=prefixes,
            next_cursor=answer["NextContinuationToken"] if more else None,
        )

    async def stat(self, bucket: str, key: str) -> BlobObject:
        check_key(key)
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"object {key!r}")
        return BlobObject(
            key=key,
            size=head["ContentLength"],
            modified_at=head["LastModified"].astimezone(UTC),
            etag=head["ETag"].strip('"'),
        )

    # -- bytes ------------------------------------------------------------------------------

    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes]) -> BlobObject:
        check_key(key)
        s3 = await self._s3()
        reader = _Parts(chunks, PART_BYTES)
        first = await reader.next()
        if first.tell() < PART_BYTES:
            first.seek(0)
            try:
                await s3.put_object(Bucket=bucket, Key=key, Body=first.read())
            except (ClientError, BotoCoreError) as error:
                _fail(error, f"object {key!r}")
            finally:
                first.close()
            return await self.stat(bucket, key)
        # Past one part: a multipart upload, aborted if anything fails.
        upload = await self.create_upload(bucket, key)
        try:
            parts = [await self._send_part(bucket, key, upload.upload_id, 1, first)]
            while True:
                part = await reader.next()
                if part.tell() == 0:
                    part.close()
                    break
                parts.append(
                    await self._send_part(bucket, key, upload.upload_id, len(parts) + 1, part)
                )
            return await self.complete_upload(bucket, key, upload.upload_id, parts)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.abort_upload(bucket, key, upload.upload_id)
            raise

    async def _send_part(
        self, bucket: str, key: str, upload_id: str, number: int, spool: Any
    ) -> UploadedPart:
        s3 = await self._s3()
        try:
            spool.seek(0)
            answer = await s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=spool
            )
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"upload {upload_id!r}")
        finally:
            spool.close()
        return UploadedPart(number=number, etag=answer["ETag"].strip('"'))

    async def get(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        check_key(key)
        s3 = await self._s3()
        arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start or end is not None:
            if end is not None and end <= start:
                return
            arguments["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = await s3.get_object(**arguments)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return
            _fail(error, f"object {key!r}")
        except BotoCoreError as error:
            _fail(error, f"object {key!r}")
        body = answer["Body"]
        try:
            while chunk := await body.read(CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, bucket: str, key: str) -> bool:
        try:
            await self.stat(bucket, key)
        except NotFound:
            # The bucket must exist: deleting in a missing one is NotFound, not False.
            if not await self.bucket_exists(bucket):
                raise
            return False
        s3 = await self._s3()
        try:
            await s3.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"object {key!r}")
        return True

    # -- multipart --------------------------------------------------------------------------

    async def create_upload(self, bucket: str, key: str) -> MultipartUpload:
        check_key(key)
        s3 = await self._s3()
        try:
            answer = await s3.create_multipart_upload(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"bucket {bucket!r}")
        return MultipartUpload(upload_id=answer["UploadId"], key=key)

    async def put_part(
        self, bucket: str, key: str, upload_id: str, number: int, chunks: AsyncIterator[bytes]
    ) -> UploadedPart:
        check_key(key)
        if not 1 <= number <= 10_000:
            raise BadInput("a part number is 1 to 10000", fields={"partNumber": "range"})
        await self._require_upload(bucket, key, upload_id)
        spool = await _Parts(chunks, None).next()
        return await self._send_part(bucket, key, upload_id, number, spool)

    async def complete_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> BlobObject:
        check_key(key)
        numbers = [part.number for part in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise BadInput(
                "list the parts once each, in ascending order", fields={"parts": "order"}
            )
        await self._require_upload(bucket, key, upload_id)
        s3 = await self._s3()
        listed = [{"PartNumber": part.number, "ETag": f'"{part.etag}"'} for part in parts]
        try:
            await s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
            )
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"upload {upload_id!r}")
        return await self.stat(bucket, key)

    async def _require_upload(self, bucket: str, key: str, upload_id: str) -> None:
        # An ended upload is NoSuchUpload here, before a part's bytes are read (moto, unlike
        # S3, fails a part or a completion of one with a 500).
        s3 = await self._s3()
        try:
            await s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=1)
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"upload {upload_id!r}")

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        check_key(key)
        s3 = await self._s3()
        try:
            await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as error:
            _fail(error, f"upload {upload_id!r}")

    async def presign(self, bucket: str, key: str, *, method: str, expires_s: int) -> str | None:
        check_key(key)
        s3 = await self._s3()
        operation = {"GET": "get_object", "PUT": "put_object"}[method]
        url: str = await s3.generate_presigned_url(
            operation, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
        )
        return url


class _Parts:
    """Cuts a stream of chunks into spooled parts of at most ``size`` bytes (all of it for
    None); a chunk that crosses a part's end is split, its rest starting the next part."""

    def __init__(self, chunks: AsyncIterator[bytes], size: int | None) -> None:
        self._chunks = chunks
        self._size = size
        self._rest = b""

    async def next(self) -> Any:
        """The next part in a spooled file left at its end: ``tell()`` is its size."""
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
        while self._size is None or spool.tell() < self._size:
            if self._rest:
                chunk, self._rest = self._rest, b""
            else:
                try:
                    chunk = await anext(self._chunks)
                except StopAsyncIteration:
                    break
            if self._size is not None and spool.tell() + len(chunk) > self._size:
                cut = self._size - spool.tell()
                chunk, self._rest = chunk[:cut], chunk[cut:]
            spool.write(chunk)
        return spool
