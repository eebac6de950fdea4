"""The CLI as people meet it, through the real `glia` binary against a real `glia up`: help,
short ids, output formats, contexts, users, messages, completion and the README."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import GLIA, Cli, Server

pytestmark = pytest.mark.e2e

README = Path(__file__).parents[2] / "README.md"


def test_help_version_and_no_arguments(tmp_path: Path) -> None:
    bare = subprocess.run([GLIA], capture_output=True, text=True, timeout=30)
    short = subprocess.run([GLIA, "run", "-h"], capture_output=True, text=True, timeout=30)
    version = subprocess.run([GLIA, "--version"], capture_output=True, text=True, timeout=30)
    group = subprocess.run([GLIA, "admin"], capture_output=True, text=True, timeout=30)

    assert bare.returncode == 0 and "Commands:" in bare.stdout and "ps" in bare.stdout
    assert short.returncode == 0 and "Examples:" in short.stdout
    assert "[default: (this directory, synced to storage)]" in " ".join(short.stdout.split())
    assert "<list[str]>" not in short.stdout and "<bool>" not in short.stdout
    assert re.fullmatch(r"glia \d+\.\d+\.\d+\S*\n", version.stdout)
    assert group.returncode == 0 and "ls-users" in group.stdout


def test_ps_short_ids_fits_80_columns_and_picks_columns(cli: Cli) -> None:
    long_command = "sleep 300 # " + " ".join(f"word{i}" for i in range(40))
    job_id = cli.ok("run", "--detach", "--name", "a-long-job-name", "--", "sh", "-c", long_command)
    job_id = job_id.strip()
    other = cli.ok("run", "--detach", "--preset", "cpu-medium", "--", "sleep", "300").strip()

    table = cli("ps", env={"COLUMNS": "80"}).stdout.splitlines()
    picked = cli.ok("ps", "--format", "{id} {status}").split()
    wide = cli.ok("ps", "--wide")

    assert table[0].split() == ["ID", "NAME", "STATUS", "PRESET", "AGE", "COMMAND"]
    assert all(len(line) <= 80 for line in table), table
    shown = {line.split()[0] for line in table[1:]}
    assert shown == {job_id[:12], other[:12]}  # job- and 8 characters, unique here
    assert "cpu-medium" in "\n".join(table)  # presets are never cut
    assert picked[:2] == ["ID", "STATUS"] and set(picked[2::2]) == {job_id[:12], other[:12]}
    assert job_id in wide and long_command in wide
    bad = cli("ps", "--format", "id colour")
    assert bad.returncode == 65 and "unknown column 'colour'" in bad.stderr
    cli.ok("kill", job_id, other)


def test_json_and_yaml_use_the_apis_names(cli: Cli) -> None:
    ran = cli("run", "-o", "json", "--", "sh", "-c", "echo out; exit 2")
    detached = json.loads(cli.ok("run", "--detach", "-o", "json", "--", "true"))
    listed = yaml.safe_load(cli.ok("ps", "-a", "-o", "yaml"))
    shown = yaml.safe_load(cli.ok("config", "show", "-o", "yaml"))

    job = json.loads(ran.stdout)  # the job's output went to stderr: stdout is the document
    assert ran.returncode == 2 and "out" in ran.stderr
    assert (job["status"], job["reason"], job["exitCode"]) == ("FAILED", "ERROR", 2)
    assert "clusterName" in job and "cluster_name" not in job
    assert detached["status"] == "PENDING" and detached["command"] == ["true"]
    assert {j["id"] for j in listed} >= {job["id"], detached["id"]}
    assert shown["presets"][0]["resources"]["memoryMb"] > 0


def test_every_command_takes_a_unique_prefix_and_lists_an_ambiguous_ones(cli: Cli) -> None:
    ids = [cli.ok("run", "--detach", "--", "true").strip() for _ in range(2)]
    for job_id in ids:
        cli.wait_status(job_id, "succeeded")

    by_prefix = cli.json("status", ids[0][:12])
    ambiguous = cli("status", "job-")

    assert by_prefix["id"] == ids[0]
    assert ambiguous.returncode == 65
    lines = ambiguous.stderr.splitlines()
    assert lines[0].startswith("error: ")
    assert {line.split()[0] for line in lines[1:]} >= set(ids)


def test_kill_a_finished_job_and_a_quick_failure_shows_its_output(cli: Cli) -> None:
    script = "echo 'loading data'; echo 'FileNotFoundError: data.csv' >&2; exit 1"
    job_id = cli.ok("run", "--detach", "--", "sh", "-c", script).strip()
    cli.wait_status(job_id, "failed")

    killed = cli("kill", job_id)
    status = cli.ok("status", job_id)
    ran = cli("run", "--", "sh", "-c", "exit 3")

    assert killed.returncode == 0
    assert killed.stderr == f"{job_id}: had already finished (failed)\n"
    assert "FileNotFoundError: data.csv" in status.split("Last")[1]
    assert ran.stderr.count("failed (Error, exit code 3)") == 1
    assert ran.stderr.splitlines()[-1].endswith("failed (Error, exit code 3)")


def test_no_pydantic_wording_and_a_closed_pipe_is_quiet(cli: Cli) -> None:
    bad_name = cli("run", "--name", "Bad_Name", "--", "true")
    bad_limit = cli("ps", "--limit", "0")
    job_id = cli.ok("run", "--detach", "--", "seq", "1", "200000").strip()
    cli.wait_status(job_id, "succeeded")
    piped = subprocess.run(
        f"{GLIA} logs {job_id} | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        env={**cli.server.env, "GLIA_CONFIG": str(cli.config)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert bad_name.returncode == 65 and bad_name.stderr.count("\n") == 1
    assert "String should" not in bad_name.stderr and "pydantic" not in bad_name.stderr
    assert bad_limit.returncode == 65 and "--limit" in bad_limit.stderr
    assert piped.stdout == "1\n"
    assert piped.returncode in (0, 141) and piped.stderr == ""


def test_contexts_keep_each_user_and_switch(server: Server, cli: Cli, tmp_path: Path) -> None:
    cli.ok("admin", "add-user", "bob", "--password-stdin", input="bob-password-1\n")
    admin_context = f"admin@127.0.0.1:{server.port}"
    bob_context = f"bob@127.0.0.1:{server.port}"

    cli.ok("login", server.url, "-u", "bob", "--password-stdin", input="bob-password-1\n")
    contexts = cli.json("config", "get-contexts")
    as_admin = cli.json("--context", admin_context, "config", "show")

    assert [(c["name"], c["current"]) for c in contexts] == [
        (admin_context, False),
        (bob_context, True),
    ]
    assert cli.json("config", "show")["username"] == "bob"
    assert as_admin["username"] == "admin"
    cli.ok("config", "use-context", admin_context)
    assert cli.json("config", "show")["username"] == "admin"
    cli.ok("config", "rename-context", bob_context, "bob")
    assert cli.json("--context", "bob", "ps") == []
    cli.ok("config", "delete-context", "bob")
    assert [c["name"] for c in cli.json("config", "get-contexts")] == [admin_context]
    missing = cli("--context", "bob", "ps")
    assert missing.returncode == 78 and "no context 'bob'" in missing.stderr

    old = tmp_path / "old.toml"  # a config file from before contexts
    token = cli.config.read_text().split('token = "')[1].split('"')[0]
    old.write_text(f'server = "{server.url}"\ntoken = "{token}"\nusername = "admin"\n')
    migrated = Cli(server=server, config=old)
    assert migrated.json("config", "show")["username"] == "admin"


def test_admin_manages_users(server: Server, cli: Cli, tmp_path: Path) -> None:
    created = cli.json("admin", "add-user", "carol", "--email", "carol@example.com")
    assert created["user"]["role"] == "USER" and created["password"]
    assert cli("admin", "add-user", "dave", "--password", "x").returncode == 2  # no such option

    listed = cli.json("admin", "ls-users")
    shown = cli.json("admin", "get-user", "carol")
    updated = cli.json("admin", "update-user", "carol", "--role", "admin")
    reset = cli.json("admin", "reset-password", "carol")

    assert {u["name"] for u in listed} == {"admin", "carol"}
    assert shown["email"] == "carol@example.com"
    assert updated["role"] == "ADMIN"
    carol = Cli(server=server, config=tmp_path / "carol.toml")
    wrong = carol("login", server.url, "-u", "carol", "--password-stdin", input="nope-nope\n")
    assert wrong.returncode == 77
    carol.ok("login", server.url, "-u", "carol", "--password-stdin", input=reset["password"] + "\n")
    cli.ok("admin", "rm-user", "-y", "carol")
    assert cli("admin", "get-user", "carol").returncode == 66
    assert carol("ps").returncode == 77


def test_ctrl_c_at_a_prompt_exits_130(server: Server, cli: Cli) -> None:
    env = {**cli.server.env, "GLIA_CONFIG": str(cli.config)}
    process = subprocess.Popen(
        [GLIA, "login", server.url],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    seen = ""
    while "Username" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1)
        if ready:
            seen += os.read(process.stdout.fileno(), 100).decode()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)

    assert process.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err


def test_a_wait_shows_a_spinner_on_a_terminal_only(cli: Cli) -> None:
    # The job ignores SIGTERM: kill waits out the grace period (GLIA_KILL_GRACE_S, 3 s).
    script = "trap '' TERM; echo ready; sleep 300"
    job_ids = [cli.ok("run", "--detach", "--", "sh", "-c", script).strip() for _ in range(2)]
    for job_id in job_ids:
        cli.wait_status(job_id, "running")
    time.sleep(0.5)

    piped = cli("kill", job_ids[0])
    terminal = _on_a_terminal(cli, "kill", job_ids[1])

    assert piped.returncode == 0 and piped.stderr == ""
    assert f"Stopping {job_ids[1]}" in terminal


def _on_a_terminal(cli: Cli, *args: str) -> str:
    """What the command wrote to its stderr, a terminal."""
    main, child = pty.openpty()
    env = {**cli.server.env, "GLIA_CONFIG": str(cli.config), "TERM": "xterm"}
    process = subprocess.Popen(
        [GLIA, *args], env=env, stdout=subprocess.DEVNULL, stderr=child, stdin=subprocess.DEVNULL
    )
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    process.wait(timeout=60)
    os.close(main)
    return seen.decode(errors="replace")


def test_completion_offers_jobs_from_the_server(cli: Cli) -> None:
    job_id = cli.ok("run", "--detach", "--name", "train", "--", "sleep", "300").strip()
    env = {
        **cli.server.env,
        "GLIA_CONFIG": str(cli.config),
        "_GLIA_COMPLETE": "complete_bash",
        "COMP_WORDS": "glia logs ",
        "COMP_CWORD": "2",
    }
    offered = subprocess.run([GLIA], env=env, capture_output=True, text=True, timeout=30)
    options = subprocess.run(
        [GLIA], env={**env, "COMP_WORDS": "glia ps --wi", "COMP_CWORD": "2"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    down = subprocess.run(
        [GLIA],
        env={**env, "GLIA_CONFIG": str(cli.server.root / "nowhere.toml")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    # Typer detects the shell from the process tree (its --show-completion takes no value):
    # run it from bash, as a user would, whatever started the tests.
    script = subprocess.run(
        ["bash", "-c", f"{shlex.quote(GLIA)} --show-completion"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert {job_id, "train"} <= set(offered.stdout.split())
    assert options.stdout.split() == ["--wide"]
    assert down.returncode == 0 and down.stderr == ""  # silent when there is no server
    assert "_GLIA_COMPLETE" in script.stdout
    cli.ok("kill", job_id)


def test_up_on_a_busy_port_fails_at_once_and_changes_nothing(tmp_path: Path) -> None:
    server = Server(root=tmp_path)
    (tmp_path / "home").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", server.port))
        taken.listen()
        result = subprocess.run(
            [GLIA, "up", "--no-web", "--port", str(server.port)],
            env=server.env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert result.returncode == 1
    assert f"port {server.port} on 127.0.0.1 is in use" in result.stderr
    assert "password" not in result.stderr + result.stdout
    assert not (tmp_path / "home" / "config.toml").exists()
    assert not (tmp_path / "data" / "glia.db").exists()


def test_a_second_up_on_the_same_data_dir_and_a_restart(server: Server, cli: Cli) -> None:
    other = Server(root=server.root)  # same data dir, another port
    second = subprocess.run(
        [GLIA, "up", "--no-web", "--port", str(other.port)],
        env=other.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert "Glia is already running on the data dir" in second.stderr
    assert f"pid {server.process.pid if server.process else '?'}" in second.stderr
    assert "Traceback" not in second.stderr

    config = cli.config.read_text()
    server.stop()
    server.start()
    log = server.log_path.read_text()
    assert f"Glia is up at {server.url}" in log
    assert f"glia login {server.url} -u admin" in log
    assert "shown once" not in log and cli.config.read_text() == config


def test_presets_are_sized_for_the_host(cli: Cli) -> None:
    presets = {p["name"]: p["resources"] for p in cli.json("config", "show")["presets"]}
    if (os.cpu_count() or 1) >= 2:
        assert presets["cpu-medium"]["cpu"] < presets["cpu-large"]["cpu"]
    for resources in presets.values():
        assert resources["memoryMb"] % 256 == 0


def test_readme_using_it_runs_as_written(server: Server, cli: Cli) -> None:
    """The ```sh block under "## Using it", command by command, in a directory of its own;
    the server's URL stands for 127.0.0.1:8080 and the login's password comes on stdin."""
    text = README.read_text().split("## Using it", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    # 0700: a job under its user's uid could not read it here; it gets the synced copy.
    workdir = Path(tempfile.mkdtemp(prefix="glia-readme-"))
    env = {**server.env, "GLIA_CONFIG": str(cli.config)}
    password = ""
    outputs = []
    for command in commands:
        command = command.replace("http://127.0.0.1:8080", server.url)
        stdin = None
        if command.startswith("glia login"):
            command = command.split("#")[0] + " --password-stdin"
            stdin = password + "\n"
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=workdir,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
        found = re.search(r"Password\s+(\S+)", result.stdout)
        if command.startswith("glia admin add-user") and found:
            password = found.group(1)

    joined = "\n".join(outputs)
    assert "hello" in outputs[1]
    assert "epochs: 3" in joined  # train.py travelled with the job
    assert "synced" in joined and "1 of 1 files sent" in joined, joined
    assert "alice@127.0.0.1" in outputs[-1] and "admin@127.0.0.1" in outputs[-1]
    subprocess.run(["rm", "-rf", str(workdir)], check=False)
