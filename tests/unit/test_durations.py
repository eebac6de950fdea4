from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from glia.durations import format_duration, parse_duration, parse_since


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("30", timedelta(seconds=30)),
        ("1.5h", timedelta(minutes=90)),
        (" 10M ", timedelta(minutes=10)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "  ", "-5m", "-30", "abc", "1x", "1h-30m", "30m1h", "h", "1hh"]
)
def test_parse_duration_rejects_naming_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration_round_trips(delta: timedelta, expected: str) -> None:
    assert format_duration(delta) == expected
    assert parse_duration(expected) == delta


def test_parse_since_accepts_a_duration_or_an_iso_time() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert parse_since("2026-11-01T08:00:00+01:00", now) == datetime(2026, 11, 1, 7, tzinfo=UTC)
    naive = parse_since("2026-11-01T08:00:00", now)
    assert naive == datetime(2026, 11, 1, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_since("yesterday", now)
