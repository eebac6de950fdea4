"""The ``glia`` command: the typer app, and the one place errors become exit codes.

Exit codes follow sysexits.h (see ``cli/errors.py``): 77 not logged in / not allowed,
66 not found, 65 bad input or conflict, 69 server unreachable, 75 too many requests (try again
later), 130 Ctrl-C, 1 anything else.
Tracebacks are printed only with ``--verbose``.
"""

from __future__ import annotations

import traceback
from typing import Any

import typer
from typer._click import Context as ClickContext  # typer 0.29 vendors click: no public alias
from typer.core import TyperGroup

from cli import admin, auth, formatting, jobs, server
from cli.errors import EX_INTERRUPTED, error_line, exit_code_for
from sdk import GliaError


class GliaGroup(TyperGroup):
    """Runs every command inside the single handler for expected and unexpected failures."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except GliaError as exc:
            # "run glia login" is no help to someone whose `glia login` just failed.
            _report(ctx, exc, error_line(exc, hint=ctx.invoked_subcommand != "login"))
            raise typer.Exit(exit_code_for(exc)) from None
        except KeyboardInterrupt:
            formatting.notice("interrupted")
            raise typer.Exit(EX_INTERRUPTED) from None
        except Exception as exc:
            _report(ctx, exc, f"error: {exc or type(exc).__name__} (--verbose shows where)")
            raise typer.Exit(1) from None


def _report(ctx: ClickContext, exc: BaseException, line: str) -> None:
    if ctx.meta.get("glia.verbose"):
        formatting.notice("".join(traceback.format_exception(exc)).rstrip())
    formatting.notice(line)


app = typer.Typer(
    cls=GliaGroup,
    name="glia",
    help="Glia: run and manage jobs on shared compute.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", help="Show tracebacks on errors."),
) -> None:
    ctx.meta["glia.verbose"] = verbose


auth.register(app)
jobs.register(app)
admin.register(app)
server.register(app)


def main() -> None:
    app(prog_name="glia")
