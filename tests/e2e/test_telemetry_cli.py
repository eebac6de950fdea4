"""`glia top` against a real server: a busy job's samples as JSON lines, through the local
runtime, the controller and the jobTelemetry subscription; and the job's history after."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import threading
import time

from tests.e2e.conftest import GLIA, Cli

# Busy for about eight seconds, then done: `glia top JOB` ends with it.
BUSY = "import time\nend = time.time() + 8\nwhile time.time() < end: pass"


def test_top_prints_a_busy_jobs_samples_as_json_lines(cli: Cli) -> None:
    # cpu-medium has a whole core (a small preset's half core would cap the loop at 50%).
    job_id = cli.ok("run", "--detach", "--preset", "cpu-medium", "--", "python3", "-c", BUSY)
    job_id = job_id.strip()
    cli.wait_status(job_id, "running")
    top = cli("top", job_id, "-o", "json", timeout=60)
    assert top.returncode == 0, top.stderr
    samples = [json.loads(line) for line in top.stdout.splitlines()]
    assert len(samples) >= 3, top.stdout
    assert {sample["jobId"] for sample in samples} == {job_id}
    assert max(sample["cpuPercent"] for sample in samples[1:]) > 50, samples
    assert all(sample["memoryBytes"] > 0 and sample["gpus"] == [] for sample in samples)
    cli.wait_status(job_id, "succeeded")

    # Ended: nothing more to show, and it says so at once.
    after = cli("top", job_id, "-o", "json", timeout=30)
    assert (after.returncode, after.stdout) == (0, ""), after.stderr

    # Piped without -o: JSON lines too.
    piped = cli("top", job_id, timeout=30)
    assert piped.returncode == 0 and piped.stdout == ""

    # A job nobody has: not found (66), without a traceback.
    missing = cli("top", "job-00000000-0000-0000-0000-000000000000", "-o", "json")
    assert missing.returncode == 66, missing.stderr
    assert "Traceback" not in missing.stderr


def test_top_without_a_job_follows_every_running_job_of_mine(cli: Cli) -> None:
    first = cli.ok("run", "--detach", "--", "sleep", "60").strip()
    second = cli.ok("run", "--detach", "--", "sleep", "60").strip()
    cli.wait_status(first, "running")
    cli.wait_status(second, "running")
    env = {**cli.server.env, "GLIA_CONFIG": str(cli.config)}
    with subprocess.Popen(
        [GLIA, "top", "-o", "json"], env=env, stdout=subprocess.PIPE, text=True
    ) as top:
        assert top.stdout is not None
        seen: set[str] = set()
        deadline = threading.Timer(30, top.kill)  # a top that shows nothing fails, not hangs
        deadline.start()
        try:
            for line in top.stdout:
                seen.add(json.loads(line)["jobId"])
                if seen >= {first, second}:
                    break
        finally:
            deadline.cancel()
            top.terminate()
    assert seen >= {first, second}
    cli.ok("kill", first, second)


def test_top_on_a_terminal_draws_a_table_until_the_job_ends(cli: Cli) -> None:
    job_id = cli.ok("run", "--detach", "--", "python3", "-c", BUSY).strip()
    cli.wait_status(job_id, "running")
    env = {**cli.server.env, "GLIA_CONFIG": str(cli.config), "COLUMNS": "160", "TERM": "xterm"}
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [GLIA, "top", job_id], env=env, stdin=follower, stdout=follower, stderr=follower
    ) as top:
        os.close(follower)
        shown = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: top ended
                    break
                if not chunk:
                    break
                shown += chunk
            elif top.poll() is not None:
                break
        top.wait(timeout=30)
    os.close(leader)
    text = shown.decode(errors="replace")
    assert top.returncode == 0, text
    for column in ("JOB", "CPU", "MEMORY", "GPU"):
        assert column in text
    assert job_id in text
    assert re.search(r"\d+\.\d%", text), text
