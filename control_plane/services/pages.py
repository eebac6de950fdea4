"""Keyset pages of a query: the one way every listing of the API pages (`glia.pages`)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from glia.errors import BadInput
from glia.pages import Page, PageRequest

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True)
class SortKey(Generic[T]):
    """One column of a listing's order, and how to read it off an item."""

    column: ColumnElement[Any] | InstrumentedAttribute[Any]
    value: Callable[[T], str | datetime]
    is_time: bool = False


@dataclass(frozen=True)
class Order(Generic[T]):
    """A listing's order: its name (in cursors, so that a cursor of another order is refused)
    and its keys, the last of them unique."""

    name: str
    keys: Sequence[SortKey[T]]
    descending: bool


def encode_cursor(order: Order[T], item: T) -> str:
    values = [key.value(item) for key in order.keys]
    wire = [order.name, *(v.isoformat() if isinstance(v, datetime) else v for v in values)]
    return base64.urlsafe_b64encode(json.dumps(wire).encode()).decode()


def decode_cursor(order: Order[T], cursor: str, argument: str) -> list[str | datetime]:
    """The key values a cursor holds; BadInput for one that is not of this listing's order."""
    refused = BadInput(
        f"invalid cursor {cursor[:100]!r}: not a cursor of this listing in this order",
        fields={argument: "not a cursor of this listing in this order"},
    )
    try:
        wire = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise refused from None
    if (
        not isinstance(wire, list)
        or len(wire) != len(order.keys) + 1
        or wire[0] != order.name
        or not all(isinstance(v, str) for v in wire[1:])
    ):
        raise refused
    values: list[str | datetime] = []
    for key, raw in zip(order.keys, wire[1:], strict=True):
        if key.is_time:
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                raise refused from None
            if moment.utcoffset() is None:
                raise refused
            values.append(moment)
        else:
            values.append(raw)
    return values


async def keyset_page(
    session: AsyncSession,
    query: Select[*Ts],
    *,
    order: Order[T],
    request: PageRequest,
    total: int,
    to_item: Callable[[Any], T],
) -> Page[T]:
    """The page ``request`` asks of ``query`` (its filters applied, no order) in ``order``."""
    forwards = request.forwards
    cursor = request.cursor
    # Backwards reads the listing's order reversed from the cursor, then turns the page round.
    descending = order.descending == forwards
    columns = [key.column for key in order.keys]
    if cursor is not None:
        values = decode_cursor(order, cursor, "after" if forwards else "before")
        position, bound = tuple_(*columns), tuple_(*values)
        query = query.where(position < bound if descending else position > bound)
    query = query.order_by(*(c.desc() if descending else c.asc() for c in columns))
    size = request.size
    items = [to_item(row) for row in (await session.execute(query.limit(size + 1))).all()]
    more = len(items) > size
    items = items[:size]
    if not forwards:
        items.reverse()
    return Page(
        items=tuple(items),
        cursors=tuple(encode_cursor(order, item) for item in items),
        total_count=total,
        # A cursor names an item of the listing: there is at least that one on its side.
        has_next_page=more if forwards else cursor is not None,
        has_previous_page=cursor is not None if forwards else more,
    )
