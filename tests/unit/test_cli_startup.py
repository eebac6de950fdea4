"""`glia --help` stays instant: it loads no GraphQL, HTTP, database or validation library."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {
    "gql", "graphql", "httpx", "websockets", "strawberry", "starlette", "sqlalchemy",
    "pydantic", "pydantic_core", "sdk", "glia", "rich", "yaml",
}  # fmt: skip


def loaded_after(*argv: str) -> set[str]:
    code = (
        "import json, sys\n"
        f"sys.argv = {['glia', *argv]!r}\n"
        "from cli.main import app\n"
        "try:\n    app(prog_name='glia')\nexcept SystemExit:\n    pass\n"
        # A None entry is an import blocked on purpose (cli/__init__.py), not a module.
        "sys.stderr.write(json.dumps(sorted(k for k, v in sys.modules.items() if v)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in json.loads(result.stderr.splitlines()[-1])}


def test_help_loads_nothing_heavy() -> None:
    for argv in (("--help",), ("-h",)):
        assert not loaded_after(*argv) & HEAVY, argv


def test_a_commands_help_loads_no_client_library() -> None:
    # typer 0.29 itself converts parameter values with pydantic, so a command's own help
    # loads it; the SDK and its network libraries still stay out.
    loaded = loaded_after("run", "-h")
    assert not loaded & {"gql", "graphql", "httpx", "websockets", "sdk", "rich", "yaml"}


def test_a_command_does_not_load_httpxs_own_command_line_client() -> None:
    # httpx imports it (rich, pygments) whenever click is installed; the CLI blocks it.
    code = (
        "import sys, cli, httpx\n"
        "print(sys.modules['httpx._main'] is None, 'pygments' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "False"]
