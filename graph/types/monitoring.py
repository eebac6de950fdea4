from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from cluster_gateway import gateway


@strawberry.enum
class LogStream(enum.Enum):
    STDOUT = "stdout"
    STDERR = "stderr"


@strawberry.type
class LogLine:
    time: datetime
    stream: LogStream
    text: str

    @classmethod
    def from_domain(cls, line: gateway.LogLine) -> LogLine:
        return cls(time=line.time, stream=LogStream(line.stream.value), text=line.text)


@strawberry.type
class LogChunk:
    """Lines read together; a follower gets each chunk as soon as the lines are written."""

    lines: list[LogLine]
