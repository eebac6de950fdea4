"""What every connection (a paged listing) shares."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

import strawberry

from glia import pages as kernel
from graph.types.base import expose_enum, model_from_input

OrderDirection = expose_enum(kernel.OrderDirection)

T = TypeVar("T")

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


@strawberry.type(description="An item and its position in the listing")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="The item's position, for `after` or `before`")
    node: T = strawberry.field(description="The item")


@strawberry.type(description="A listing, a page at a time")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page, with cursors")
    nodes: list[T] = strawberry.field(description="The items of this page")
    page_info: PageInfo = strawberry.field(description="Where this page is in the listing")
    total_count: int = strawberry.field(description="How many items match, on every page")

    @classmethod
    def of(cls, page: kernel.Page[Any]) -> Connection[T]:
        """A service's page as the GraphQL connection; its items are the kernel's models,
        which GraphQL reads as the types they derive (see `graph.types.base`)."""
        items = cast(list[T], list(page.items))
        return cls(
            edges=[Edge(cursor=c, node=n) for c, n in zip(page.cursors, items, strict=True)],
            nodes=items,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
            total_count=page.total_count,
        )


def page_request(
    first: int | None, after: str | None, last: int | None = None, before: str | None = None
) -> kernel.PageRequest:
    """A connection's paging arguments as the kernel's validated `PageRequest`."""
    return model_from_input(
        kernel.PageRequest, {"first": first, "after": after, "last": last, "before": before}
    )
