"""What every connection (a paged listing) shares."""

from __future__ import annotations

import strawberry

from glia import pages as kernel
from graph.types.base import expose_enum

OrderDirection = expose_enum(kernel.OrderDirection)

FIRST = strawberry.argument(
    description=f"Items from the start, or after `after`: 0 to {kernel.MAX_PAGE_SIZE} "
    f"({kernel.DEFAULT_PAGE_SIZE} when neither `first` nor `last` is given)"
)
AFTER = strawberry.argument(description="A cursor (`endCursor`): start after this item")
LAST = strawberry.argument(
    description=f"Items from the end, or before `before`: 0 to {kernel.MAX_PAGE_SIZE}"
)
BEFORE = strawberry.argument(description="A cursor (`startCursor`): end before this item")


@strawberry.type(description="Where a page is in its listing")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether items follow this page")
    has_previous_page: bool = strawberry.field(description="Whether items precede this page")
    start_cursor: str | None = strawberry.field(
        description="The first item's cursor, for `before`; null on an empty page"
    )
    end_cursor: str | None = strawberry.field(
        description="The last item's cursor, for `after`; null on an empty page"
    )


def page_info(page: kernel.Page[object]) -> PageInfo:
    return PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.start_cursor,
        end_cursor=page.end_cursor,
    )
