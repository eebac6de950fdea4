"""What a running job shows of itself: its output lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Self

from pydantic import model_validator

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


def time_us(time: datetime) -> int:
    """``time`` (with its time zone) in microseconds since the epoch, as `LogBatch` keeps it."""
    return (time - _EPOCH) // _MICROSECOND


class LogBatch(Model):
    """Lines of a job's output read together, oldest first, as *runs*: run ``i`` is
    ``texts[i]``, one or more whole lines each ended by a newline, written to ``streams[i]``
    and read at ``times[i]`` (microseconds since the epoch, UTC).

    What a gateway sends for a list of `LogLine` s, in a form it builds without an object per
    line (a job that prints a lot prints it in runs of many lines)::

        LogBatch(times=(0, 5), streams=(STDOUT, STDERR), texts=("a\\nb\\n", "c\\n")).lines()
        == [LogLine(time=epoch, stream=STDOUT, text="a"), ... "b" ..., ... "c" at 5 µs ...]
    """

    times: tuple[int, ...]
    streams: tuple[LogStream, ...]
    texts: tuple[str, ...]

    @model_validator(mode="after")
    def _runs(self) -> Self:
        if not len(self.times) == len(self.streams) == len(self.texts):
            raise ValueError("times, streams and texts must have one item per run")
        if not all(text.endswith("\n") for text in self.texts):
            raise ValueError("a run is whole lines, each ended by a newline")
        return self

    @classmethod
    def of(cls, lines: Iterable[LogLine]) -> LogBatch:
        """The batch of ``lines``, a run each."""
        lines = list(lines)
        return cls(
            times=tuple(time_us(line.time) for line in lines),
            streams=tuple(line.stream for line in lines),
            texts=tuple(f"{line.text}\n" for line in lines),
        )

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
