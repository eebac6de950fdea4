"""docs/cli.md is what `python -m cli.docs` prints from the typer app: regenerate it with
`python -m cli.docs > docs/cli.md` when a command changes."""

from __future__ import annotations

from pathlib import Path

from cli.docs import render

DOCS = Path(__file__).parents[2] / "docs" / "cli.md"


def test_committed_cli_reference_is_current() -> None:
    assert DOCS.read_text() == render(), "run: python -m cli.docs > docs/cli.md"


def test_every_command_has_examples_and_no_raw_types() -> None:
    text = render()
    sections = text.split("\n## ")[1:]
    commands = [s for s in sections if "Commands:" not in s]
    assert len(commands) >= 20
    for section in commands:
        name = section.splitlines()[0]
        assert "Examples:" in section, name
    for raw in ("<list[str]>", "<int range>", "x>=1", "<bool>", "<str>"):
        assert raw not in text
    assert "[default: (this directory, synced to storage)]" in " ".join(text.split())
