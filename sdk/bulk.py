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

import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

# A received body is handed on in pieces of at most this much (httpx-aiohttp's own: 16 KiB,
# a quarter of the time of a 1 GiB download spent passing 65,536 pieces along).
READ_BYTES = 1024 * 1024


class BulkTransport(AiohttpTransport):
    """httpx-aiohttp's transport, reading a body in `READ_BYTES` pieces, and telling a
    connection the server dropped (which httpx-aiohttp calls a connect timeout) from one
    that timed out."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            if isinstance(exc.__cause__, TimeoutError):
                raise
            raise httpx.ConnectError(str(exc) or type(exc.__cause__).__name__) from exc
        if isinstance(response.stream, AiohttpResponseStream):
            response.stream.CHUNK_SIZE = READ_BYTES
        return response


def bulk_client(timeout: float) -> httpx.AsyncClient:
    from sdk.client import tls_context

    return httpx.AsyncClient(timeout=timeout, transport=BulkTransport(verify=tls_context()))
