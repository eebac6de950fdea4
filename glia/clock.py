from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The one source of timestamps: timezone-aware UTC."""
    return datetime.now(UTC)
