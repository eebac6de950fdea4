"""`glia admin add-preset|update-preset|rm-preset` and `glia config show`'s availability,
against a real `glia up`."""

from __future__ import annotations

import json
import os

from tests.e2e.conftest import Cli


def test_an_admin_manages_presets_and_config_show_says_how_many_fit(cli: Cli) -> None:
    added = cli.json(
        "admin",
        "add-preset",
        "tiny",
        "--cpu",
        "0.25",
        "--memory",
        "256M",
        "--credits-per-hour",
        "0.5",
    )
    assert added["name"] == "tiny" and added["resources"]["memoryMb"] == 256
    assert added["creditsPerHour"] == 0.5 and added["schedulerEnabled"] is True
    shown = {p["name"]: p for p in cli.json("config", "show")["presets"]}
    assert shown["tiny"]["available"] >= 1
    assert shown["cpu-small"]["available"] >= 1
    table = cli.ok("config", "show")
    assert "AVAILABLE" in table and "tiny" in table

    updated = cli.json("admin", "update-preset", "tiny", "--memory", "512M", "--no-scheduler")
    assert updated["resources"] == {**added["resources"], "memoryMb": 512}
    assert updated["schedulerEnabled"] is False
    cli.ok("admin", "rm-preset", "tiny")
    assert "tiny" not in {p["name"] for p in cli.json("config", "show")["presets"]}
    assert cli("admin", "rm-preset", "tiny").returncode == 66  # not found
    assert cli("admin", "add-preset", "bad_name", "--cpu", "1", "--memory", "1G").returncode == 65


def test_run_takes_priority_schedule_timeout_and_restart_and_a_life_span_bump(cli: Cli) -> None:
    # Everything after the command belongs to the job: `-o json` goes before it.
    job = json.loads(
        cli.ok(
            "run",
            "--detach",
            "-o",
            "json",
            "--priority",
            "high",
            "--schedule-timeout",
            "1h",
            "--restart",
            "on-failure",
            "--life-span",
            "1h",
            "--",
            "sleep",
            "600",
        )
    )
    assert (job["priority"], job["restartPolicy"]) == ("HIGH", "ON_FAILURE")
    assert (job["scheduleTimeoutSeconds"], job["lifeSpanSeconds"]) == (3600, 3600)
    bumped = cli.json("job", "bump-life-span", job["id"], "30m")
    assert bumped["lifeSpanSeconds"] == 5400
    assert cli.ok("job", "bump-life-span", job["id"], "30m").strip() == f"{job['id']} life span 2h"
    assert cli("run", "--detach", "--priority", "urgent", "--", "true").returncode == 65
    cli.ok("kill", job["id"])


def test_a_high_job_preempts_a_preemptible_one_which_runs_again_after(cli: Cli) -> None:
    """On the local runtime: a preemptible job holding every CPU is stopped for a high job,
    then started again from the beginning once the high job has ended."""
    cpus = str(os.cpu_count() or 1)
    cli.ok("admin", "add-preset", "spot", "--cpu", cpus, "--memory", "128M", "--preemptible")
    cli.ok("admin", "add-preset", "whole", "--cpu", cpus, "--memory", "128M")
    spot = cli.ok(
        "run", "--detach", "--preset", "spot", "--", "sh", "-c", "echo started; sleep 600"
    ).strip()
    cli.wait_status(spot, "running")
    urgent = cli.ok(
        "run", "--detach", "--preset", "whole", "--priority", "high", "--", "sleep", "2"
    ).strip()
    suspended = cli.wait_status(spot, "suspended")
    assert suspended["reason"] == "PREEMPTED"
    assert urgent in suspended["statusDescription"]
    cli.wait_status(urgent, "succeeded")
    resumed = cli.wait_status(spot, "running")
    statuses = [step["status"] for step in resumed["history"]]
    assert statuses[-3:] == ["RUNNING", "SUSPENDED", "RUNNING"]
    cli.ok("kill", spot)


def test_run_follows_a_job_that_waits_for_room_and_prints_its_output(cli: Cli) -> None:
    cpus = str(os.cpu_count() or 1)
    cli.ok("admin", "add-preset", "all", "--cpu", cpus, "--memory", "128M")
    first = cli.ok("run", "--detach", "--preset", "all", "--", "sleep", "3").strip()
    cli.wait_status(first, "running")
    # This one waits for the first to end before it runs: glia run follows it all the way.
    said = cli.ok("run", "--preset", "all", "--", "echo", "ran after waiting")
    assert "ran after waiting" in said
