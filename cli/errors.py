"""The one place errors become a one-line message and a sysexits exit code."""

from __future__ import annotations

import re

from sdk import (
    BadInput,
    Conflict,
    ConnectionFailed,
    Forbidden,
    GliaError,
    NotFound,
    QuotaExceeded,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)

EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_TEMPFAIL = 75  # try again later
EX_CONFIG = 78
EX_NOPERM = 77
EX_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EX_PIPE = 141  # 128 + SIGPIPE, what shells report when the reader went away

# Looked up along the error's __mro__, so a subclass gets its parent's code.
EXIT_CODES: dict[type[GliaError], int] = {
    Unauthenticated: EX_NOPERM,
    Forbidden: EX_NOPERM,
    NotFound: EX_NOINPUT,
    BadInput: EX_DATAERR,
    Conflict: EX_DATAERR,
    ConnectionFailed: EX_UNAVAILABLE,
    Unavailable: EX_UNAVAILABLE,
    TooManyRequests: EX_TEMPFAIL,
    # Over a quota: a seat frees when a job ends (or --wait-for-seat waits for it).
    QuotaExceeded: EX_TEMPFAIL,
}

HINTS: dict[type[GliaError], str] = {
    Unauthenticated: "run glia login",
}


class ConfigError(GliaError):
    """The CLI's config file is unreadable, or names no such context."""


EXIT_CODES[ConfigError] = EX_CONFIG


def exit_code_for(error: GliaError) -> int:
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


# Pydantic's own sentences, as the kernel's input models let them through, in plain words.
_PYDANTIC_WORDING = (
    (re.compile(r"String should match pattern ('.*')"), r"must match \1"),
    (re.compile(r"String should have at most (\d+) characters?"), r"must be at most \1 characters"),
    (
        re.compile(r"String should have at least (\d+) characters?"),
        r"must be at least \1 characters",
    ),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be a valid (\w+)"), r"must be a valid \1"),
    (re.compile(r"Input should be (.*)"), r"must be \1"),
    (re.compile(r"Field required"), "is required"),
    (re.compile(r"Tuple should have at most (\d+) items?.*"), r"takes at most \1 values"),
    (re.compile(r"Value error, "), ""),
)


def plain(message: str) -> str:
    """``message`` with pydantic's phrasing replaced by the CLI's.

    >>> plain("name: String should match pattern '[a-z][a-z0-9-]{0,39}'")
    "name: must match '[a-z][a-z0-9-]{0,39}'"
    """
    for pattern, replacement in _PYDANTIC_WORDING:
        message = pattern.sub(replacement, message)
    return message


def error_line(error: GliaError, *, hint: bool = True) -> str:
    """``error: no job 'x'``, with a hint where one helps (``... (run glia login)``)."""
    message = plain(" ".join(str(error.message).split())) or type(error).__name__
    advice = next((HINTS[c] for c in type(error).__mro__ if c in HINTS), None) if hint else None
    return f"error: {message}" + (f" ({advice})" if advice else "")


def candidates_lines(error: GliaError) -> list[str]:
    """One line per job an ambiguous id prefix matches (``sdk.Ambiguous.candidates``)."""
    lines = []
    for job in getattr(error, "candidates", None) or ():
        name = getattr(job, "name", None)
        status = getattr(job, "status", None)
        details = "  ".join(
            part for part in (name, getattr(status, "value", None)) if isinstance(part, str)
        )
        lines.append(f"  {job.id}  {details}".rstrip())
    return lines


def describe(exc: BaseException, *, login_hint: bool = True) -> tuple[int, str]:
    """The exit code and the message (one line, or one per candidate) for any failure."""
    if isinstance(exc, GliaError):
        lines = [error_line(exc, hint=login_hint), *candidates_lines(exc)]
        code = EX_DATAERR if len(lines) > 1 else exit_code_for(exc)
        return code, "\n".join(lines)
    from pydantic import ValidationError  # already loaded: only the SDK raises it

    if isinstance(exc, ValidationError):
        # A model the SDK parses did not validate: the server answered something this client
        # does not understand. Say so in one line, not pydantic's report.
        return EX_SOFTWARE, (
            f"error: unexpected answer from the server for {exc.title} "
            "(a newer server? --verbose shows where)"
        )
    return 1, f"error: {exc or type(exc).__name__} (--verbose shows where)"
