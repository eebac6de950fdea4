"""What a running job shows of itself: its output lines."""

from __future__ import annotations

from datetime import datetime

from glia.model import DescribedEnum, Model


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
