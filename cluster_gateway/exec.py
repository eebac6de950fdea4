"""What a gateway hands out to run a command inside a job and to reach a job's port.

Plain protocols over bytes, so that a remote gateway can carry them over its own byte
routes unchanged. The local runtime's implementation is ``runtimes/exec.py``.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Protocol

# One read of a command's output, or of a tunnelled connection: a frame at most this large.
CHUNK_BYTES = 64 * 1024
# Chunks waiting for a slow reader: past these, the command (or the job's end of a tunnel)
# waits on its pipe, never the server on the reader.
QUEUED_CHUNKS = 16


class ExecStream(enum.IntEnum):
    """Which of a command's outputs a chunk is (a PTY's output is all STDOUT)."""

    STDOUT = 1
    STDERR = 2


class ExecSession(Protocol):
    """A command running inside a job (``Gateway.exec``).

    ``output`` yields ``(stream, bytes)`` chunks (at most `CHUNK_BYTES` each) until both
    outputs are closed; ``wait`` is the exit code then (128 + N for a signal N, as a shell
    says). ``write``/``close_stdin`` feed its stdin (with a PTY, the terminal's input);
    ``resize`` sets the PTY's size (a no-op without one). ``close`` kills whatever the
    command started that is still alive (its session), and is safe to call twice.
    """

    def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]: ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, rows: int, cols: int) -> None: ...

    async def wait(self) -> int: ...

    async def close(self) -> None: ...
