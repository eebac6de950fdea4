"""Pages of a listing (the API's connections): what to ask for, and what comes back.

Listings page by keyset: a cursor is the position of an item in the listing's order, so a
page never skips or repeats an item when others are added meanwhile. ``first``/``after`` go
forwards, ``last``/``before`` backwards; cursors are opaque to clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from pydantic import ValidationInfo, field_validator, model_validator

from glia.model import DescribedEnum, Model

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class OrderDirection(DescribedEnum):
    """Which way a listing is ordered."""

    ASC = "asc", "Smallest (oldest, A) first"
    DESC = "desc", "Largest (newest, Z) first"


class PageRequest(Model):
    """Which page of a listing to return: `first` items after `after`, or `last` items before
    `before`."""

    first: int | None = None
    """How many items from the start (or after `after`): 0 to 500; 50 when neither `first`
    nor `last` is given."""
    after: str | None = None
    """A cursor: the page starts after this item."""
    last: int | None = None
    """How many items from the end (or before `before`): 0 to 500."""
    before: str | None = None
    """A cursor: the page ends before this item."""

    @field_validator("first", "last")
    @classmethod
    def _size(cls, size: int | None, info: ValidationInfo) -> int | None:
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise ValueError(f"{info.field_name} must be between 0 and {MAX_PAGE_SIZE}")
        return size

    @model_validator(mode="after")
    def _one_direction(self) -> Self:
        if self.first is not None and self.last is not None:
            raise ValueError("give first or last, not both")
        if self.after is not None and self.before is not None:
            raise ValueError("give after or before, not both")
        if self.last is not None and self.after is not None:
            raise ValueError("last goes with before: a page backwards ends before a cursor")
        if self.first is not None and self.before is not None:
            raise ValueError("first goes with after: a page forwards starts after a cursor")
        return self

    @property
    def forwards(self) -> bool:
        return self.last is None and self.before is None

    @property
    def size(self) -> int:
        wanted = self.first if self.forwards else self.last
        return DEFAULT_PAGE_SIZE if wanted is None else wanted

    @property
    def cursor(self) -> str | None:
        return self.after if self.forwards else self.before


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, in the listing's order."""

    items: tuple[T, ...]
    cursors: tuple[str, ...]
    """Each item's cursor (its position in the listing)."""
    total_count: int
    """How many items the listing has on all its pages."""
    has_next_page: bool
    has_previous_page: bool

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None

    @classmethod
    def empty(cls) -> Page[T]:
        return cls(
            items=(), cursors=(), total_count=0, has_next_page=False, has_previous_page=False
        )
