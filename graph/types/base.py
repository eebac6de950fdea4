"""How GraphQL exposes the kernel's shared definitions, instead of spelling them out again.

- `expose_enum` makes a kernel `DescribedEnum` a GraphQL enum, its members' descriptions
  included.
- `object_type` / `input_type` derive a GraphQL type from a kernel `Model`, every field with
  its docstring as description; a class body adds or overrides fields (resolved ones, or a
  type GraphQL cannot infer). A resolver of such a type may return the kernel model itself:
  GraphQL reads its fields from it (``is_type_of`` accepts the model), which is why resolvers
  cast kernel values to the GraphQL type they are declared to return.
- `model_from_input` turns a GraphQL input into its kernel model, running the model's
  validation: the one place where an input becomes BAD_USER_INPUT naming the fields at fault.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry

from glia.model import DescribedEnum, Model, parse_input

T = TypeVar("T")
M = TypeVar("M", bound=Model)
E = TypeVar("E", bound=DescribedEnum)


def _description(model: type[Any]) -> str | None:
    return inspect.cleandoc(model.__doc__) if model.__doc__ else None


def expose_enum(cls: type[E]) -> type[E]:
    """Register ``cls`` as a GraphQL enum named after it, with its descriptions."""
    exposed = strawberry.enum(cls, description=_description(cls))
    definition = exposed.__strawberry_definition__  # type: ignore[attr-defined]
    for value in definition.values:
        value.description = cls(value.value).description or None
    return exposed


@functools.cache
def _described(model: type[Model]) -> type[Model]:
    """``model`` with each field's docstring (the string right under its annotation, in its
    class or the nearest base that has one) as its description, where it has none.

    The kernel's models leave this to GraphQL (pydantic's ``use_attribute_docstrings`` reads
    the source of every model as it is defined, which every CLI and SDK process would pay
    for at import and never use)."""
    docstrings: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):  # no source to read: nothing to add
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        for field, after in itertools.pairwise(body.body):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docstrings[field.target.id] = inspect.cleandoc(after.value.value)
    for name, info in model.model_fields.items():
        if info.description is None and name in docstrings:
            info.description = docstrings[name]
    return model


def object_type(model: type[Model], *, name: str | None = None) -> Callable[[type[T]], type[T]]:
    model = _described(model)
    decorate = strawberry.experimental.pydantic.type(
        model=model, all_fields=True, name=name, description=_description(model)
    )
    return cast(Callable[[type[T]], type[T]], decorate)


def input_type(model: type[Model], *, name: str | None = None) -> Callable[[type[T]], type[T]]:
    model = _described(model)
    decorate = strawberry.experimental.pydantic.input(
        model=model, all_fields=True, name=name, description=_description(model)
    )
    return cast(Callable[[type[T]], type[T]], decorate)


def field_description(model: type[Model], field: str) -> str | None:
    """The kernel's description of ``model.field``, for a field a class body overrides."""
    return _described(model).model_fields[field].description


def model_from_input(model: type[M], value: Any) -> M:
    """A GraphQL input (a strawberry dataclass) as its validated kernel model."""
    is_instance = dataclasses.is_dataclass(value) and not isinstance(value, type)
    data = dataclasses.asdict(value) if is_instance else value
    return parse_input(model, data)
