"""A remote cluster's file storage and disks, reached over HTTP: the control plane's client
of a gateway's storage routes (`cluster_gateway.server.storage`).

`RemoteStorage` is a `Storage` and `RemoteDisks` a `glia.disks.DiskStore`, so a remote
cluster's entries in the control plane's registries are these and nothing else changes: the
control plane checks a user's access, then calls them, and the bytes stream through it in
bounded chunks, never held whole. An error the gateway answers is raised here as the same
`glia.errors` class; a gateway that cannot be reached is UNAVAILABLE.
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from cluster_gateway.storage import CHUNK_BYTES
from cluster_gateway.storage_wire import (
    ARCHIVE_PATH,
    CHECKSUM_HEADER,
    DISKS_PREFIX,
    EXECUTABLE_HEADER,
    FILE_PATH,
    LENGTH_HEADER,
    LOCATION_HEADER,
    MAX_BYTES_HEADER,
    MAX_JSON_BYTES,
    MTIME_HEADER,
    STORAGE_PREFIX,
    error_from_wire,
    location_header,
    location_to_wire,
)
from glia.errors import GliaError, Unavailable
from glia.model import Model
from glia.storage import (
    ArchiveResult,
    ChecksumTrailer,
    DeclaredChecksum,
    DiskUsage,
    FileStatus,
    GlobResult,
    StorageLocation,
    StorageUsage,
    SyncFile,
    SyncPlan,
)

M = TypeVar("M", bound=Model)

# A gateway must answer (its headers, then each read of a body) within this...
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
# ...or within this, for an answer that waits on work as big as the files it touches: a copy
# or a recursive removal of a tree, a sync's walk, a write's end (a resumed upload's kept
# bytes are hashed again) or an archive's.
SLOW_TIMEOUT = httpx.Timeout(3600.0, connect=10.0)
# Disks: making one runs mkfs, deleting one umount, each given 120 s by `LocalDisks`.
DISK_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
# Each streamed transfer holds a connection for its whole length: room for many at once.
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=50)
# What an error answer may hold: a message and a few fields.
MAX_ERROR_BYTES = 64 * 1024

Headers = Callable[[], Mapping[str, str]]


class GatewayHttp:
    """The HTTP client of a gateway's byte routes (storage, disks, buckets): the auth
    headers asked for each request, errors mapped."""

    def __init__(
        self,
        url: str,
        headers: Headers,
        timeout: httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None,
        cluster: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # How errors name it: by its cluster where known.
        self.label = (
            f"cluster {cluster}'s gateway at {self.url}"
            if cluster
            else f"the cluster gateway at {self.url}"
        )
        self._headers = headers
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def _http(self) -> httpx.AsyncClient:
        # Made on first use and again after `aclose`: the owner (a `RemoteGateway`) may
        # close it with its other connections and open it again.
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.url, timeout=self._timeout, limits=LIMITS, transport=self._transport
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**self._headers(), **(extra or {})}

    async def open(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: AsyncIterator[bytes] | None = None,
        params: Mapping[str, int | str] | None = None,
        headers: Mapping[str, str] | None = None,
        slow: bool = False,
    ) -> httpx.Response:
        """Send a request and return its answer once its headers came, its body unread (the
        caller closes it); an error answer is raised as its `GliaError`."""
        request = self._http.build_request(
            method,
            path,
            params=dict(params) if params else None,
            headers=self.headers(headers),
            content=json.dumps(json_body).encode() if json_body is not None else content,
            timeout=SLOW_TIMEOUT if slow else httpx.USE_CLIENT_DEFAULT,
        )
        if json_body is not None:
            request.headers["content-type"] = "application/json"
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        if response.status_code >= 400:
            try:
                raise await self._error(response)
            finally:
                await response.aclose()
        return response

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request whose answer is a JSON value, read to at most `MAX_JSON_BYTES`."""
        response = await self.open(method, path, **kwargs)
        try:
            body = await self._body(response, MAX_JSON_BYTES)
        finally:
            await response.aclose()
        try:
            return json.loads(body)
        except ValueError:
            raise self.malformed(path) from None

    def unreachable(self, exc: Exception) -> Unavailable:
        return Unavailable(f"{self.label} cannot be reached: {exc}")

    def malformed(self, path: str) -> Unavailable:
        return Unavailable(
            f"{self.label} answered {path} with something this control "
            "plane cannot read (another version?)"
        )

    async def _body(self, response: httpx.Response, limit: int) -> bytes:
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > limit:
                    raise Unavailable(f"{self.label} answered more than {limit} bytes")
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        return bytes(body)

    async def _error(self, response: httpx.Response) -> GliaError:
        body = await self._body(response, MAX_ERROR_BYTES)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        return error_from_wire(data, response.status_code)

    async def stream(self, response: httpx.Response) -> AsyncGenerator[bytes, None]:
        """The body of an answer in chunks of at most `CHUNK_BYTES`, closed at the end (or
        when the reader stops)."""
        try:
            async for chunk in response.aiter_raw(CHUNK_BYTES):
                yield chunk
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        finally:
            await response.aclose()


def parsed(model: type[M], data: Any, gateway: GatewayHttp, path: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise gateway.malformed(path) from None


class GatewayRoutes:
    """A client of some of the byte routes of the gateway at ``url``; ``headers()`` gives
    each request's credentials (the control plane's signed claim)."""

    default_timeout = DEFAULT_TIMEOUT

    def __init__(
        self,
        url: str,
        *,
        headers: Headers,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        cluster: str | None = None,
    ) -> None:
        timeout = timeout or self.default_timeout
        self._gateway = GatewayHttp(url, headers, timeout, transport, cluster)

    async def aclose(self) -> None:
        await self._gateway.aclose()


class RemoteStorage(GatewayRoutes):
    """`Storage` of a cluster whose gateway serves it at ``url``."""

    async def _call(self, operation: str, body: dict[str, Any], *, slow: bool = False) -> Any:
        return await self._gateway.call(
            "POST", f"{STORAGE_PREFIX}/{operation}", json_body=body, slow=slow
        )

    async def _status(
        self, operation: str, body: dict[str, Any], *, slow: bool = False
    ) -> FileStatus:
        data = await self._call(operation, body, slow=slow)
        return parsed(FileStatus, data, self._gateway, operation)

    # -- metadata --

    async def stat(self, location: StorageLocation, *, follow: bool = False) -> FileStatus:
        return await self._status(
            "stat", {"location": location_to_wire(location), "follow": follow}
        )

    async def list(
        self, location: StorageLocation, *, after: str | None, limit: int
    ) -> tuple[builtins.list[FileStatus], bool, int]:
        data = await self._call(
            "list", {"location": location_to_wire(location), "after": after, "limit": limit}
        )
        try:
            entries = [FileStatus.model_validate(entry) for entry in data["entries"]]
            more, total = data["more"], data["total"]
        except (ValidationError, KeyError, TypeError):
            raise self._gateway.malformed("list") from None
        if not isinstance(more, bool) or not isinstance(total, int):
            raise self._gateway.malformed("list")
        return entries, more, total

    async def mkdir(self, location: StorageLocation, *, parents: bool = True) -> FileStatus:
        return await self._status(
            "mkdir", {"location": location_to_wire(location), "parents": parents}
        )

    async def remove(self, location: StorageLocation, *, recursive: bool = False) -> int:
        data = await self._call(
            "remove",
            {"location": location_to_wire(location), "recursive": recursive},
            slow=True,
        )
        return self._count(data, "removed", "remove")

    async def move(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        return await self._status(
            "move", {"source": location_to_wire(source), "target": location_to_wire(target)}
        )

    async def copy(self, source: StorageLocation, target: StorageLocation) -> FileStatus:
        return await self._status(
            "copy",
            {"source": location_to_wire(source), "target": location_to_wire(target)},
            slow=True,
        )

    async def glob(self, location: StorageLocation, pattern: str, *, limit: int) -> GlobResult:
        data = await self._call(
            "glob", {"location": location_to_wire(location), "pattern": pattern, "limit": limit}
        )
        return parsed(GlobResult, data, self._gateway, "glob")

    async def usage(self, location: StorageLocation, *, time_limit_s: float) -> StorageUsage:
        data = await self._call(
            "usage", {"location": location_to_wire(location), "timeLimitS": time_limit_s}
        )
        return parsed(StorageUsage, data, self._gateway, "usage")

    async def disk(self, cluster: str) -> DiskUsage:
        return parsed(
            DiskUsage, await self._call("disk", {"cluster": cluster}), self._gateway, "disk"
        )

    async def partial_size(self, location: StorageLocation) -> int:
        data = await self._call("partial-size", {"location": location_to_wire(location)})
        return self._count(data, "size", "partial-size")

    async def sync_plan(self, location: StorageLocation, files: Sequence[SyncFile]) -> SyncPlan:
        data = await self._call(
            "sync-plan",
            {
                "location": location_to_wire(location),
                # By field name, not alias: the gateway validates them as input.
                "files": [file.model_dump() for file in files],
            },
            slow=True,
        )
        return parsed(SyncPlan, data, self._gateway, "sync-plan")

    def _count(self, data: Any, field: str, operation: str) -> int:
        value = data.get(field) if isinstance(data, dict) else None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._gateway.malformed(operation)
        return value

    # -- bytes --

    async def read(
        self, location: StorageLocation, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        params = {"offset": offset} if length is None else {"offset": offset, "length": length}
        response = await self._gateway.open(
            "GET", FILE_PATH, params=params, headers={LOCATION_HEADER: location_header(location)}
        )
        async with contextlib.aclosing(self._gateway.stream(response)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def write(
        self,
        location: StorageLocation,
        chunks: AsyncIterator[bytes],
        *,
        offset: int = 0,
        checksum: DeclaredChecksum | None = None,
        max_bytes: int | None = None,
        mtime: float | None = None,
        executable: bool = False,
        length: int | None = None,
    ) -> FileStatus:
        headers = {LOCATION_HEADER: location_header(location)}
        if length is not None:
            headers[LENGTH_HEADER] = str(length)
        if checksum is not None:
            headers[CHECKSUM_HEADER] = checksum.header
        if isinstance(checksum, ChecksumTrailer):
            # The digest comes after the bytes here too; the gateway finds it by the length.
            chunks = checksum.follow(chunks)
        if max_bytes is not None:
            headers[MAX_BYTES_HEADER] = str(max_bytes)
        if mtime is not None:
            headers[MTIME_HEADER] = repr(mtime)  # repr: the float exactly, back and forth
        if executable:
            headers[EXECUTABLE_HEADER] = "1"
        # A transfer that breaks (``chunks`` raises, or this is cancelled) closes the
        # connection: the gateway keeps the partial file, as `LocalStorage` does, for a
        # resume at `partial_size`, and the error reaches the caller as it was raised.
        data = await self._gateway.call(
            "PUT",
            FILE_PATH,
            content=chunks,
            params={"offset": offset},
            headers=headers,
            slow=True,
        )
        return parsed(FileStatus, data, self._gateway, "write")

    async def write_archive(
        self, location: StorageLocation, chunks: AsyncIterator[bytes], *, max_bytes: int | None
    ) -> ArchiveResult:
        headers = {LOCATION_HEADER: location_header(location)}
        if max_bytes is not None:
            headers[MAX_BYTES_HEADER] = str(max_bytes)
        data = await self._gateway.call(
            "PUT", ARCHIVE_PATH, content=chunks, headers=headers, slow=True
        )
        return parsed(ArchiveResult, data, self._gateway, "write_archive")

    async def read_archive(
        self, location: StorageLocation, paths: Sequence[tuple[str, ...]] | None
    ) -> AsyncIterator[bytes]:
        # Asked before returning, as `LocalStorage` finds the directory first: a missing
        # one raises here, not in the middle of the caller's answer.
        listed = None if paths is None else [list(p) for p in paths]
        response = await self._gateway.open(
            "POST",
            ARCHIVE_PATH,
            json_body={"location": location_to_wire(location), "paths": listed},
        )
        return self._gateway.stream(response)


class RemoteDisks(GatewayRoutes):
    """`glia.disks.DiskStore` of a cluster whose gateway serves its disks at ``url``."""

    default_timeout = DISK_TIMEOUT

    async def _call(self, operation: str, body: dict[str, Any]) -> Any:
        return await self._gateway.call("POST", f"{DISKS_PREFIX}/{operation}", json_body=body)

    async def create(self, disk_id: str, size_bytes: int) -> None:
        await self._call("create", {"diskId": disk_id, "sizeBytes": size_bytes})

    async def delete(self, disk_id: str) -> None:
        await self._call("delete", {"diskId": disk_id})

    async def used_bytes(self, disk_id: str) -> int | None:
        data = await self._call("used-bytes", {"diskId": disk_id})
        used = data.get("usedBytes") if isinstance(data, dict) else None
        if used is not None and (not isinstance(used, int) or isinstance(used, bool)):
            raise self._gateway.malformed("used-bytes")
        return used
