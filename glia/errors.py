"""One error hierarchy for expected failures.

Services raise these; `graph/errors.py` maps ``code`` to GraphQL ``extensions.code`` and the
SDK maps the code back to the same classes, so a client sees the failure the service meant.
"""

from __future__ import annotations

from typing import Any


class GliaError(Exception):
    code: str = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    @property
    def extensions(self) -> dict[str, Any]:
        """What GraphQL puts in ``errors[].extensions`` (graphql-core adopts this attribute)."""
        return {"code": self.code, **({"fields": self.fields} if self.fields else {})}


class Unauthenticated(GliaError):
    code = "UNAUTHENTICATED"


class Forbidden(GliaError):
    code = "FORBIDDEN"


class NotFound(GliaError):
    code = "NOT_FOUND"


class BadInput(GliaError):
    code = "BAD_INPUT"


class Conflict(GliaError):
    code = "CONFLICT"


class QuotaExceeded(GliaError):
    code = "QUOTA_EXCEEDED"


class TooManyRequests(GliaError):
    """The caller asked too often (logins) or holds too much at once (connections,
    subscriptions); the message says when to try again."""

    code = "TOO_MANY_REQUESTS"


class PayloadTooLarge(GliaError):
    code = "PAYLOAD_TOO_LARGE"


class Unavailable(GliaError):
    """A cluster or another dependency cannot be reached right now."""

    code = "UNAVAILABLE"


ERRORS_BY_CODE: dict[str, type[GliaError]] = {
    cls.code: cls
    for cls in (
        Unauthenticated,
        Forbidden,
        NotFound,
        BadInput,
        Conflict,
        QuotaExceeded,
        TooManyRequests,
        PayloadTooLarge,
        Unavailable,
    )
}
