"""The ``glia`` command: the typer app, and the one place errors become exit codes.

Exit codes follow sysexits.h (see ``cli/errors.py``): 77 not logged in / not allowed,
66 not found, 65 bad input, an ambiguous job id or a conflict, 69 server unreachable, 75 too
many requests (try again later), 130 Ctrl-C, 141 a closed pipe, 1 anything else.
Tracebacks are printed only with ``--verbose``.

Start-up time matters (``glia --help`` should feel instant): this module and the command
modules import typer and nothing heavier; the SDK (gql, httpx, pydantic) and rich are
imported inside the commands that use them.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import typer
from typer._click import Context as ClickContext  # typer 0.29 vendors click: no public alias
from typer.core import TyperGroup

from cli import (
    admin,
    auth,
    blobs,
    clusters,
    disks,
    gateway,
    jobs,
    orgs,
    quotas,
    secrets,
    server,
    service_accounts,
    sharing,
    storage,
    telemetry,
)
from cli import exec as exec_commands
from cli.options import flag


class GliaGroup(TyperGroup):
    """Runs every command inside the single handler for expected and unexpected failures."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except typer.Abort as exc:
            # Ctrl-C at a prompt: click turns it into Abort ("Aborted!", exit 1).
            if isinstance(exc.__context__, KeyboardInterrupt | EOFError):
                _notice("interrupted")
                raise typer.Exit(130) from None
            raise
        except (typer.Exit, typer.TyperException):
            raise
        except KeyboardInterrupt:
            _notice("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # `glia logs J | head -1`: the reader has what it wanted. Point stdout at
            # /dev/null so the interpreter's final flush does not complain about it again.
            _silence_stdout()
            raise typer.Exit(141) from None
        except Exception as exc:
            from cli.errors import describe

            code, line = describe(exc, login_hint=ctx.invoked_subcommand != "login")
            if ctx.meta.get("glia.verbose"):
                _notice("".join(traceback.format_exception(exc)).rstrip())
            _notice(line)
            raise typer.Exit(code) from None


def _notice(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _silence_stdout() -> None:
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (tests)
        pass


app = typer.Typer(
    cls=GliaGroup,
    name="glia",
    help="Glia: run and manage jobs on shared compute.\n\n"
    "Run `glia COMMAND -h` for a command's options and examples.",
    # Plain help, as click prints it: rich markup would swallow "[default: ...]" and costs
    # start-up time.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"glia {version('glia')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    context: str | None = typer.Option(
        None,
        "--context",
        envvar="GLIA_CONTEXT",
        metavar="NAME",
        help="Use this context of the config file instead of the current one "
        "(glia config get-contexts).",
    ),
    verbose: bool = flag("--verbose", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        metavar="",
        help="Print the version and exit.",
    ),
) -> None:
    ctx.meta["glia.verbose"] = verbose
    ctx.meta["glia.context"] = context
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


auth.register(app)
jobs.register(app)
exec_commands.register(app)
sharing.register(app)
service_accounts.register(app)
storage.register(app)
blobs.register(app)
disks.register(app)
telemetry.register(app)
secrets.register(app)
admin.register(app)
orgs.register(admin.admin_app)
clusters.register(admin.admin_app)
quotas.register(admin.admin_app)
server.register(app)
gateway.register(app)


def main() -> None:
    app(prog_name="glia")
