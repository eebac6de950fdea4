"""Sizes in and out (`glia.sizes`)."""

from __future__ import annotations

import pytest

from glia.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (20, "20 B"), (1536, "1.5 KiB"), (64 * 1024**2, "64.0 MiB"),
     (1024**3, "1.0 GiB"), (3 * 1024**4, "3.0 TiB"), (2048 * 1024**4, "2048.0 TiB")],
)  # fmt: skip
def test_format(size: int, text: str) -> None:
    assert format_size(size) == text


def test_parse() -> None:
    assert parse_size("512M") == 512 * 1024**2
    assert parse_size("1.5G") == 1536 * 1024**2
    assert parse_size("4GiB") == parse_size("4GB") == 4 * 1024**3
    assert parse_size("300", unit=1024**2) == 300 * 1024**2
    for bad in ("lots", "nan", "inf", "-1G", ""):
        with pytest.raises(ValueError):
            parse_size(bad)
