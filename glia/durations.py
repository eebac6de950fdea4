"""Human durations for the CLI and the SDK: ``"1h30m"`` ↔ ``timedelta(hours=1, minutes=30)``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# Units in decreasing order, each at most once: "1d2h3m4s", "90m", "2d", "1.5h".
_DURATION = re.compile(
    r"(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?"
)
_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> timedelta:
    """Parse ``"1h30m"``, ``"2d"``, ``"45s"``, ``"1d2h3m4s"`` or plain seconds ``"30"``.

    Raises ValueError naming the input for empty, negative or malformed text.
    """
    value = text.strip().lower()
    if _SECONDS.fullmatch(value):
        return timedelta(seconds=float(value))
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"invalid duration {text!r}: expected e.g. '1h30m', '2d', '45s' or seconds '30'"
        )
    seconds = sum(
        float(amount) * _UNITS[unit] for unit, amount in match.groupdict().items() if amount
    )
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """``timedelta(hours=1, minutes=30)`` → ``"1h30m"``; whole seconds, ``"0s"`` for zero."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts = []
    for unit, size in _UNITS.items():
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + ("".join(parts) or "0s")


def parse_since(text: str, now: datetime) -> datetime:
    """A point in time from a duration back from ``now`` (``"2h"``) or an ISO datetime.

    A naive ISO datetime is taken as UTC. Raises ValueError naming the input otherwise.
    """
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: expected a duration like '2h' or an ISO datetime"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
