from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.harness import Harness, harness_for


@pytest.fixture(params=["fake", "local"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """An opened runtime of each implementation, with its way of running `Program`s."""
    async with harness_for(request.param, tmp_path) as harness:
        yield harness


@pytest.fixture(params=["local"])
async def persistent_harness(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The implementations whose state outlives the runtime object, so that a runtime opened
    again finds its workloads: every real one, not the in-memory fake."""
    async with harness_for(request.param, tmp_path) as harness:
        assert harness.survives_restart
        yield harness
