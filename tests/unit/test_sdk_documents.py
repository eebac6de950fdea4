"""Every document the SDK sends is valid against the committed schema (graph/schema.graphql),
so a schema change that would break the SDK fails here, in CI, not in a user's hands."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from glia.clusters import Resources
from sdk.documents import DOCUMENTS, selection

SCHEMA = build_schema((Path(__file__).parents[2] / "graph" / "schema.graphql").read_text())


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_against_the_committed_schema(name: str) -> None:
    errors = validate(SCHEMA, parse(DOCUMENTS[name]))
    assert errors == [], f"{name}: {[e.message for e in errors]}"


def test_the_sdk_sends_every_operation_it_has() -> None:
    assert {"LOGIN", "SUBMIT_JOB", "JOBS", "JOB", "KILL_JOB", "JOB_STATUS", "JOB_LOGS"} <= set(
        DOCUMENTS
    )


def test_a_schema_change_that_breaks_the_sdk_is_caught() -> None:
    renamed = (Path(__file__).parents[2] / "graph" / "schema.graphql").read_text()
    renamed = renamed.replace("memoryMb: Int!", "memoryMiB: Int!")
    errors = validate(build_schema(renamed), parse(DOCUMENTS["JOB"]))
    assert any("memoryMb" in error.message for error in errors)


def test_selection_follows_the_model() -> None:
    assert selection(Resources) == "cpu memoryMb gpu pidsLimit gpuModel shmMb"
