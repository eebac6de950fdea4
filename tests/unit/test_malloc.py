"""The long-running processes' allocator settings (`glia.malloc`)."""

from __future__ import annotations

import platform

import pytest

from glia.malloc import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_settings() -> None:
    assert keep_freed_memory() is True
