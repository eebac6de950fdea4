"""What a cluster gateway's storage, disk and bucket routes and their clients agree on: the
paths, the headers, how a location, an object and an error travel
(`cluster_gateway.server.storage` and `cluster_gateway.server.blobs` serve them,
`cluster_gateway.remote_storage` and `cluster_gateway.remote_blobs` call them).

Here, not in either side, so that the control plane's client imports no web framework and the
two sides cannot drift apart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from glia.errors import ERRORS_BY_CODE, BadInput, GliaError
from glia.storage import MAX_PATH_BYTES, StorageLocation, check_name

# Metadata operations: ``POST STORAGE_PREFIX/<operation>``, a JSON object each way.
STORAGE_PREFIX = "/storage"
OPERATIONS = (
    "stat",
    "list",
    "mkdir",
    "remove",
    "move",
    "copy",
    "glob",
    "usage",
    "disk",
    "partial-size",
    "sync-plan",
)
# Bytes: ``GET`` reads a file, ``PUT`` writes one (the body streamed both ways).
FILE_PATH = STORAGE_PREFIX + "/file"
# A tar stream: ``PUT`` writes its members, ``POST`` with ``{"location", "paths"}`` reads one.
ARCHIVE_PATH = STORAGE_PREFIX + "/archive"
# Disks: ``POST DISKS_PREFIX/<operation>`` with ``{"diskId", …}``.
DISKS_PREFIX = "/disks"
DISK_OPERATIONS = ("create", "delete", "used-bytes")
# Buckets: ``POST BLOBS_PREFIX/<operation>`` with ``{"bucket", …}``, a JSON object each way.
BLOBS_PREFIX = "/blobs"
BLOB_OPERATIONS = (
    "create-bucket",
    "delete-bucket",
    "bucket-exists",
    "list",
    "stat",
    "delete",
    "create-upload",
    "complete-upload",
    "abort-upload",
)
# An object's bytes: ``GET`` reads ``[start, end)``, ``PUT`` writes the whole object; a part's:
# ``PUT`` with ``uploadId`` and ``number``. Which object, in `BLOB_HEADER`.
OBJECT_PATH = BLOBS_PREFIX + "/object"
PART_PATH = BLOBS_PREFIX + "/part"

# Where a byte route's location travels (its body is the bytes): JSON, ASCII-escaped.
LOCATION_HEADER = "x-glia-location"
CHECKSUM_HEADER = "x-glia-checksum"
MAX_BYTES_HEADER = "x-glia-max-bytes"
MTIME_HEADER = "x-glia-mtime"
# The bytes an upload declares (the user's Content-Length), set aside before they come.
LENGTH_HEADER = "x-glia-length"
EXECUTABLE_HEADER = "x-glia-executable"
# ``{"bucket", "key"}``: JSON, ASCII-escaped (a key is any UTF-8 `check_key` allows).
BLOB_HEADER = "x-glia-blob"

# A JSON body either way: a sync plan of 5,000 paths of up to 4 KiB each, with room.
MAX_JSON_BYTES = 64 * 1024 * 1024
# A path's names on the wire: a path of MAX_PATH_BYTES holds at most half as many.
_MAX_NAMES = MAX_PATH_BYTES // 2


def location_to_wire(location: StorageLocation) -> dict[str, Any]:
    """The path as a list of names, not a string: JSON carries every name a host's file
    system may hold (a lone surrogate of an undecodable byte too), unescaped by nobody."""
    return {
        "cluster": location.cluster,
        "org": location.org,
        "project": location.project,
        "path": list(location.path),
    }


def location_header(location: StorageLocation) -> str:
    return json.dumps(location_to_wire(location), ensure_ascii=True, separators=(",", ":"))


def location_from_wire(data: Any, field: str = "location") -> StorageLocation:
    """A location as `location_to_wire` sends it, each name checked as `glia.storage` checks
    a path's (BAD_USER_INPUT): the gateway trusts its caller's identity, not its input."""
    if not isinstance(data, Mapping):
        raise BadInput(f"{field} must be an object", fields={field: "not an object"})
    names = data.get("path")
    parts = (data.get("cluster"), data.get("org"), data.get("project"))
    if (
        not all(isinstance(part, str) for part in parts)
        or not isinstance(names, list)
        or len(names) > _MAX_NAMES
        or not all(isinstance(name, str) for name in names)
    ):
        raise BadInput(
            f"{field} must be {{cluster, org, project, path: [names]}}",
            fields={field: "malformed"},
        )
    cluster, org, project = (check_name(part, field) for part in parts)  # type: ignore[arg-type]
    path = tuple(check_name(name, field) for name in names)
    if len("/".join(path).encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadInput(
            f"the path is longer than {MAX_PATH_BYTES} bytes", fields={field: "path too long"}
        )
    return StorageLocation(cluster, org, project, path)


def location_from_header(text: str | None) -> StorageLocation:
    if text is None:
        raise BadInput(f"name the location in {LOCATION_HEADER}", fields={"location": "missing"})
    try:
        data = json.loads(text)
    except ValueError:
        raise BadInput(f"{LOCATION_HEADER} must be JSON", fields={"location": "not JSON"}) from None
    return location_from_wire(data)


def blob_header(bucket: str, key: str) -> str:
    return json.dumps({"bucket": bucket, "key": key}, ensure_ascii=True, separators=(",", ":"))


def blob_from_header(text: str | None) -> tuple[str, str]:
    """The bucket and key `blob_header` sent (checked as names by the store itself)."""
    if text is None:
        raise BadInput(f"name the object in {BLOB_HEADER}", fields={"object": "missing"})
    try:
        data = json.loads(text)
    except ValueError:
        raise BadInput(f"{BLOB_HEADER} must be JSON", fields={"object": "not JSON"}) from None
    if not isinstance(data, Mapping):
        raise BadInput(f"{BLOB_HEADER} must be an object", fields={"object": "malformed"})
    bucket, key = data.get("bucket"), data.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str):
        raise BadInput(f"{BLOB_HEADER} names a bucket and a key", fields={"object": "malformed"})
    return bucket, key


def error_to_wire(error: GliaError) -> dict[str, Any]:
    return {
        "code": error.code,
        "message": error.message,
        "fields": error.fields,
        "details": error.details,
    }


def error_from_wire(data: Any, status: int) -> GliaError:
    """The error a route answered, as the class its code names (the class the gateway
    raised, for every code of `ERRORS_BY_CODE`); another code keeps its code on a
    `GliaError`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("code"), str):
        return GliaError(f"the cluster gateway answered HTTP {status} without an error")
    code = data["code"]
    message = data.get("message")
    fields = data.get("fields")
    details = data.get("details")
    cls = ERRORS_BY_CODE.get(code, GliaError)
    # Built as `GliaError.from_extensions` builds one: a subclass's own __init__ (e.g.
    # TooManyRequests') takes other arguments than the ones that crossed.
    error = cls.__new__(cls)
    GliaError.__init__(
        error,
        message if isinstance(message, str) else f"the cluster gateway answered {code}",
        fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else None,
        details=details if isinstance(details, dict) else None,
    )
    if cls is GliaError:
        error.code = code
        error.http_status = status
    return error


def parse_count(text: str | None, field: str) -> int | None:
    """A non-negative whole number from a query parameter or header (None if absent)."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise BadInput(f"{field} must be a whole number", fields={field: "not a number"}) from None
    if value < 0:
        raise BadInput(f"{field} must not be negative", fields={field: "negative"})
    return value


def parse_mtime(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        mtime = float(text)
    except ValueError:
        mtime = math.nan
    if not math.isfinite(mtime) or mtime < 0:
        raise BadInput("the mtime must be seconds since the epoch", fields={"mtime": "not a time"})
    return mtime
