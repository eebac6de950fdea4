"""`cluster_gateway/server/schema.graphql` is the committed print of the gateway's subgraph.

Regenerate with:
python -m cluster_gateway.server.schema > cluster_gateway/server/schema.graphql
"""

from __future__ import annotations

from pathlib import Path

from cluster_gateway.server.schema import create_schema

ARTIFACT = Path(__file__).parents[2] / "cluster_gateway" / "server" / "schema.graphql"


def test_gateway_schema_matches_committed_artifact() -> None:
    printed = create_schema().as_str() + "\n"
    assert ARTIFACT.read_text() == printed, (
        "the gateway's subgraph changed: run `python -m cluster_gateway.server.schema > "
        "cluster_gateway/server/schema.graphql` and commit the result"
    )
