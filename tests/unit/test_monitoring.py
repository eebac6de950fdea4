"""The kernel's `LogBatch`: runs of lines as a gateway sends them, and the lines they hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from glia.errors import BadInput
from glia.model import parse_input
from glia.monitoring import LogBatch, LogLine, LogStream, check_log_start, time_us

OUT, ERR = LogStream.STDOUT, LogStream.STDERR
T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_runs_hold_whole_lines_that_share_their_time_and_stream() -> None:
    start = time_us(T0)
    batch = LogBatch(
        times=(start, start + 1), streams=(OUT, ERR), texts=("a\nb\n", "c\n"), ends=(4, 6)
    )
    later = datetime(2026, 1, 2, 3, 4, 5, 678902, tzinfo=UTC)
    assert batch.lines() == [
        LogLine(time=T0, stream=OUT, text="a"),
        LogLine(time=T0, stream=OUT, text="b"),
        LogLine(time=later, stream=ERR, text="c"),
    ]
    assert batch.line_count == 3
    assert batch.text == "a\nb\nc\n"
    assert LogBatch.of(batch.lines(), end=6).lines() == batch.lines()
    assert LogBatch.of(batch.lines(), end=6).ends == (2, 4, 6)
    assert batch.end == 6


def test_by_stream_cuts_where_the_stream_changes() -> None:
    batch = LogBatch(
        times=(1, 2, 3, 4),
        streams=(OUT, OUT, ERR, OUT),
        texts=("a\n", "b\n", "c\n", "d\n"),
        ends=(2, 4, 6, 8),
    )
    parts = batch.by_stream()
    assert [(part.streams, part.text, part.end) for part in parts] == [
        ((OUT, OUT), "a\nb\n", 4),
        ((ERR,), "c\n", 6),
        ((OUT,), "d\n", 8),
    ]
    assert [line for part in parts for line in part.lines()] == batch.lines()
    one_stream = LogBatch(times=(1, 2), streams=(OUT, OUT), texts=("a\n", "b\n"), ends=(2, 4))
    assert one_stream.by_stream() == [one_stream]
    assert LogBatch(times=(), streams=(), texts=(), ends=()).by_stream() == []


def test_a_batch_from_the_wire_is_checked() -> None:
    batch = LogBatch(times=(1,), streams=(ERR,), texts=("é\n",), ends=(3,))
    assert LogBatch.model_validate_json(batch.model_dump_json(by_alias=True)) == batch
    with pytest.raises(BadInput):
        parse_input(
            LogBatch, {"times": [1, 2], "streams": ["stdout"], "texts": ["a\n"], "ends": [2]}
        )
    with pytest.raises(BadInput):  # a run is whole lines
        parse_input(LogBatch, {"times": [1], "streams": ["stdout"], "texts": ["a"], "ends": [1]})
    with pytest.raises(BadInput):  # each run has its end
        parse_input(LogBatch, {"times": [1], "streams": ["stdout"], "texts": ["a\n"], "ends": []})


def test_a_log_starts_from_one_place() -> None:
    check_log_start(None, None, None)
    check_log_start(None, 10, None)
    with pytest.raises(BadInput, match="offset or tail"):
        check_log_start(None, 10, 5)
    with pytest.raises(BadInput, match="since or offset"):
        check_log_start(T0, 10, None)
    with pytest.raises(BadInput, match="negative"):
        check_log_start(None, -1, None)
    with pytest.raises(BadInput, match="negative"):
        check_log_start(None, None, -3)
