"""Buckets as directories: the embedded default, under the cluster's data dir.

``ROOT/BUCKET/objects`` holds the objects, each key segment a directory (``d_<segment>``) and
the last one a file (``f_<segment>``): so ``a`` and ``a/b`` are both objects without a file
and a directory fighting over one name, and no key can name anything outside the tree (keys
are checked by `glia.blobs.check_key`, and every name gets a prefix). An object is written to
``ROOT/BUCKET/tmp`` first and renamed into place: a reader sees the old bytes or the new,
never a part. Unfinished multipart uploads keep their parts in ``ROOT/BUCKET/uploads/ID``.

Listings walk the tree in UTF-8 byte order of the keys: in a directory, a file sorts as its
segment and a directory as its segment and ``/``, which is where its keys sort. All file work
runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cluster_gateway.blobs.base import CHUNK_BYTES, BlobStore
from glia.blobs import (
    DELIMITER,
    MAX_PARTS,
    MIN_PART_BYTES,
    BlobObject,
    MultipartUpload,
    ObjectPage,
    UploadedPart,
    check_key,
    check_prefix,
)
from glia.errors import BadInput, Conflict, NotFound

_DIR, _FILE = "d_", "f_"
_UPLOAD_ID_LENGTH = 32


def _etag(stat: os.stat_result) -> str:
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}-{stat.st_ino:x}"


def _object(key: str, stat: os.stat_result) -> BlobObject:
    return BlobObject(
        key=key,
        size=stat.st_size,
        modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
        etag=_etag(stat),
    )


class FilesystemBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- paths ------------------------------------------------------------------------------

    def _bucket(self, bucket: str) -> Path:
        if not bucket or "/" in bucket or bucket in (".", "..") or "\x00" in bucket:
            raise BadInput(f"invalid bucket {bucket!r}")
        return self.root / bucket

    def _existing(self, bucket: str) -> Path:
        path = self._bucket(bucket)
        if not (path / "objects").is_dir():
            raise NotFound(f"bucket {bucket!r} not found")
        return path

    def _path(self, bucket: str, key: str) -> Path:
        check_key(key)
        *dirs, name = key.split(DELIMITER)
        return self._existing(bucket).joinpath("objects", *(_DIR + d for d in dirs), _FILE + name)

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, bucket: str) -> None:
        path = self._bucket(bucket)

        def create() -> None:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                raise Conflict(f"bucket {bucket!r} exists already") from None
            for part in ("tmp", "uploads", "objects"):  # objects last: it says "ready"
                (path / part).mkdir(mode=0o700)

        await asyncio.to_thread(create)

    async def delete_bucket(self, bucket: str, *, force: bool = False) -> None:
        path = self._existing(bucket)

        def delete() -> None:
            if not force and (
                any((path / "objects").iterdir()) or any((path / "uploads").iterdir())
            ):
                raise Conflict(f"bucket {bucket!r} is not empty")
            # Out of sight first (one rename), then removed.
            doomed = self.root / f".deleted-{uuid.uuid4().hex}"
            path.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)

        await asyncio.to_thread(delete)

    async def bucket_exists(self, bucket: str) -> bool:
        return await asyncio.to_thread((self._bucket(bucket) / "objects").is_dir)

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
        root = self._existing(bucket) / "objects"
        grouped = bool(delimiter)
        return await asyncio.to_thread(self._list, root, prefix, grouped, limit, after)

    def _list(
        self, root: Path, prefix: str, grouped: bool, limit: int, after: str | None
    ) -> ObjectPage:
        # Start at the deepest directory the prefix names whole: `a/b/c` walks `a/b`.
        dirs = prefix.split(DELIMITER)[:-1]
        start = root.joinpath(*(_DIR + d for d in dirs))
        base = "".join(d + DELIMITER for d in dirs)
        objects: builtins.list[BlobObject] = []
        prefixes: builtins.list[str] = []
        more = False
        for key, path, is_dir in self._walk(start, base, prefix, after, grouped):
            if len(objects) + len(prefixes) == limit:
                more = True
                break
            if is_dir:
                prefixes.append(key)
            else:
                try:
                    objects.append(_object(key, path.stat()))
                except FileNotFoundError:
                    continue  # deleted while listed
        last = max([*(o.key for o in objects[-1:]), *prefixes[-1:]], default=None, key=_bytes)
        return ObjectPage(
            objects=tuple(objects), prefixes=tuple(prefixes), next_cursor=last if more else None
        )

    def _walk(
        self, directory: Path, base: str, prefix: str, after: str | None, grouped: bool
    ) -> Iterator[tuple[str, Path, bool]]:
        """(key, path, is a common prefix) in key order, from ``directory`` whose keys start
        with ``base``."""
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return
        entries = []
        for name in names:
            if name.startswith(_FILE):
                entries.append((base + name[2:], name, False))
            elif name.startswith(_DIR):
                entries.append((base + name[2:] + DELIMITER, name, True))
        entries.sort(key=lambda entry: _bytes(entry[0]))
        for key, name, is_dir in entries:
            if is_dir:
                # Every key beneath starts with `key`; the prefix may be longer or shorter.
                if not (key.startswith(prefix) or prefix.startswith(key)):
                    continue
                if after is not None and not (_bytes(after) < _bytes(key) or after.startswith(key)):
                    continue  # the whole directory was listed already
                if grouped and key.startswith(prefix) and len(key) > len(prefix):
                    if after is None or _bytes(after) < _bytes(key):
                        yield key, directory / name, True
                    continue
                yield from self._walk(directory / name, key, prefix, after, grouped)
            else:
                if not key.startswith(prefix):
                    continue
                if after is not None and _bytes(key) <= _bytes(after):
                    continue
                yield key, directory / name, False

    async def stat(self, bucket: str, key: str) -> BlobObject:
        path = self._path(bucket, key)
        try:
            return _object(key, await asyncio.to_thread(path.stat))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"object {key!r} not found") from None

    # -- bytes ------------------------------------------------------------------------------

    async def _write_temporary(self, bucket_path: Path, chunks: AsyncIterator[bytes]) -> Path:
        temporary = bucket_path / "tmp" / uuid.uuid4().hex
        handle = await asyncio.to_thread(open, temporary, "xb")
        try:
            async for chunk in chunks:
                if chunk:
                    await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.flush)
        except BaseException:
            handle.close()
            temporary.unlink(missing_ok=True)
            raise
        handle.close()
        return temporary

    def _place(self, temporary: Path, path: Path, objects: Path) -> os.stat_result:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            if exc.errno in (errno.ENAMETOOLONG,):
                raise BadInput("the object key is too long for this bucket") from None
            raise
        return path.stat()

    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes]) -> BlobObject:
        path = self._path(bucket, key)
        bucket_path = self._existing(bucket)
        temporary = await self._write_temporary(bucket_path, chunks)
        stat = await asyncio.to_thread(self._place, temporary, path, bucket_path / "objects")
        return _object(key, stat)

    async def get(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(bucket, key)
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"object {key!r} not found") from None
        try:
            size = os.fstat(fd).st_size
            position, stop = start, size if end is None else min(end, size)
            while position < stop:
                chunk = await asyncio.to_thread(
                    os.pread, fd, min(CHUNK_BYTES, stop - position), position
                )
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def delete(self, bucket: str, key: str) -> bool:
        path = self._path(bucket, key)
        objects = self._existing(bucket) / "objects"

        def delete() -> bool:
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                return False
            parent = path.parent
            while parent != objects:  # empty directories go with their last object
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
            return True

        return await asyncio.to_thread(delete)

    # -- multipart --------------------------------------------------------------------------

    def _upload(self, bucket: str, key: str, upload_id: str) -> Path:
        if len(upload_id) != _UPLOAD_ID_LENGTH or not upload_id.isalnum():
            raise NotFound(f"upload {upload_id!r} not found")
        path = self._existing(bucket) / "uploads" / upload_id
        try:
            owner = json.loads((path / "key").read_text())
        except (FileNotFoundError, ValueError):
            raise NotFound(f"upload {upload_id!r} not found") from None
        if owner != key:
            raise NotFound(f"upload {upload_id!r} not found")
        return path

    async def create_upload(self, bucket: str, key: str) -> MultipartUpload:
        self._path(bucket, key)
        upload_id = uuid.uuid4().hex
        path = self._existing(bucket) / "uploads" / upload_id

        def create() -> None:
            path.mkdir(mode=0o700)
            (path / "key").write_text(json.dumps(key))

        await asyncio.to_thread(create)
        return MultipartUpload(upload_id=upload_id, key=key)

    async def put_part(
        self, bucket: str, key: str, upload_id: str, number: int, chunks: AsyncIterator[bytes]
    ) -> UploadedPart:
        if not 1 <= number <= MAX_PARTS:
            raise BadInput(f"a part number is 1 to {MAX_PARTS}", fields={"partNumber": "range"})
        upload = await asyncio.to_thread(self._upload, bucket, key, upload_id)
        temporary = await self._write_temporary(self._existing(bucket), chunks)
        part = upload / f"part-{number:05d}"
        await asyncio.to_thread(os.replace, temporary, part)
        return UploadedPart(number=number, etag=_etag(await asyncio.to_thread(part.stat)))

    async def complete_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> BlobObject:
        upload = await asyncio.to_thread(self._upload, bucket, key, upload_id)
        bucket_path = self._existing(bucket)
        path = self._path(bucket, key)
        numbers = [part.number for part in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise BadInput(
                "list the parts once each, in ascending order", fields={"parts": "order"}
            )

        def join() -> os.stat_result:
            files: builtins.list[Path] = []
            for index, part in enumerate(parts):
                file = upload / f"part-{part.number:05d}"
                try:
                    stat = file.stat()
                except FileNotFoundError:
                    raise BadInput(f"part {part.number} was not put") from None
                if _etag(stat) != part.etag:
                    raise BadInput(f"part {part.number} is not the one put (its etag differs)")
                if index < len(parts) - 1 and stat.st_size < MIN_PART_BYTES:
                    raise BadInput(
                        f"part {part.number} is smaller than 5 MiB and not the last",
                        fields={"parts": "too small"},
                    )
                files.append(file)
            temporary = bucket_path / "tmp" / uuid.uuid4().hex
            with open(temporary, "xb") as out:
                for file in files:
                    with open(file, "rb") as source:
                        shutil.copyfileobj(source, out, CHUNK_BYTES)
            stat = self._place(temporary, path, bucket_path / "objects")
            shutil.rmtree(upload, ignore_errors=True)
            return stat

        return _object(key, await asyncio.to_thread(join))

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        upload = await asyncio.to_thread(self._upload, bucket, key, upload_id)
        await asyncio.to_thread(shutil.rmtree, upload, True)


def _bytes(key: str) -> bytes:
    return key.encode("utf-8")
