"""The two shapes every shared definition takes: a frozen model and a described enum.

A value type that crosses a boundary (service → GraphQL, GraphQL → SDK, control plane →
gateway) is a `Model`: frozen, validated, camelCase on the wire, ignoring fields it does not
know (an older client keeps working against a newer server). GraphQL derives its types from
these models (``strawberry.experimental.pydantic``) and the SDK builds its selections from them,
so a field is written once, here, with its description.

An enum that crosses a boundary is a `DescribedEnum`: its value is what is stored and printed
(``"pending"``, ``"OOMKilled"``), its name is what GraphQL sends (``PENDING``, ``OOM_KILLED``),
and either one parses: ``JobStatus("PENDING") is JobStatus.PENDING``.
"""

from __future__ import annotations

import enum
import types
import typing
from datetime import datetime
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from glia.errors import BadInput

M = TypeVar("M", bound="Model")


class Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        # A model's validator is built on its first use, not when its class is defined: a
        # CLI command imports every domain's models and uses a few (~30 ms of each start).
        defer_build=True,
        # A field's docstring (the string under it) is its description: GraphQL reads it
        # (`graph.types.base`), so that no other process pays for reading the source.
    )

    def to_wire(self) -> dict[str, Any]:
        """The API's JSON form: camelCase names, enums by their GraphQL names, ISO times.

        What GraphQL sends, what it takes as input, and what ``-o json`` prints.
        """
        wire: dict[str, Any] = _wire(self.model_dump(by_alias=True))
        return wire


class DescribedEnum(enum.StrEnum):
    """A string enum whose members carry a description: ``NAME = "value", "what it means"``."""

    description: str

    def __new__(cls, value: str, description: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        # GraphQL speaks the member names: accept them wherever a value is parsed.
        if isinstance(value, str):
            return cls.__members__.get(value.upper())
        return None


def _wire(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(item) for item in value]
    return value


def model_in(annotation: Any) -> type[Model] | None:
    """The model a field holds, directly or in a container (``tuple[X, ...]``, ``X | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return annotation
    if typing.get_origin(annotation) in (tuple, list, typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            found = model_in(argument)
            if found is not None:
                return found
    return None


def parse_input(model: type[M], data: Any) -> M:
    """Validate ``data`` as ``model``; the one mapping of validation errors to `BadInput`.

    The error names every field at fault, by its API (camelCase) name::

        >>> parse_input(JobSubmission, {"command": []})
        BadInput('command: the command must be a non-empty list of strings')
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise bad_input(exc, model) from None


def bad_input(error: ValidationError, model: type[Model] | None = None) -> BadInput:
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False):
        location = ".".join(_api_location(model, item["loc"])) or "input"
        fields.setdefault(location, _message(item))
    first_field, first_message = next(iter(fields.items()))
    message = f"{first_field}: {first_message}"
    if len(fields) > 1:
        message += f" (and {len(fields) - 1} more)"
    return BadInput(message, fields=fields)


def _api_location(model: type[Model] | None, location: tuple[Any, ...]) -> list[str]:
    """A validation error's location by the API's names: ``life_span_s`` → ``lifeSpanSeconds``."""
    parts = []
    current = model
    for part in location:
        field = current.model_fields.get(part) if current and isinstance(part, str) else None
        if field is None:
            parts.append(str(part))
            continue
        parts.append(field.alias or part)
        current = model_in(field.annotation)
    return parts


def _message(item: Any) -> str:
    message = str(item.get("msg", "invalid value"))
    # Errors raised by our own validators read as a sentence of their own.
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message
