"""The SDK's errors: the server's own hierarchy, plus what only a client can see.

A GraphQL error maps back to the class the service raised through its ``extensions.code``;
an unknown code becomes a plain ``GliaError`` so a newer server never crashes an older client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from glia.errors import (
    ERRORS_BY_CODE,
    BadInput,
    Conflict,
    Forbidden,
    GliaError,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "ERRORS_BY_CODE",
    "Ambiguous",
    "BadInput",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "GliaError",
    "NotFound",
    "PayloadTooLarge",
    "QuotaExceeded",
    "TooManyRequests",
    "Unauthenticated",
    "Unavailable",
    "error_from_graphql",
]


class Ambiguous(GliaError):
    """A short job id that is the start of several jobs' ids; ``candidates`` are some of them."""

    code = "AMBIGUOUS"

    def __init__(self, message: str, *, candidates: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.candidates = list(candidates)


class ConnectionFailed(GliaError):
    """The server could not be reached (refused, DNS, timeout, broken connection)."""

    code = "CONNECTION_FAILED"


class ConnectionLost(ConnectionFailed):
    """An open connection to the server broke (the server restarted, or the network): what
    was being followed can go on from where it stopped."""


def error_from_graphql(errors: Sequence[Any] | None) -> GliaError:
    """The error a GraphQL ``errors`` list stands for, by its first ``extensions.code``.

    >>> error_from_graphql([{"message": "no job x", "extensions": {"code": "NOT_FOUND"}}])
    NotFound('no job x')
    """
    first = errors[0] if errors else {}
    if not isinstance(first, Mapping):
        return GliaError(str(first))
    message = str(first.get("message") or "unknown server error")
    extensions = first.get("extensions") or {}
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    cls = ERRORS_BY_CODE.get(code, GliaError) if isinstance(code, str) else GliaError
    return cls.from_extensions(message, extensions if isinstance(extensions, Mapping) else {})
