"""What a running job shows of itself: its output lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Self

from pydantic import model_validator

from glia.errors import BadInput
from glia.model import DescribedEnum, Model

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class LogStream(DescribedEnum):
    """Which of a job's output streams a line came from."""

    STDOUT = "stdout", "Standard output"
    STDERR = "stderr", "Standard error"
    SYSTEM = (
        "system",
        "Said by the platform about the output itself (older lines dropped, the log removed)",
    )


class LogLine(Model):
    """One line of a job's output."""

    time: datetime
    """When the cluster read the line from the job (UTC, microseconds)."""
    stream: LogStream
    """The stream it was written to."""
    text: str
    """The line without its newline; a line over 64 KiB arrives in 64 KiB pieces."""


class LogText(Model):
    """Consecutive lines of one stream as the job printed them: the cheap way to follow a log
    whose lines' times are not needed."""

    stream: LogStream
    """The stream all of these lines were written to."""
    text: str
    """The lines, each ended by a newline."""
    offset: int | None = None
    """Where the output goes on after these lines, in bytes from the job's first byte: a
    reader that lost its connection resumes there (``offset``), without losing or repeating
    a line."""


def check_log_start(since: datetime | None, offset: int | None, tail: int | None) -> None:
    """Where a log is read from: at most one of a time, an offset and a count of last lines,
    the numbers not negative (BadInput else)."""
    given = [
        name
        for name, value in (("since", since), ("offset", offset), ("tail", tail))
        if value is not None
    ]
    if len(given) > 1:
        raise BadInput(
            f"read a log from one place: {' or '.join(given)}, not both",
            fields={name: "only one of since, offset and tail" for name in given},
        )
    if offset is not None and offset < 0:
        raise BadInput(f"offset {offset} is negative", fields={"offset": "negative"})
    if tail is not None and tail < 0:
        raise BadInput(
            f"tail {tail} is negative: give a number of lines", fields={"tail": "negative"}
        )


def time_us(time: datetime) -> int:
    """``time`` (with its time zone) in microseconds since the epoch, as `LogBatch` keeps it."""
    return (time - _EPOCH) // _MICROSECOND


class LogBatch(Model):
    """Lines of a job's output read together, oldest first, as *runs*: run ``i`` is
    ``texts[i]``, one or more whole lines each ended by a newline, written to ``streams[i]``
    and read at ``times[i]`` (microseconds since the epoch, UTC); ``ends[i]`` is the offset
    just after it in the job's output (bytes from its first byte: where a reader resumes
    after it). A ``SYSTEM`` run is not in the output: its end is where the output goes on.

    What a gateway sends for a list of `LogLine` s, in a form it builds without an object per
    line (a job that prints a lot prints it in runs of many lines)::

        LogBatch(times=(0, 5), streams=(STDOUT, STDERR), texts=("a\\nb\\n", "c\\n")).lines()
        == [LogLine(time=epoch, stream=STDOUT, text="a"), ... "b" ..., ... "c" at 5 µs ...]
    """

    times: tuple[int, ...]
    streams: tuple[LogStream, ...]
    texts: tuple[str, ...]
    ends: tuple[int, ...]

    @model_validator(mode="after")
    def _runs(self) -> Self:
        if not len(self.times) == len(self.streams) == len(self.texts) == len(self.ends):
            raise ValueError("times, streams, texts and ends must have one item per run")
        if not all(text.endswith("\n") for text in self.texts):
            raise ValueError("a run is whole lines, each ended by a newline")
        return self

    @classmethod
    def of(cls, lines: Iterable[LogLine], *, end: int) -> LogBatch:
        """The batch of ``lines``, a run each, the last ending at offset ``end`` (each
        line's bytes are its UTF-8 text and a newline; ``SYSTEM`` lines take none)."""
        lines = list(lines)
        ends: list[int] = []
        for line in reversed(lines):
            ends.append(end)
            if line.stream is not LogStream.SYSTEM:
                end -= len(line.text.encode()) + 1
        return cls(
            times=tuple(time_us(line.time) for line in lines),
            streams=tuple(line.stream for line in lines),
            texts=tuple(f"{line.text}\n" for line in lines),
            ends=tuple(reversed(ends)),
        )

    @property
    def end(self) -> int | None:
        """Where the output goes on after this batch (None for an empty one)."""
        return self.ends[-1] if self.ends else None

    @property
    def line_count(self) -> int:
        return sum(text.count("\n") for text in self.texts)

    @property
    def text(self) -> str:
        """Every line, each ended by a newline."""
        return "".join(self.texts)

    def by_stream(self) -> list[LogBatch]:
        """This batch cut where the stream changes: each part one stream's consecutive runs."""
        streams = self.streams
        if all(stream is streams[0] for stream in streams):
            return [self] if streams else []
        parts: list[LogBatch] = []
        start = 0
        for i in range(1, len(streams) + 1):
            if i == len(streams) or streams[i] is not streams[start]:
                parts.append(
                    LogBatch(
                        times=self.times[start:i],
                        streams=streams[start:i],
                        texts=self.texts[start:i],
                        ends=self.ends[start:i],
                    )
                )
                start = i
        return parts

    def split(self) -> Iterator[tuple[datetime, LogStream, str]]:
        """Each line's time, stream and text (without its newline), oldest first."""
        for time, stream, text in zip(self.times, self.streams, self.texts, strict=True):
            at = _EPOCH + time * _MICROSECOND
            for line in text.split("\n")[:-1]:
                yield at, stream, line

    def lines(self) -> list[LogLine]:
        return [LogLine(time=at, stream=stream, text=text) for at, stream, text in self.split()]
