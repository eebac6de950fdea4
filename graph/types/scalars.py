"""Scalars of the schema beyond GraphQL's own, registered in `graph.schema`'s config."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

# GraphQL's Int is 32 bits: files, objects and disks are bigger.
BigInt = NewType("BigInt", int)

SCALARS: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description="A whole number up to 2^53, for sizes in bytes: GraphQL's Int stops at 2^31",
        serialize=int,
        parse_value=int,
    ),
}
