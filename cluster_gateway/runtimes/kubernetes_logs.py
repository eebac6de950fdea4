"""A job's output through the pod log API (``pods/log``, timestamps on): read once, or followed
as the stream the kubelet keeps open while the container runs.

Lines are split on ``\\n`` alone, the same way both ways, so that the byte offsets the runtime
counts (each line's text and its newline, from the log's start: the log API has none of its
own) agree whether a reader read the log once or followed it. A line longer than
`MAX_LINE_BYTES` is cut into lines of that size: a job that never prints a newline cannot
make the gateway hold its whole output.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from glia.errors import Unavailable

MAX_LINE_BYTES = 256 * 1024
# One read of the stream: at most this much (aiohttp's own buffer is bounded too).
READ_BYTES = 64 * 1024


@dataclass(frozen=True)
class PodLine:
    """A line of a container's log, as the kubelet stamped it."""

    at: datetime | None
    text: str
    size: int
    """Its bytes in the output: the text's and the newline."""


def _parsed(raw: bytes) -> PodLine:
    stamp, _, body = raw.partition(b" ")
    try:
        at: datetime | None = datetime.fromisoformat(stamp.decode().replace("Z", "+00:00"))
    except ValueError:
        at, body = None, raw
    return PodLine(at=at, text=body.decode(errors="replace"), size=len(body) + 1)


def take_lines(buffer: bytearray) -> list[PodLine]:
    """The complete lines at the start of ``buffer``, removed from it (with a line past
    `MAX_LINE_BYTES` cut there)."""
    lines: list[PodLine] = []
    start = 0
    while True:
        end = buffer.find(b"\n", start)
        if end < 0:
            if len(buffer) - start > MAX_LINE_BYTES:
                end = start + MAX_LINE_BYTES
                lines.append(_parsed(bytes(buffer[start:end])))
                start = end
                continue
            break
        lines.append(_parsed(bytes(buffer[start:end])))
        start = end + 1
    del buffer[:start]
    return lines


async def _open(core: Any, name: str, namespace: str, container: str, follow: bool) -> Any:
    """The log's answer, its body unread; None when the pod has no log to give yet (its
    container waiting to start) or any more (the pod gone)."""
    try:
        return await core.read_namespaced_pod_log(
            name,
            namespace,
            container=container,
            timestamps=True,
            follow=follow,
            _preload_content=False,
        )
    except ApiException as error:
        if error.status in (400, 404):
            return None
        raise Unavailable(f"the pod's log is unavailable: {error.reason}") from error
    except aiohttp.ClientError as error:
        raise Unavailable(f"the API server cannot be reached: {error}") from error


async def read_lines(core: Any, name: str, namespace: str, container: str) -> list[PodLine]:
    """The whole log as it is now."""
    response = await _open(core, name, namespace, container, follow=False)
    if response is None:
        return []
    buffer = bytearray()
    lines: list[PodLine] = []
    try:
        async for chunk in response.content.iter_chunked(READ_BYTES):
            buffer += chunk
            lines += take_lines(buffer)
    except aiohttp.ClientError as error:
        raise Unavailable(f"the pod's log broke off: {error}") from error
    finally:
        response.release()
    if buffer:  # a last line without its newline
        lines.append(_parsed(bytes(buffer)))
    return lines


async def follow_lines(
    core: Any, name: str, namespace: str, container: str, *, skip: int, idle_s: float
) -> AsyncIterator[list[PodLine]]:
    """The log followed from its start, its first ``skip`` lines left out: each read's
    complete lines as they come, and an empty list after each ``idle_s`` without any (so that
    the caller may look whether the job ended). Returns when the kubelet ends the stream (the
    container ended, or the connection did), at once when there is no log yet."""
    response = await _open(core, name, namespace, container, follow=True)
    if response is None:
        return
    buffer = bytearray()
    try:
        while True:
            try:
                async with asyncio.timeout(idle_s):
                    chunk = await response.content.readany()
            except TimeoutError:
                yield []
                continue
            ended = not chunk  # the kubelet ended it: a last line without a newline is one
            buffer += chunk
            lines = take_lines(buffer)
            if ended and buffer:
                lines.append(_parsed(bytes(buffer)))
            if skip:
                dropped = min(skip, len(lines))
                skip -= dropped
                lines = lines[dropped:]
            if lines:
                yield lines
            if ended:
                return
    except aiohttp.ClientError:
        return  # broken off: the caller opens it again, leaving out what it has
    finally:
        with contextlib.suppress(Exception):
            response.release()
