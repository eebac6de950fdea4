"""The SDK's bulk byte transfers (`sdk.bulk`, httpx over aiohttp) against real sockets:
errors mean what they say, and a large body arrives whole, in large pieces."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdk import ConnectionFailed, GliaClient
from sdk.bulk import READ_BYTES


@contextlib.asynccontextmanager
async def tcp_server(handle: object, limit: int = 2**16) -> AsyncIterator[int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=limit)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_server_that_drops_the_connection_is_unreachable_not_a_timeout(
    tmp_path: Path,
) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with tcp_server(drop) as port, GliaClient(f"http://127.0.0.1:{port}", "t") as client:
        with pytest.raises(ConnectionFailed, match="cannot reach the Glia server") as raised:
            await client.storage.download("storage://c/o/p/f", tmp_path / "f")
    assert "timed out" not in str(raised.value)


async def test_a_silent_server_is_a_timeout(tmp_path: Path) -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)
        writer.close()

    async with (
        tcp_server(hang) as port,
        GliaClient(f"http://127.0.0.1:{port}", "t", timeout=0.3) as client,
    ):
        with pytest.raises(ConnectionFailed, match="timed out"):
            await client.storage.download("storage://c/o/p/f", tmp_path / "f")


async def test_a_large_body_arrives_whole_in_large_pieces(tmp_path: Path) -> None:
    body = os.urandom(8 * READ_BYTES + 123)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(body)
        await writer.drain()
        writer.close()

    pieces: list[int] = []
    async with tcp_server(answer) as port, GliaClient(f"http://127.0.0.1:{port}", "t") as client:
        async for chunk in client.storage._receive(
            f"http://127.0.0.1:{port}/x", headers=None, bulk=True
        ):
            pieces.append(len(chunk))
        size = await client.storage.download("storage://c/o/p/f", tmp_path / "f")
    assert sum(pieces) == len(body) == size
    assert (tmp_path / "f").read_bytes() == body
    assert max(pieces) <= READ_BYTES
    # httpcore's pieces are 64 KiB; these are what each read brought, up to READ_BYTES.
    assert len(pieces) < len(body) // (64 * 1024)


async def test_clients_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client (and its bulk client) verifies with the same context, built once: the CA
    bundle is not loaded again for each `GliaClient` the web UI opens."""
    from sdk import client as sdk_client

    loads: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        load(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    sdk_client.tls_context.cache_clear()
    try:
        for _ in range(3):
            async with GliaClient("https://127.0.0.1:9", "t") as client:
                client.bulk_http()
        assert len(loads) == 1
    finally:
        sdk_client.tls_context.cache_clear()


async def test_an_upload_the_server_stops_taking_times_out(tmp_path: Path) -> None:
    """aiohttp has no write timeout: the bulk transport keeps httpx's."""
    source = tmp_path / "big"
    source.write_bytes(os.urandom(64 * 1024 * 1024))
    stop = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the headers, and then nothing more is read
        await stop.wait()
        writer.close()

    async with (
        tcp_server(stall) as port,
        GliaClient(f"http://127.0.0.1:{port}", "t", timeout=0.5) as client,
    ):
        try:
            with pytest.raises(ConnectionFailed, match="timed out"):
                await client.storage.upload(source, "storage://c/o/p/big")
        finally:
            stop.set()


async def test_a_slow_but_steady_upload_does_not_time_out(tmp_path: Path) -> None:
    """The write timeout is per piece of the body, not for the whole of it."""
    source = tmp_path / "big"
    data = os.urandom(48 * 1024 * 1024)
    source.write_bytes(data)

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        got = 0
        while got < length:  # ~16 MiB/s: the body takes about 3 s, each piece about 0.5 s
            got += len(await reader.read(min(64 * 1024, length - got)))
            await asyncio.sleep(0.004)
        assert b"x-glia-checksum: xxh3-128=trailer" in head.lower()
        size = got - 32  # the body ends with the file's 32-digit checksum
        body = b'{"entry": {"uri": "storage://c/o/p/big", "path": "big", "name": "big", '
        body += b'"type": "file", "size": %d, "modifiedAt": "2026-01-01T00:00:00Z"}}' % size
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    started = asyncio.get_running_loop().time()
    async with (
        tcp_server(slow) as port,
        GliaClient(f"http://127.0.0.1:{port}", "t", timeout=2.0) as client,
    ):
        entry = await client.storage.upload(source, "storage://c/o/p/big")
    assert entry.size == len(data)
    assert asyncio.get_running_loop().time() - started > 2.0  # longer than the timeout
