"""The protocol every bucket provider keeps: the filesystem one and S3.

A provider knows buckets by their physical name (the one it stores them under; the control
plane maps a project's bucket to it) and keys as `glia.blobs.check_key` allows them. Bytes go
in and out as async iterators of bounded chunks. ``tests/contract/test_blob_contract.py`` holds
every implementation to this, point by point.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence

from glia.blobs import BlobObject, MultipartUpload, ObjectPage, UploadedPart

CHUNK_BYTES = 1024 * 1024


class BlobStore(ABC):
    """One provider's buckets. Missing buckets or objects raise `glia.errors.NotFound`;
    a bucket that exists already on create, or is not empty on delete, `Conflict`."""

    @abstractmethod
    async def create_bucket(self, bucket: str) -> None: ...

    @abstractmethod
    async def delete_bucket(self, bucket: str, *, force: bool = False) -> None:
        """Delete a bucket; with ``force``, its objects and unfinished uploads too."""

    @abstractmethod
    async def bucket_exists(self, bucket: str) -> bool: ...

    @abstractmethod
    async def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> ObjectPage:
        """Keys starting with ``prefix`` in UTF-8 byte order, at most ``limit`` (objects and
        common prefixes together), after the cursor ``after`` (a page's ``next_cursor``).
        With ``delimiter`` (``/``), the keys with a delimiter past the prefix are listed once
        as their common prefix."""

    @abstractmethod
    async def stat(self, bucket: str, key: str) -> BlobObject: ...

    @abstractmethod
    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes]) -> BlobObject:
        """Write an object from ``chunks``: readers see the old object or the whole new one,
        never a part (a failed upload leaves the old one)."""

    @abstractmethod
    def get(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """The object's bytes ``[start, end)`` in chunks; the object is looked up when the
        iteration starts (`NotFound` then)."""

    @abstractmethod
    async def delete(self, bucket: str, key: str) -> bool:
        """Delete an object; False when there was none."""

    @abstractmethod
    async def create_upload(self, bucket: str, key: str) -> MultipartUpload: ...

    @abstractmethod
    async def put_part(
        self, bucket: str, key: str, upload_id: str, number: int, chunks: AsyncIterator[bytes]
    ) -> UploadedPart:
        """Put one part (1 to 10,000); every part but the last is at least 5 MiB."""

    @abstractmethod
    async def complete_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> BlobObject:
        """Join the parts, in order, into the object (atomically, as `put`)."""

    @abstractmethod
    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None: ...

    async def presign(self, bucket: str, key: str, *, method: str, expires_s: int) -> str | None:
        """A URL of the provider's own that allows ``method`` on the object for ``expires_s``
        seconds, or None when the provider has none (the control plane signs its own)."""
        return None

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        return None
