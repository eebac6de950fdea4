"""docs/cli.md, generated from the typer app: ``python -m cli.docs > docs/cli.md``.

tests/unit/test_cli_docs.py fails when the committed file differs, so the reference always
matches what ``glia COMMAND -h`` prints.
"""

from __future__ import annotations

from collections.abc import Iterator

import typer
from typer._click.core import Command, Context  # typer 0.29 vendors click
from typer.core import TyperGroup as Group

from cli.main import app

WIDTH = 100

INTRO = """\
# The `glia` command

Generated from the CLI itself by `python -m cli.docs > docs/cli.md`; `glia COMMAND -h` prints
the same. Every command takes `-h`/`--help`.

- Jobs are named by their id (`job-<uuid>`), any unique prefix of it (`job-0a1b2c3d`, as
  `glia ps` shows them) or their name. An ambiguous prefix lists the jobs it matches.
- `-o json` and `-o yaml` print what the API returns: its field names (`exitCode`,
  `createdAt`) and enum values (`RUNNING`, `OOM_KILLED`), so scripts can use either.
- `glia ps --format` takes column names (`--format "id status command"`, also written
  `"{id} {status}"`); `--wide` shows every column, whole ids and whole commands.
- Contexts, like kubectl's: `glia login` adds one (server, user, token) and uses it;
  `glia config get-contexts` lists them; `--context NAME` (or `GLIA_CONTEXT`) picks one for
  one command. The file is `~/.config/glia/config.toml` (`GLIA_CONFIG`), mode 0600.
- Shell completion: `glia --install-completion` (bash, zsh, fish) completes commands,
  options, job ids and names, contexts and user names.
- Exit codes (sysexits): 0 success, 1 other errors, 64 usage, 65 bad input, an ambiguous
  job or a conflict, 66 not found, 69 server unreachable, 70 an answer the CLI cannot read,
  75 try again later, 77 not logged in or not allowed, 78 bad config file, 130 Ctrl-C,
  141 output pipe closed; `glia run` exits with the job's exit code.
"""


def _commands(group: Group, ctx: Context) -> Iterator[tuple[Command, Context]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = Context(command, info_name=name, parent=ctx, max_content_width=WIDTH)
        sub.terminal_width = WIDTH
        yield command, sub
        if isinstance(command, Group):
            yield from _commands(command, sub)


def render() -> str:
    root_command = typer.main.get_command(app)
    root = Context(
        root_command,
        info_name="glia",
        max_content_width=WIDTH,
        help_option_names=["-h", "--help"],
    )
    root.terminal_width = WIDTH
    parts = [INTRO, "## glia\n", "```text\n" + root_command.get_help(root) + "\n```\n"]
    if isinstance(root_command, Group):
        for command, ctx in _commands(root_command, root):
            parts.append(f"## {ctx.command_path}\n")
            parts.append("```text\n" + command.get_help(ctx) + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
