"""`graph/schema.graphql` is the committed print of the schema: every API change shows in review.

Regenerate with: python -m graph.schema > graph/schema.graphql
"""

from __future__ import annotations

from pathlib import Path

from graph.schema import schema

ARTIFACT = Path(__file__).parents[2] / "graph" / "schema.graphql"


def test_schema_matches_committed_artifact() -> None:
    printed = schema.as_str() + "\n"
    assert ARTIFACT.read_text() == printed, (
        "the schema changed: run `python -m graph.schema > graph/schema.graphql` "
        "and commit the result"
    )
