from __future__ import annotations

from typing import cast

import strawberry

from glia import monitoring as kernel
from graph.types.base import expose_enum, field_description, object_type

LogStream = expose_enum(kernel.LogStream)


@object_type(kernel.LogLine)
class LogLine:
    pass


@strawberry.type(
    description="Consecutive lines of one stream, read together; a follower gets each chunk as "
    "the lines come. A chunk holds at most 1,000 lines or 64 KiB."
)
class LogChunk:
    stream: kernel.LogStream = strawberry.field(
        description=field_description(kernel.LogText, "stream")
    )
    lines: list[LogLine] = strawberry.field(
        description="The lines with their times, oldest first (select `text` instead when the "
        "times are not needed: it is several times cheaper to send)"
    )

    @strawberry.field(description=field_description(kernel.LogText, "text"))
    def text(self) -> str:
        # The resolver fills `lines` with the kernel's lines (see `object_type`).
        return "".join(f"{line.text}\n" for line in cast(list[kernel.LogLine], self.lines))
