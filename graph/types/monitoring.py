from __future__ import annotations

import strawberry

from glia import monitoring as kernel
from graph.types.base import expose_enum, object_type

LogStream = expose_enum(kernel.LogStream)


@object_type(kernel.LogLine)
class LogLine:
    pass


@strawberry.type(description="Lines read together; a follower gets each chunk as the lines come")
class LogChunk:
    lines: list[LogLine] = strawberry.field(description="The lines, oldest first")
