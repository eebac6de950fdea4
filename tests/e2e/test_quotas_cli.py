"""`glia admin set-quota|add-credits|quota`, `glia run --wait-for-seat` and the quotas in
`glia config show`, against a real `glia up`."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.e2e.conftest import Cli

README = Path(__file__).parents[2] / "README.md"


def test_an_admin_sets_a_quota_that_run_is_held_to(cli: Cli) -> None:
    quota = cli.json("admin", "set-quota", "--org", "admin", "--running-jobs", "1")
    assert (quota["level"], quota["maxRunningJobs"], quota["runningJobs"]) == ("ORG", 1, 0)
    first = cli.ok("run", "--detach", "--", "sleep", "600").strip()
    cli.wait_status(first, "running")

    refused = cli("run", "--detach", "--", "true")
    assert refused.returncode == 75  # EX_TEMPFAIL: a seat frees when a job ends
    assert "org admin may have 1 running job and has 1" in refused.stderr
    assert "Traceback" not in refused.stderr

    waiting = cli.ok("run", "--detach", "--wait-for-seat", "--", "echo", "seated").strip()
    status = cli.json("status", waiting)
    assert (status["status"], status["reason"]) == ("PENDING", "QUOTA_EXHAUSTED")
    assert "waits for a seat" in cli.ok("status", waiting)

    shown = cli.ok("config", "show")
    assert "org admin" in shown and "1 of 1" in shown
    cli.ok("kill", first)
    cli.wait_status(waiting, "succeeded")
    assert cli.ok("logs", waiting).strip() == "seated"

    cli.ok("admin", "set-quota", "--org", "admin", "--running-jobs", "unlimited")
    assert cli.json("admin", "quota", "--org", "admin")["maxRunningJobs"] is None


def test_credits_are_added_spent_and_refuse_submissions_when_gone(cli: Cli) -> None:
    cli.ok(
        "admin",
        "add-preset",
        "pricey",
        "--cpu",
        "0.25",
        "--memory",
        "128M",
        "--credits-per-hour",
        "36000",
    )
    quota = cli.json("admin", "add-credits", "5", "--cluster", "default", "--user", "admin")
    assert (quota["level"], quota["credits"]) == ("CLUSTER_USER", 5)
    assert "5.00" in cli.ok("config", "show")

    job = cli.ok("run", "--detach", "--preset", "pricey", "--", "sleep", "600").strip()
    ended = cli.wait_status(job, "cancelled", timeout=60)
    assert ended["reason"] == "QUOTA_EXHAUSTED"
    assert "credits of admin on cluster default ran out" in ended["statusDescription"]
    assert "spent at 36000/h" in cli.ok("status", job)

    refused = cli("run", "--detach", "--", "true")
    assert refused.returncode == 75
    assert "admin on cluster default has no credits left" in refused.stderr
    assert cli("admin", "add-credits", "nan", "--org", "admin").returncode == 65
    assert cli("admin", "set-quota", "--org", "admin").returncode == 65  # nothing to set
    assert cli("admin", "set-quota", "--org", "nosuch", "--credits", "1").returncode == 66


def test_readme_quotas_run_as_written(cli: Cli) -> None:
    text = README.read_text().split("### Quotas and credits", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    outputs = []
    for line in block.splitlines():
        command = line.split("  #")[0].strip()
        if not command:
            continue
        args = shlex.split(command)
        assert args[0] == "glia"
        outputs.append(cli.ok(*args[1:]))
    assert "1" in outputs[-2]  # the job ran and printed
    assert "lab" not in outputs[-1]  # config show: the caller's own levels
    assert "admin on default" in outputs[-1] and "of 4" in outputs[-1]
    assert cli.json("admin", "quota", "--org", "lab")["credits"] == 1500
