"""Global object identification: every object with an id is a `Node`, found by `node(id:)`."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description="An object with an id unique across the platform: `node(id:)` finds it"
)
class Node:
    id: strawberry.ID = strawberry.field(description="The object's id, unique on the platform")
