"""The HTTP client of bulk byte transfers (a storage file's or an object's bytes): httpx's
API over aiohttp's connections (httpx-aiohttp).

httpcore reads a response 64 KiB at a time and h11 copies every read twice in Python;
aiohttp parses in C and hands over what each read brought. On the bench machine a 1 GiB
download is received in 0.29 s this way against 0.95 s through httpcore, and sent in 0.15 s
against 0.21 s (bench/storage.py measures the whole transfer). Requests keep httpx's API,
so their errors map to `GliaError`s as every other request's do. GraphQL and the other
small requests stay on httpcore: importing aiohttp costs a CLI command that moves no
bytes ~0.1 s, so this client is made on a transfer's first request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

# A received body is handed on in pieces of at most this much (httpx-aiohttp's own: 16 KiB,
# a quarter of the time of a 1 GiB download spent passing 65,536 pieces along).
READ_BYTES = 1024 * 1024


class BulkTransport(AiohttpTransport):
    """httpx-aiohttp's transport, reading a body in `READ_BYTES` pieces, telling a
    connection the server dropped (which httpx-aiohttp calls a connect timeout) from one
    that timed out, and keeping httpx's write timeout, which aiohttp lacks: a streamed body
    that the server stops taking for that long is a `httpx.WriteTimeout`."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        write_s = timeouts.get("write")
        body = request.stream
        deadline = asyncio.timeout(None)
        paced: _Paced | None = None
        try:
            async with deadline:
                # A body in memory (ByteStream) goes in one write; a streamed one is paced.
                if (
                    write_s is not None
                    and isinstance(body, httpx.AsyncByteStream)
                    and not isinstance(body, httpx.ByteStream)
                ):
                    request.stream = paced = _Paced(body, deadline, write_s)
                try:
                    response = await super().handle_async_request(request)
                finally:
                    # aiohttp may still be sending the body once the answer came (a refusal
                    # before the body was read): the deadline is gone with this call.
                    if paced is not None:
                        paced.ended = True
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise httpx.WriteTimeout(f"the server took no data for {write_s} s") from exc
        except httpx.ConnectTimeout as exc:
            if isinstance(exc.__cause__, TimeoutError):
                raise
            raise httpx.ConnectError(str(exc) or type(exc.__cause__).__name__) from exc
        if isinstance(response.stream, AiohttpResponseStream):
            response.stream.CHUNK_SIZE = READ_BYTES
        return response


class _Paced(httpx.AsyncByteStream):
    """A request body whose every piece must be taken within ``write_s`` of the one before
    (aiohttp asks for the next piece once the last one is written); the deadline is lifted
    after the last piece, where the read timeout takes over."""

    def __init__(
        self, body: AsyncIterable[bytes], deadline: asyncio.Timeout, write_s: float
    ) -> None:
        self._body = body
        self._deadline = deadline
        self._write_s = write_s
        self.ended = False

    def _pace(self, from_now: float | None) -> None:
        if not self.ended:
            when = None if from_now is None else asyncio.get_running_loop().time() + from_now
            self._deadline.reschedule(when)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._pace(self._write_s)
        async for piece in self._body:
            yield piece
            self._pace(self._write_s)
        self._pace(None)


def bulk_client(timeout: float) -> httpx.AsyncClient:
    from sdk.client import tls_context

    return httpx.AsyncClient(timeout=timeout, transport=BulkTransport(verify=tls_context()))
