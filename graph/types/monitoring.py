from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import cast

import strawberry

from glia import monitoring as kernel
from graph.executor import SharedEvent
from graph.types.base import expose_enum, field_description, object_type
from graph.types.scalars import BigInt

LogStream = expose_enum(kernel.LogStream)


@object_type(kernel.LogLine)
class LogLine:
    pass


# Its constructor takes the kernel model's fields (which mypy does not see).
_line = cast(Callable[..., LogLine], LogLine)


@strawberry.type(
    description="Consecutive lines of one stream, read together; a follower gets each chunk as "
    "the lines come. A chunk holds at most 1,000 lines or 64 KiB."
)
class LogChunk(SharedEvent):
    stream: kernel.LogStream = strawberry.field(
        description=field_description(kernel.LogText, "stream")
    )
    # One stream's runs of lines, as the gateway read them.
    batch: strawberry.Private[kernel.LogBatch]

    @classmethod
    def of(cls, batch: kernel.LogBatch) -> LogChunk:
        """The chunk of ``batch``, whose runs are all of one stream."""
        return cls(stream=batch.streams[0], batch=batch)

    @strawberry.field(
        description="The lines with their times, oldest first (select `text` instead when the "
        "times are not needed: it is several times cheaper to send)"
    )
    def lines(self) -> list[LogLine]:
        # This type's own instances rather than kernel lines: GraphQL completes them several
        # microseconds a line faster (no pydantic attribute fallbacks), per follower.
        return [_line(time=at, stream=stream, text=text) for at, stream, text in self.batch.split()]

    @strawberry.field(description=field_description(kernel.LogText, "text"))
    def text(self) -> str:
        return self.batch.text

    @strawberry.field(description=field_description(kernel.LogText, "offset"))
    def offset(self) -> BigInt:
        return BigInt(self.batch.ends[-1])

    def share_key(self) -> Hashable:
        # What its fields read, and nothing of the caller: the followers of one tail get
        # the same batch (its strings the same objects, so hashing and comparing are cheap).
        batch = self.batch
        return (batch.times, batch.streams, batch.texts, batch.ends)
