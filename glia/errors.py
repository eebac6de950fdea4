"""One error hierarchy for expected failures.

Services raise these; GraphQL puts ``code`` in ``errors[].extensions.code`` (graphql-core
adopts the ``extensions`` attribute) and the SDK maps the code back to the same classes, so a
client sees the failure the service meant. docs/api.md lists the codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class GliaError(Exception):
    """An expected failure: its message is for the caller, its code for their program.

    ``fields`` names the inputs at fault by their API (camelCase) path, each with what is wrong
    with it; ``details`` are further facts a program may act on (``retryAfterSeconds``).
    """

    code: str = "INTERNAL_SERVER_ERROR"
    # The HTTP status of a byte route (and of a GraphQL request refused as a whole) that
    # fails with this error.
    http_status: int = 500

    def __init__(
        self,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, str] = dict(fields or {})
        self.details: dict[str, Any] = dict(details or {})

    @property
    def extensions(self) -> dict[str, Any]:
        """``{"code", "fields": [{"field", "message"}], **details}``, as the API sends it."""
        extensions: dict[str, Any] = {"code": self.code, **self.details}
        if self.fields:
            extensions["fields"] = [
                {"field": field, "message": message} for field, message in self.fields.items()
            ]
        return extensions

    @classmethod
    def from_extensions(cls, message: str, extensions: Mapping[str, Any]) -> GliaError:
        """The error an API answer describes: the inverse of ``extensions``; ``cls`` is the
        class of its code (`ERRORS_BY_CODE`)."""
        listed = extensions.get("fields")
        fields = {
            str(item["field"]): str(item.get("message", ""))
            for item in (listed if isinstance(listed, list) else [])
            if isinstance(item, Mapping) and "field" in item
        }
        details = {k: v for k, v in extensions.items() if k not in ("code", "fields")}
        error = cls.__new__(cls)
        GliaError.__init__(error, message, fields=fields, details=details)
        return error


class Unauthenticated(GliaError):
    code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(GliaError):
    code = "FORBIDDEN"
    http_status = 403


class NotFound(GliaError):
    code = "NOT_FOUND"
    http_status = 404


class BadInput(GliaError):
    """The caller's input is wrong: a value, a combination of arguments, a cursor."""

    code = "BAD_USER_INPUT"
    http_status = 400


class Conflict(GliaError):
    code = "CONFLICT"
    http_status = 409


class QuotaExceeded(GliaError):
    code = "QUOTA_EXCEEDED"
    http_status = 403


class TooManyRequests(GliaError):
    """The caller asked too often (logins) or holds too much at once (connections,
    subscriptions); the message says when to try again, ``retryAfterSeconds`` too."""

    code = "TOO_MANY_REQUESTS"
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        details = {"retryAfterSeconds": retry_after_s} if retry_after_s is not None else None
        super().__init__(message, details=details)

    @property
    def retry_after_s(self) -> int | None:
        value = self.details.get("retryAfterSeconds")
        return value if isinstance(value, int) else None


class PayloadTooLarge(GliaError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class Unavailable(GliaError):
    """A cluster or another dependency cannot be reached right now."""

    code = "UNAVAILABLE"
    http_status = 503


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
