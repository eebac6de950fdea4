"""A remote cluster's buckets, reached over HTTP: the control plane's client of a gateway's
bucket routes (`cluster_gateway.server.blobs`).

`RemoteBlobStore` is a `BlobStore`, so a remote cluster's entry in the control plane's bucket
registry is this and nothing else changes: the control plane checks a caller's access (a
token, an access key, a signed URL), then calls it, and the bytes stream through it in bounded
chunks, never held whole. An error the gateway answers is raised here as the same
`glia.errors` class; a gateway that cannot be reached is UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from cluster_gateway.blobs.base import BlobStore
from cluster_gateway.remote_storage import GatewayRoutes, parsed
from cluster_gateway.storage_wire import (
    BLOB_HEADER,
    BLOBS_PREFIX,
    OBJECT_PATH,
    PART_PATH,
    blob_header,
)
from glia.blobs import BlobObject, MultipartUpload, ObjectPage, UploadedPart


class RemoteBlobStore(GatewayRoutes, BlobStore):
    """The buckets of a cluster whose gateway serves them at ``url``."""

    async def close(self) -> None:
        await self.aclose()

    async def _call(self, operation: str, body: dict[str, Any], *, slow: bool = False) -> Any:
        return await self._gateway.call(
            "POST", f"{BLOBS_PREFIX}/{operation}", json_body=body, slow=slow
        )

    # -- buckets --

    async def create_bucket(self, bucket: str) -> None:
        await self._call("create-bucket", {"bucket": bucket})

    async def delete_bucket(self, bucket: str, *, force: bool = False) -> None:
        # Forced, it removes every object: as slow as the bucket is big.
        await self._call("delete-bucket", {"bucket": bucket, "force": force}, slow=force)

    async def bucket_exists(self, bucket: str) -> bool:
        data = await self._call("bucket-exists", {"bucket": bucket})
        exists = data.get("exists") if isinstance(data, dict) else None
        if not isinstance(exists, bool):
            raise self._gateway.malformed("bucket-exists")
        return exists

    # -- objects --

    async def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> ObjectPage:
        data = await self._call(
            "list",
            {
                "bucket": bucket,
                "prefix": prefix,
                "delimiter": delimiter,
                "limit": limit,
                "after": after,
            },
        )
        return parsed(ObjectPage, data, self._gateway, "list")

    async def stat(self, bucket: str, key: str) -> BlobObject:
        data = await self._call("stat", {"bucket": bucket, "key": key})
        return parsed(BlobObject, data, self._gateway, "stat")

    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes]) -> BlobObject:
        # A transfer that breaks closes the connection: the gateway's store never renames a
        # part into place, so the old object stays, as `BlobStore.put` promises.
        data = await self._gateway.call(
            "PUT", OBJECT_PATH, content=chunks, headers=self._named(bucket, key), slow=True
        )
        return parsed(BlobObject, data, self._gateway, "put")

    async def get(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        params = {"start": start} if end is None else {"start": start, "end": end}
        response = await self._gateway.open(
            "GET", OBJECT_PATH, params=params, headers=self._named(bucket, key)
        )
        async with contextlib.aclosing(self._gateway.stream(response)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def delete(self, bucket: str, key: str) -> bool:
        data = await self._call("delete", {"bucket": bucket, "key": key})
        deleted = data.get("deleted") if isinstance(data, dict) else None
        if not isinstance(deleted, bool):
            raise self._gateway.malformed("delete")
        return deleted

    # -- multipart uploads --

    async def create_upload(self, bucket: str, key: str) -> MultipartUpload:
        data = await self._call("create-upload", {"bucket": bucket, "key": key})
        return parsed(MultipartUpload, data, self._gateway, "create-upload")

    async def put_part(
        self, bucket: str, key: str, upload_id: str, number: int, chunks: AsyncIterator[bytes]
    ) -> UploadedPart:
        data = await self._gateway.call(
            "PUT",
            PART_PATH,
            content=chunks,
            params={"number": number, "uploadId": upload_id},
            headers=self._named(bucket, key),
            slow=True,
        )
        return parsed(UploadedPart, data, self._gateway, "put-part")

    async def complete_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> BlobObject:
        data = await self._call(
            "complete-upload",
            {
                "bucket": bucket,
                "key": key,
                "uploadId": upload_id,
                "parts": [part.to_wire() for part in parts],
            },
            slow=True,  # the parts are joined into one file before it answers
        )
        return parsed(BlobObject, data, self._gateway, "complete-upload")

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        await self._call("abort-upload", {"bucket": bucket, "key": key, "uploadId": upload_id})

    @staticmethod
    def _named(bucket: str, key: str) -> dict[str, str]:
        return {BLOB_HEADER: blob_header(bucket, key)}
