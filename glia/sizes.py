"""Sizes in bytes as people write and read them: ``512M``, ``4G`` in; ``20 B``, ``1.5 GiB``
out (powers of 1024)."""

from __future__ import annotations

_SCALES = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def parse_size(text: str, *, unit: int = 1) -> int:
    """``512M``, ``4G``, ``1.5T`` (``MiB``, ``GB`` too) in bytes; a bare number counts ``unit``
    bytes. ValueError for anything else, or a negative size."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = _SCALES.get(value[-1:])
    number = value[:-1] if scale else value
    try:
        size = int(float(number) * (scale or unit))  # ValueError for text and nan
    except OverflowError:
        raise ValueError(f"{text!r} is too big") from None
    if size < 0:
        raise ValueError(f"{text!r} is negative")
    return size


def format_size(size: int) -> str:
    """``20 B``, ``1.5 KiB``, ``64.0 MiB``, up to TiB."""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
