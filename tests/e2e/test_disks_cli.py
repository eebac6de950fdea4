"""`glia disk create|ls|get|rm` against a real `glia up`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster_gateway.disks import LocalDisks
from tests.e2e.conftest import Cli

pytestmark = pytest.mark.skipif(
    LocalDisks(Path("/nonexistent")).problem() is not None,
    reason="making disks needs root, mkfs.ext4 and loop devices, as CI has",
)


def test_a_disk_is_created_listed_shown_and_removed(cli: Cli) -> None:
    disk = cli.json("disk", "create", "64M", "--name", "data", "--timeout-unused", "7d")
    assert (disk["name"], disk["sizeBytes"], disk["status"]) == ("data", 64 * 1024**2, "READY")
    assert disk["timeoutUnusedSeconds"] == 7 * 86400
    table = cli.ok("disk", "ls")
    assert "data" in table and "64.0 MiB" in table and "ready" in table
    assert cli.json("disk", "get", "data")["id"] == disk["id"]
    assert cli.json("disk", "get", disk["id"])["name"] == "data"

    taken = cli("disk", "create", "64M", "--name", "data")
    assert taken.returncode == 65 and "has a disk named 'data'" in taken.stderr
    assert cli("disk", "create", "lots").returncode == 65
    assert cli("disk", "create", "1K").returncode == 65  # smaller than 16 MiB
    assert cli("disk", "create", "1G", "--timeout-unused", "soon").returncode == 65

    assert "Deleted disk data" in cli("disk", "rm", "data").stderr
    assert cli("disk", "get", "data").returncode == 66
    assert cli.json("disk", "ls") == []
