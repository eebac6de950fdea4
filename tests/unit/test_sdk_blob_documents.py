"""The SDK's bucket documents are valid against the committed schema, as the others are
(tests/unit/test_sdk_documents.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from sdk.blobs import DOCUMENTS

SCHEMA = build_schema((Path(__file__).parents[2] / "graph" / "schema.graphql").read_text())


def test_every_bucket_operation_has_a_document() -> None:
    assert len(DOCUMENTS) == 14


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_against_the_committed_schema(name: str) -> None:
    errors = validate(SCHEMA, parse(DOCUMENTS[name]))
    assert errors == [], f"{name}: {[e.message for e in errors]}"
