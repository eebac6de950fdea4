"""Buckets and objects: ``client.blobs``.

Metadata goes through GraphQL; bytes over the byte route ``/api/blob/CLUSTER/ORG/PROJECT/
BUCKET/KEY``, streamed both ways. A file over `MULTIPART_THRESHOLD` is uploaded in parts
(`PART_BYTES` each, `PARALLEL_PARTS` at a time), so a large object never sits in memory
and a failed part is sent again alone.

    async with GliaClient(url, token) as client:
        await client.blobs.create_bucket("data")
        uri = "blob://default/alice/alice/data/train.csv"
        await client.blobs.upload(uri, Path("train.csv"))
        async for chunk in client.blobs.download(uri):
            ...
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from glia.blobs import (
    MAX_OBJECT_PAGE,
    BlobCredential,
    BlobObject,
    Bucket,
    ObjectPage,
    SignedUrl,
    UploadedPart,
    parse_blob_uri,
)
from sdk.documents import selection
from sdk.resource import Resource

# Files larger than this are uploaded in parts of PART_BYTES, PARALLEL_PARTS at a time.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_BYTES = 16 * 1024 * 1024
PARALLEL_PARTS = 4
CHUNK_BYTES = 1024 * 1024

Progress = Callable[[int], None]
"""Called with the number of bytes just moved."""

_BUCKET = selection(Bucket)
_OBJECT = selection(BlobObject)
_CREDENTIAL = selection(BlobCredential)

BUCKETS = f"""query Buckets($cluster: String, $org: String, $project: String) {{
    buckets(cluster: $cluster, org: $org, project: $project) {{ {_BUCKET} }}
}}"""
BUCKET = f"query Bucket($uri: String!) {{ bucket(uri: $uri) {{ {_BUCKET} }} }}"
CREATE_BUCKET = f"""mutation CreateBucket($input: CreateBucketInput!) {{
    createBucket(input: $input) {{ bucket {{ {_BUCKET} }} }}
}}"""
IMPORT_BUCKET = f"""mutation ImportBucket($input: ImportBucketInput!) {{
    importBucket(input: $input) {{ bucket {{ {_BUCKET} }} }}
}}"""
UPDATE_BUCKET = f"""mutation UpdateBucket($input: UpdateBucketInput!) {{
    updateBucket(input: $input) {{ bucket {{ {_BUCKET} }} }}
}}"""
DELETE_BUCKET = f"""mutation DeleteBucket($input: DeleteBucketInput!) {{
    deleteBucket(input: $input) {{ bucket {{ {_BUCKET} }} }}
}}"""
BLOB_OBJECTS = f"""query BlobObjects($uri: String!, $prefix: String!, $delimiter: String,
    $first: Int!, $after: String) {{
    blobObjects(uri: $uri, prefix: $prefix, delimiter: $delimiter, first: $first,
        after: $after) {{ {selection(ObjectPage)} }}
}}"""
BLOB_OBJECT = f"query BlobObject($uri: String!) {{ blobObject(uri: $uri) {{ {_OBJECT} }} }}"
BLOB_GLOB = f"""query BlobGlob($uri: String!, $pattern: String!, $first: Int!) {{
    blobGlob(uri: $uri, pattern: $pattern, first: $first) {{ {_OBJECT} }}
}}"""
DELETE_BLOB_OBJECT = """mutation DeleteBlobObject($input: DeleteBlobObjectInput!) {
    deleteBlobObject(input: $input) { uri existed }
}"""
SIGN_BLOB_URL = f"""mutation SignBlobUrl($input: SignBlobUrlInput!) {{
    signBlobUrl(input: $input) {{ signedUrl {{ {selection(SignedUrl)} }} }}
}}"""
BLOB_CREDENTIALS = f"query BlobCredentials {{ blobCredentials {{ {_CREDENTIAL} }} }}"
CREATE_BLOB_CREDENTIALS = f"""mutation CreateBlobCredentials($input: CreateBlobCredentialsInput!) {{
    createBlobCredentials(input: $input) {{ credential {{ {_CREDENTIAL} }} secret }}
}}"""
DELETE_BLOB_CREDENTIALS = f"""mutation DeleteBlobCredentials($input: DeleteBlobCredentialsInput!) {{
    deleteBlobCredentials(input: $input) {{ credential {{ {_CREDENTIAL} }} }}
}}"""

DOCUMENTS: dict[str, str] = {
    name: value
    for name, value in globals().items()
    if name.isupper() and isinstance(value, str) and value.startswith(("query", "mutation"))
}


class BlobsResource(Resource):
    # -- buckets ----------------------------------------------------------------------------

    async def buckets(
        self, *, cluster: str | None = None, org: str | None = None, project: str | None = None
    ) -> builtins.list[Bucket]:
        """The buckets the caller may read, narrowed to a cluster, an org or a project."""
        variables = {"cluster": cluster, "org": org, "project": project}
        data = await self._client.execute(BUCKETS, variables)
        return [Bucket.model_validate(item) for item in data["buckets"]]

    async def bucket(self, uri: str) -> Bucket:
        data = await self._client.execute(BUCKET, {"uri": uri})
        return Bucket.model_validate(data["bucket"])

    async def create_bucket(
        self,
        name: str,
        *,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
        public: bool = False,
    ) -> Bucket:
        """A new bucket in a project (the caller's personal one when None)."""
        variables = {
            "input": {
                "name": name,
                "cluster": cluster,
                "org": org,
                "project": project,
                "public": public,
            }
        }
        data = await self._client.execute(CREATE_BUCKET, variables)
        return Bucket.model_validate(data["createBucket"]["bucket"])

    async def import_bucket(
        self,
        name: str,
        *,
        remote_name: str,
        access_key_id: str,
        secret_access_key: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        cluster: str | None = None,
        org: str | None = None,
        project: str | None = None,
        public: bool = False,
    ) -> Bucket:
        """Bring an existing S3 bucket into a project with its credentials."""
        variables = {
            "input": {
                "name": name,
                "cluster": cluster,
                "org": org,
                "project": project,
                "public": public,
                "remoteName": remote_name,
                "endpointUrl": endpoint_url,
                "region": region,
                "accessKeyId": access_key_id,
                "secretAccessKey": secret_access_key,
            }
        }
        data = await self._client.execute(IMPORT_BUCKET, variables)
        return Bucket.model_validate(data["importBucket"]["bucket"])

    async def set_public(self, uri: str, public: bool) -> Bucket:
        variables = {"input": {"uri": uri, "public": public}}
        data = await self._client.execute(UPDATE_BUCKET, variables)
        return Bucket.model_validate(data["updateBucket"]["bucket"])

    async def delete_bucket(self, uri: str, *, force: bool = False) -> Bucket:
        """Delete a bucket: an empty one, or with ``force`` its objects too."""
        variables = {"input": {"uri": uri, "force": force}}
        data = await self._client.execute(DELETE_BUCKET, variables)
        return Bucket.model_validate(data["deleteBucket"]["bucket"])

    # -- objects ----------------------------------------------------------------------------

    async def list(
        self,
        uri: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        first: int = MAX_OBJECT_PAGE,
        after: str | None = None,
    ) -> ObjectPage:
        """One page of a bucket's objects; give its ``next_cursor`` as ``after`` for the next."""
        variables = {
            "uri": uri,
            "prefix": prefix,
            "delimiter": delimiter,
            "first": first,
            "after": after,
        }
        data = await self._client.execute(BLOB_OBJECTS, variables)
        return ObjectPage.model_validate(data["blobObjects"])

    async def iter_pages(
        self, uri: str, *, prefix: str = "", delimiter: str | None = None
    ) -> AsyncGenerator[ObjectPage, None]:
        """Every page of a listing, in order."""
        after: str | None = None
        while True:
            page = await self.list(uri, prefix=prefix, delimiter=delimiter, after=after)
            yield page
            if page.next_cursor is None:
                return
            after = page.next_cursor

    async def stat(self, uri: str) -> BlobObject:
        data = await self._client.execute(BLOB_OBJECT, {"uri": uri})
        return BlobObject.model_validate(data["blobObject"])

    async def glob(
        self, uri: str, pattern: str, *, first: int = MAX_OBJECT_PAGE
    ) -> builtins.list[BlobObject]:
        """Objects whose keys match ``pattern`` (``*``, ``?``, ``[…]``, ``**``)."""
        variables = {"uri": uri, "pattern": pattern, "first": first}
        data = await self._client.execute(BLOB_GLOB, variables)
        return [BlobObject.model_validate(item) for item in data["blobGlob"]]

    async def delete(self, uri: str) -> bool:
        """Delete an object; False when there was none."""
        data = await self._client.execute(DELETE_BLOB_OBJECT, {"input": {"uri": uri}})
        return bool(data["deleteBlobObject"]["existed"])

    async def sign_url(
        self, uri: str, *, method: str = "GET", expires_in_s: int = 3600
    ) -> SignedUrl:
        """A URL that reads (GET) or writes (PUT) the object without a token, for a while."""
        variables = {"input": {"uri": uri, "method": method, "expiresInSeconds": expires_in_s}}
        data = await self._client.execute(SIGN_BLOB_URL, variables)
        return SignedUrl.model_validate(data["signBlobUrl"]["signedUrl"])

    # -- access keys ------------------------------------------------------------------------

    async def create_credentials(
        self, name: str, buckets: builtins.list[str], *, read_only: bool = False
    ) -> tuple[BlobCredential, str]:
        """A new access key for ``buckets`` (URIs) and its secret, which is shown this once."""
        variables = {"input": {"name": name, "buckets": buckets, "readOnly": read_only}}
        data = await self._client.execute(CREATE_BLOB_CREDENTIALS, variables)
        payload = data["createBlobCredentials"]
        return BlobCredential.model_validate(payload["credential"]), str(payload["secret"])

    async def credentials(self) -> builtins.list[BlobCredential]:
        data = await self._client.execute(BLOB_CREDENTIALS)
        return [BlobCredential.model_validate(item) for item in data["blobCredentials"]]

    async def delete_credentials(self, credential_id: str) -> BlobCredential:
        variables = {"input": {"id": credential_id}}
        data = await self._client.execute(DELETE_BLOB_CREDENTIALS, variables)
        return BlobCredential.model_validate(data["deleteBlobCredentials"]["credential"])

    # -- bytes ------------------------------------------------------------------------------

    def object_url(self, uri: str) -> str:
        """The byte route of an object: ``<server>/api/blob/C/O/P/B/KEY``."""
        ref = parse_blob_uri(uri, key=True)
        assert ref.key is not None
        parts = [ref.cluster, ref.org, ref.project, ref.bucket, *ref.key.split("/")]
        return f"{self._client.url}/api/blob/" + "/".join(quote(p, safe="") for p in parts)

    async def _request(
        self, method: str, url: str, *, content: Any = None, json: Any = None, **extra: Any
    ) -> Any:
        from sdk.client import _byte_route_error, _http_errors

        http = self._client.bulk_http()
        with _http_errors(self._client.url):
            response = await http.request(
                method,
                url,
                content=content,
                json=json,
                headers=self._client._headers(),
                timeout=self._client.timeout,
                **extra,
            )
        if response.status_code >= 400:
            raise _byte_route_error(response.status_code, response.content)
        return response.json() if response.content else None

    async def upload(
        self,
        uri: str,
        source: Path | bytes | AsyncIterable[bytes],
        *,
        progress: Progress | None = None,
    ) -> BlobObject:
        """Write an object from a file, bytes or a stream of chunks. A file over
        `MULTIPART_THRESHOLD` goes in parts, several at a time."""
        url = self.object_url(uri)
        if isinstance(source, Path):
            size = (await asyncio.to_thread(source.stat)).st_size
            if size > MULTIPART_THRESHOLD:
                return await self._upload_parts(url, source, size, progress)
        if isinstance(source, Path):
            body: Any = _file_chunks(source, 0, None, progress)
        elif isinstance(source, bytes):
            body = source
        else:
            body = _counted(source, progress)
        answer = await self._request("PUT", url, content=body)
        if isinstance(source, bytes) and progress is not None:
            progress(len(source))
        return BlobObject.model_validate(answer)

    async def _upload_parts(
        self, url: str, path: Path, size: int, progress: Progress | None
    ) -> BlobObject:
        started = await self._request("POST", url, params={"uploads": ""})
        upload_id = started["uploadId"]
        numbers = range(1, (size + PART_BYTES - 1) // PART_BYTES + 1)
        limit = asyncio.Semaphore(PARALLEL_PARTS)

        async def put(number: int) -> UploadedPart:
            start = (number - 1) * PART_BYTES
            length = min(PART_BYTES, size - start)
            async with limit:
                for attempt in range(3):
                    try:
                        answer = await self._request(
                            "PUT",
                            url,
                            params={"uploadId": upload_id, "partNumber": str(number)},
                            content=_file_chunks(path, start, length, progress),
                        )
                        return UploadedPart.model_validate(answer)
                    except Exception:
                        if attempt == 2:
                            raise
                        await asyncio.sleep(0.5 * (attempt + 1))
            raise AssertionError("unreachable")

        try:
            parts = await asyncio.gather(*(put(number) for number in numbers))
            listed = {"parts": [part.to_wire() for part in parts]}
            done = await self._request("POST", url, params={"uploadId": upload_id}, json=listed)
        except BaseException:
            try:
                await self._request("DELETE", url, params={"uploadId": upload_id})
            except Exception:  # the upload is abandoned either way
                pass
            raise
        return BlobObject.model_validate(done)

    async def download(
        self, uri: str, *, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The object's bytes ``[start, end)`` (the whole object by default), in chunks."""
        from sdk.client import _byte_route_error, _http_errors

        http = self._client.bulk_http()
        headers = self._client._headers()
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with _http_errors(self._client.url):
            async with http.stream("GET", self.object_url(uri), headers=headers) as response:
                if response.status_code >= 400:
                    raise _byte_route_error(response.status_code, await response.aread())
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    yield chunk

    async def download_to(
        self, uri: str, path: Path, *, progress: Progress | None = None
    ) -> BlobObject:
        """Save an object to ``path``: written beside it, then renamed into place."""
        found = await self.stat(uri)
        partial = path.with_name(f".{path.name}.glia-partial")
        try:
            out = await asyncio.to_thread(open, partial, "wb")
            with out:
                async for chunk in self.download(uri):
                    await asyncio.to_thread(out.write, chunk)
                    if progress is not None:
                        progress(len(chunk))
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return found


async def _file_chunks(
    path: Path, start: int, length: int | None, progress: Progress | None
) -> AsyncGenerator[bytes, None]:
    source = await asyncio.to_thread(open, path, "rb")
    with source:
        source.seek(start)
        left = length
        while left is None or left > 0:
            size = CHUNK_BYTES if left is None else min(CHUNK_BYTES, left)
            chunk = await asyncio.to_thread(source.read, size)
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            if progress is not None:
                progress(len(chunk))
            yield chunk


async def _counted(
    chunks: AsyncIterable[bytes], progress: Progress | None
) -> AsyncGenerator[bytes, None]:
    async for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk
