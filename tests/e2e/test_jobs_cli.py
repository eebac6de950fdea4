"""End to end: `glia up` as a real process, driven through the real `glia` CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cluster_gateway.runtimes.cgroups import detect as detect_cgroups
from tests.e2e.conftest import GLIA, Cli, Server

pytestmark = pytest.mark.e2e


def test_up_logs_the_cli_in_and_login_works(server: Server, cli: Cli, tmp_path: Path) -> None:
    shown = cli.json("config", "show")
    assert shown["server"] == server.url
    assert shown["username"] == "admin"
    assert {p["name"] for p in shown["presets"]} >= {"cpu-small", "cpu-medium", "cpu-large"}

    other = Cli(server=server, config=tmp_path / "other.toml")
    login = other(
        "login", server.url, "-u", "admin", "--password-stdin", input=server.admin_password() + "\n"
    )
    assert login.returncode == 0, login.stderr
    assert other.json("config", "show")["username"] == "admin"
    wrong = other("login", server.url, "-u", "admin", "--password-stdin", input="nope-nope\n")
    assert wrong.returncode == 77
    assert "Traceback" not in wrong.stderr

    other.ok("logout")
    after = other("ps")
    assert after.returncode == 77, after.stderr


def test_run_streams_output_and_exits_with_the_job_code(cli: Cli) -> None:
    script = (
        "import sys; print('hello from glia'); print('to stderr', file=sys.stderr); sys.exit(3)"
    )
    result = cli("run", "--name", "three", "--", "python3", "-c", script)
    assert result.returncode == 3, result.stderr
    assert "failed (Error, exit code 3)" in result.stderr
    assert "hello from glia" in result.stdout
    assert "to stderr" in result.stderr
    status = cli.json("status", "three")
    assert status["status"].lower() == "failed"
    assert status["exitCode"] == 3
    assert status["reason"] == "ERROR"
    history = [h["status"].lower() for h in status["history"]]
    assert history == ["pending", "running", "failed"]

    logs = cli.ok("logs", "three", "--timestamps")
    assert "hello from glia" in logs


def test_environment_and_working_dir(cli: Cli, tmp_path: Path) -> None:
    # Jobs run under their user's uid: the directory must be one that uid may enter.
    workdir = Path(tempfile.mkdtemp(prefix="glia-e2e-work-"))
    workdir.chmod(0o755)
    env_file = tmp_path / "job.env"
    env_file.write_text("# comment\nFROM_FILE=file\nOVERRIDDEN=file\n")
    out = cli.ok(
        "run",
        "-w",
        str(workdir),
        "--env-file",
        str(env_file),
        "-e",
        "OVERRIDDEN=flag",
        "--preset",
        "cpu-small",
        "--",
        "sh",
        "-c",
        'echo "$PWD|$FROM_FILE|$OVERRIDDEN|$GLIA_JOB_OWNER|$GLIA_PRESET|$GLIA_CLUSTER"',
    )
    assert out.strip() == f"{workdir}|file|flag|admin|cpu-small|default"
    shutil.rmtree(workdir)


def test_kill_a_running_job(cli: Cli) -> None:
    job_id = cli.ok("run", "--detach", "--", "sleep", "300").strip()
    assert job_id.startswith("job-")
    cli.wait_status(job_id, "running")
    listed = cli.json("ps")
    assert job_id in [j["id"] for j in listed]
    cli.ok("kill", job_id)
    final = cli.wait_status(job_id, "cancelled", timeout=10)
    assert final["reason"] == "USER_REQUESTED"
    assert job_id not in [j["id"] for j in cli.json("ps")]
    assert job_id in [j["id"] for j in cli.json("ps", "-a")]


def test_memory_limit(cli: Cli) -> None:
    # cpu-small allows at most 1 GiB; the job asks for 3.
    result = cli(
        "run", "--preset", "cpu-small", "--", "python3", "-c", "b = bytearray(3 * 1024**3)"
    )
    assert result.returncode != 0
    jobs = cli.json("ps", "-a")
    status = cli.json("status", jobs[0]["id"])
    assert status["status"].lower() == "failed"
    if detect_cgroups("/sys/fs/cgroup") is not None:
        assert status["reason"] == "OOM_KILLED"
        assert status["exitCode"] == 137
        assert f"{status['id']}: failed (OOMKilled, exit code 137)" in result.stderr
    else:  # rlimits only: the allocation fails inside the process
        assert status["reason"] == "ERROR"


def test_a_second_user_cannot_touch_the_first_users_jobs(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    job_id = cli.ok("run", "--detach", "--", "sleep", "300").strip()
    cli.ok("admin", "add-user", "bob", "--password-stdin", input="bob-password-1\n")
    bob = Cli(server=server, config=tmp_path / "bob.toml")
    bob.ok("login", server.url, "-u", "bob", "--password-stdin", input="bob-password-1\n")

    assert bob.json("ps", "-a") == []
    for command in (("status", job_id), ("logs", job_id), ("kill", job_id)):
        denied = bob(*command)  # as for a job that does not exist: bob learns nothing
        assert denied.returncode == 66, (command, denied.stdout, denied.stderr)
        assert denied.stderr.strip().endswith(f"job '{job_id}' not found"), denied.stderr
        assert "Traceback" not in denied.stderr
    assert cli.json("status", job_id)["status"].lower() == "running"
    cli.ok("kill", job_id)


def test_jobs_survive_a_killed_control_plane(server: Server, cli: Cli) -> None:
    script = "for i in $(seq 1 40); do echo line $i; sleep 0.1; done; exit 4"
    job_id = cli.ok("run", "--detach", "--", "sh", "-c", script).strip()
    cli.wait_status(job_id, "running")
    time.sleep(0.5)

    server.stop(signal.SIGKILL)
    time.sleep(1.0)  # the job goes on printing while nobody listens
    server.start()

    final = cli.wait_status(job_id, "failed", timeout=30)
    assert final["exitCode"] == 4
    logs = cli.ok("logs", job_id).splitlines()
    assert logs == [f"line {i}" for i in range(1, 41)]

    # a job still running across a restart is re-attached and followed live
    job_id = cli.ok("run", "--detach", "--", "sh", "-c", "sleep 6; echo done").strip()
    cli.wait_status(job_id, "running")
    server.stop(signal.SIGKILL)
    server.start()
    assert cli.json("status", job_id)["status"].lower() == "running"
    followed = cli.ok("logs", "-f", job_id)
    assert followed.strip() == "done"
    assert cli.wait_status(job_id, "succeeded")["exitCode"] == 0


def test_logs_follow_streams_live(cli: Cli) -> None:
    job_id = cli.ok("run", "--detach", "--", "sh", "-c", "echo first; sleep 1; echo second").strip()
    out = cli.ok("logs", "-f", job_id)
    assert out.splitlines() == ["first", "second"]
    data = json.loads(cli.ok("status", job_id, "-o", "json"))
    assert data["status"].lower() == "succeeded"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["restart", "kill-9"])
def test_a_log_follow_survives_a_server_restart(server: Server, cli: Cli, stop: int) -> None:
    """`glia logs -f` goes on across a restart of the control plane (a clean one, and a
    kill -9) from where it stopped: every line once, in order."""
    count = 300
    script = f"for i in $(seq 1 {count}); do echo line $i; sleep 0.03; done"
    job_id = cli.ok("run", "--detach", "--", "sh", "-c", script).strip()
    cli.wait_status(job_id, "running")
    out = tempfile.TemporaryFile()
    follower = subprocess.Popen(
        [GLIA, "logs", "-f", job_id],
        env={**server.env, "GLIA_CONFIG": str(cli.config)},
        stdout=out,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while out.tell() < 200 and time.monotonic() < deadline:  # it is following
            time.sleep(0.05)
        server.stop(stop)
        time.sleep(1.0)  # the job goes on printing while the server is down
        server.start()
        _, stderr = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 0, stderr
    out.seek(0)
    lines = out.read().decode().splitlines()
    assert lines == [f"line {i}" for i in range(1, count + 1)]
    assert cli.wait_status(job_id, "succeeded")["exitCode"] == 0


def test_logs_tail_starts_at_the_last_lines(cli: Cli) -> None:
    job_id = cli.ok("run", "--", "seq", "1", "5000").strip().splitlines()
    job = cli.json("ps", "-a")[0]["id"]
    assert job_id[-1] == "5000"
    assert cli.ok("logs", "--tail", "3", job).splitlines() == ["4998", "4999", "5000"]
    assert cli.ok("logs", "-n", "0", job) == ""
    assert cli.ok("logs", "--tail", "2", "--timestamps", job).count("\n") == 2
    assert cli.ok("logs", "--tail", "99999", job).splitlines() == [str(i) for i in range(1, 5001)]
    bad = cli("logs", "--tail", "3", "--since", "1h", job)
    assert bad.returncode == 2 and "give one" in bad.stderr
    negative = cli("logs", "--tail", "-1", job)
    assert negative.returncode == 2
    # With -f it starts there and follows the rest.
    script = "seq 1 50; sleep 5; echo after"
    live = cli.ok("run", "--detach", "--", "sh", "-c", script).strip()
    deadline = time.monotonic() + 30
    while "50" not in cli.ok("logs", live).split() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cli.ok("logs", "-f", "--tail", "2", live).splitlines() == ["49", "50", "after"]


def test_ctrl_c_stops_cleanly_and_a_restart_keeps_the_install(server: Server, cli: Cli) -> None:
    config_before = cli.config.read_text()
    server.stop(signal.SIGINT)
    assert server.process is not None and server.process.returncode == 0
    server.start()
    assert "admin password" not in server.log_path.read_text()
    assert cli.config.read_text() == config_before
    assert cli.json("config", "show")["username"] == "admin"


def test_a_command_that_cannot_start(cli: Cli) -> None:
    result = cli("run", "--", "no-such-command-here")
    assert result.returncode == 127
    assert "StartFailed" in result.stderr
    assert "no-such-command-here" in result.stderr


def test_a_big_output_arrives_whole_in_bounded_messages(cli: Cli) -> None:
    printed = cli.ok("run", "--", "seq", "1", "20000")
    assert printed.splitlines() == [str(i) for i in range(1, 20001)]
    job_id = cli.json("ps", "-a")[0]["id"]
    assert cli.ok("logs", job_id).splitlines() == [str(i) for i in range(1, 20001)]
    followed = cli.ok("logs", "--timestamps", job_id).splitlines()
    assert [line.split(" ", 1)[1] for line in followed] == [str(i) for i in range(1, 20001)]


def test_ps_filters_by_tags_and_description_and_watches(cli: Cli, server: Server) -> None:
    first = cli.ok(
        "run",
        "--detach",
        "--tag",
        "sweep",
        "--tag",
        "lr=0.1",
        "--description",
        "Learning rate",
        "--",
        "sleep",
        "300",
    ).strip()
    second = cli.ok("run", "--detach", "--tag", "sweep", "--", "sleep", "300").strip()
    assert [j["id"] for j in cli.json("ps", "-t", "sweep")] == [second, first]
    assert [j["id"] for j in cli.json("ps", "-t", "sweep", "-t", "lr=0.1")] == [first]
    assert [j["id"] for j in cli.json("ps", "-d", "LEARNING")] == [first]
    assert cli("ps", "--watch", "-o", "json").returncode == 65

    # Not a terminal: each listing is printed below the last, from the first on.
    watch = subprocess.Popen(
        [GLIA, "ps", "--watch", "--wide", "-t", "sweep"],
        env={**server.env, "GLIA_CONFIG": str(cli.config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it: a test run started in the background inherits
        # SIGINT ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        time.sleep(3)  # the first listing, and the subscription
        third = cli.ok("run", "--detach", "--tag", "sweep", "--", "sleep", "300").strip()
        cli.ok("kill", first)
        time.sleep(3)
    finally:
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=20)
    assert watch.returncode == 130, (out, err)
    assert "Traceback" not in err
    listings = out.split("Ctrl-C to stop")
    assert first in listings[0] and third not in listings[0]
    assert third in listings[-2] and first not in listings[-2]  # killed: no longer unfinished
    for job in (second, third):
        cli.ok("kill", job)
