"""Every type, field, argument, input field and enum value of the API says what it is."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
)

from graph.schema import schema

# GraphQL's own scalars, described by the spec.
BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def _undescribed() -> list[str]:
    missing: list[str] = []
    for name, kind in schema._schema.type_map.items():
        if name.startswith("__"):
            continue
        if not kind.description and not (isinstance(kind, GraphQLScalarType) and name in BUILT_IN):
            missing.append(name)
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in field.args.items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        elif isinstance(kind, GraphQLInputObjectType):
            for field_name, field in kind.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
        elif isinstance(kind, GraphQLEnumType):
            for value_name, value in kind.values.items():
                if not value.description:
                    missing.append(f"{name}.{value_name}")
    return missing


def test_every_part_of_the_schema_is_described() -> None:
    assert _undescribed() == []
