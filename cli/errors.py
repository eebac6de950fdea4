"""The one place SDK errors become a one-line message and a sysexits exit code."""

from __future__ import annotations

from sdk import (
    BadInput,
    Conflict,
    ConnectionFailed,
    Forbidden,
    GliaError,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)

EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75  # try again later
EX_NOPERM = 77
EX_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

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
}

HINTS: dict[type[GliaError], str] = {
    Unauthenticated: "run glia login",
}


def exit_code_for(error: GliaError) -> int:
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def error_line(error: GliaError, *, hint: bool = True) -> str:
    """``error: no job 'x'``, with a hint where one helps (``... (run glia login)``)."""
    message = " ".join(str(error.message).split()) or type(error).__name__
    advice = next((HINTS[c] for c in type(error).__mro__ if c in HINTS), None) if hint else None
    return f"error: {message}" + (f" ({advice})" if advice else "")
