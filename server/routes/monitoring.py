"""``GET /api/jobs/{id}/log``: a job's whole output as bytes, streamed, resumable.

The bytes are what the job printed (stdout and stderr interleaved as they came, each line
ended by a newline). ``?offset=N`` starts at byte N; a single ``Range: bytes=a-b`` (or
``a-``, ``-n``) is answered 206 with ``Content-Range``; a range past the end is 416. For a job
that still runs, the answer covers the output as it was when the request came.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from control_plane.platform import Platform
from glia.errors import BadInput
from server.routes.base import authenticated_user, error_response, expected_errors

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``[start, end)`` a ``Range`` header asks of ``size`` bytes; None for the whole.

    ``parse_range("bytes=0-99", 1000) == (0, 100)``; ``parse_range("bytes=-10", 1000) ==
    (990, 1000)``. Several ranges are answered with the whole (RFC 9110 allows ignoring
    Range). Raises ValueError for a range that cannot be satisfied.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # another unit, or several ranges
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise ValueError("an empty suffix range")
        return max(0, size - suffix), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or (last and int(last) < start):
        raise ValueError(f"bytes {header} of {size}")
    return start, end


def routes(platform: Callable[[], Platform]) -> list[Route]:
    @expected_errors
    async def job_log(request: Request) -> Response:
        current = platform()
        user = await authenticated_user(request, current)
        log = await current.monitoring.log_bytes(user, request.path_params["job_id"])
        try:
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            raise BadInput(
                "offset must be a whole number of bytes", fields={"offset": "not a number"}
            ) from None
        if offset < 0:
            raise BadInput("offset must not be negative", fields={"offset": "negative"})
        headers = {
            "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        }
        try:
            wanted = parse_range(request.headers.get("range"), log.size)
        except ValueError:
            return error_response(
                BadInput(f"the range is outside the log's {log.size} bytes"),
                status=416,
                headers={**headers, "Content-Range": f"bytes */{log.size}"},
            )
        status = 200
        if wanted is None:
            start, end = min(offset, log.size), log.size
        else:
            start, end = wanted
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{log.size}"
        if log.job.status.is_finished:
            # A running job may drop its oldest output (its log cap) while this is sent, and
            # the bytes then come short of a promised length: chunked for those.
            headers["Content-Length"] = str(end - start)
        return StreamingResponse(
            log.read(start, end - start),
            status_code=status,
            headers=headers,
            media_type="text/plain; charset=utf-8",
        )

    return [Route("/api/jobs/{job_id}/log", job_log, methods=["GET"])]
