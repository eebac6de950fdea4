"""The allocator settings of Glia's long-running processes (the API server, a gateway).

A byte transfer allocates and frees a buffer for every read it passes on (64 KiB to 8 MiB).
glibc serves blocks from 128 KiB up with fresh ``mmap``s, and gives the top of its heap
back to the kernel once 256 KiB of it is free, so each of those buffers came as new pages:
a page fault and a zeroed page every 4 KiB, a third of the server's time in a 1 GiB upload
(bench/storage.py: 0.68 s against 0.52 s with these settings). Blocks up to 16 MiB now come
from the heap, and up to 64 MiB of freed heap is kept for the next ones."""

from __future__ import annotations

import ctypes
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Apply the settings above where the C library is glibc (False elsewhere)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
