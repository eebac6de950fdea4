"""What the commands' signatures need, and nothing heavier than typer.

Typer reads every command's signature to build ``glia --help``, so the types named there must
not pull in the SDK (gql, httpx, pydantic): enums of the kernel are taken as strings here and
parsed inside the command (`parse_choice`), and the SDK is imported in the command bodies.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand

F = TypeVar("F", bound=Callable[..., Any])

# The kernel's values (JobStatus, UserRole), written out so that help needs no import of the
# kernel's models; tests/unit/test_cli_options.py checks they match.
JOB_STATUSES = ("pending", "running", "suspended", "succeeded", "failed", "cancelled")
USER_ROLES = ("user", "admin")


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def output_option() -> Any:
    return typer.Option(
        OutputFormat.TABLE,
        "-o",
        "--output",
        metavar="table|json|yaml",
        help="Output format; json and yaml use the API's field names and values.",
    )


def cluster_option(help: str = "The cluster.") -> Any:
    """``--cluster``: the one option every command that runs or stores something takes; its
    default is the context's cluster (glia config switch-cluster), else the server's first."""
    return typer.Option(
        None,
        "--cluster",
        metavar="CLUSTER",
        help=help,
        show_default="the context's (glia config switch-cluster)",
    )


def flag(*names: str, help: str) -> Any:
    """A boolean flag, shown without a type in help."""
    return typer.Option(False, *names, help=help, metavar="")


def choices_help(values: Iterable[str]) -> str:
    return ", ".join(values)


def complete_from(values: Iterable[str]) -> Any:
    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete.lower())]

    return complete


def with_examples(*lines: str) -> Callable[[F], F]:
    """Adds an "Examples" paragraph, one command a line, to a command's help."""

    def add(function: F) -> F:
        body = "\n".join(f"  {line}" for line in lines)
        function.__doc__ = inspect.cleandoc(function.__doc__ or "") + f"\n\n\b\nExamples:\n{body}"
        return function

    return add


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: typer would add ``<list[str]>``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.metavar else super().display_type_rich(ctx)


class GliaCommand(TyperCommand):
    """Every glia command: arguments shown by their metavars in help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument


def parse_size(text: str, option: str, *, unit: int = 1) -> int:
    """A size in bytes (`glia.sizes.parse_size`); BadInput naming ``option``."""
    from glia.sizes import parse_size as parse
    from sdk import BadInput

    try:
        return parse(text, unit=unit)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a size (512M, 4G)") from None
