"""The cluster life cycle through the real CLI against a real `glia up`: a second `local`
cluster registered, listed, switched to, run on, and decommissioned."""

from __future__ import annotations

import json

from tests.e2e.conftest import Cli


def test_an_admin_adds_switches_to_runs_on_and_removes_a_second_local_cluster(cli: Cli) -> None:
    added = cli.json("admin", "add-cluster", "lab", "--preset", "lab-small:0.5:256M")
    assert added["gatewaySecret"] is None
    assert added["cluster"]["status"] == "DEPLOYED"
    assert [p["name"] for p in added["cluster"]["presets"]] == ["lab-small"]
    assert cli("admin", "add-cluster", "lab").returncode != 0  # taken

    listed = {c["name"]: c for c in cli.json("admin", "ls-clusters")}
    assert set(listed) == {"default", "lab"}
    assert listed["lab"]["health"]["lastHeartbeatAt"] is not None
    assert listed["lab"]["health"]["capacity"]["cpu"] > 0
    table = cli.ok("admin", "ls-clusters")
    assert "lab" in table and "deployed" in table and "HEARTBEAT" in table

    cli.ok("config", "switch-cluster", "lab")
    assert cli("config", "switch-cluster", "nowhere").returncode != 0
    job = json.loads(cli.ok("run", "--detach", "-o", "json", "--", "sleep", "600"))
    assert job["clusterName"] == "lab" and job["preset"] == "lab-small"
    cli.wait_status(job["id"], "running")
    # --cluster overrides the context's choice.
    other = json.loads(
        cli.ok("run", "--detach", "-o", "json", "--cluster", "default", "--", "true")
    )
    assert other["clusterName"] == "default"
    # Storage on the second cluster, named with --cluster.
    assert cli("storage", "mkdir", "--cluster", "lab", "storage:results").returncode == 0
    assert "results" in cli.ok("storage", "ls", "--cluster", "lab")

    updated = cli.json("admin", "update-cluster", "lab", "--registry-url", "http://reg:5000")
    assert updated["registryUrl"] == "http://reg:5000"

    removed = cli.json("admin", "rm-cluster", "lab", "--yes")
    assert removed["stoppedJobs"] == [job["id"]]
    assert {c["name"] for c in cli.json("admin", "ls-clusters")} == {"default"}
    assert cli("admin", "rm-cluster", "lab", "--yes").returncode == 66  # not found
