"""The SDK and the CLI against the real server.

The server runs in a uvicorn thread of this process (real HTTP and graphql-transport-ws, real
local jobs); the CLI runs in-process through typer's CliRunner with its config in tmp_path.
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli.main import app
from sdk import (
    BadInput,
    CliConfig,
    ConnectionFailed,
    GliaClient,
    JobStatus,
    LogStream,
    NotFound,
    Unauthenticated,
    documents,
    load_config,
    save_config,
)
from tests.factories import ServedApi, make_settings, serving_api
from tests.polling import eventually

Glia = Callable[..., Result]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServedApi]:
    with serving_api(make_settings(tmp_path)) as server:
        yield server


@pytest.fixture
def alice(server: ServedApi) -> str:
    """A token of the user alice, whose password is 'wonderland'."""
    return server.user("alice", password="wonderland")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "glia" / "config.toml"


def _runner(config_file: Path) -> Glia:
    runner = CliRunner()

    def glia(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), env={"GLIA_CONFIG": str(config_file)}, input=input)

    return glia


@pytest.fixture
def glia(
    server: ServedApi,
    alice: str,
    config_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Glia:
    """The CLI, logged in as alice, run from an empty directory (which `glia run` ships)."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    save_config(CliConfig.single(server=server.url, token=alice, username="alice"), config_file)
    return _runner(config_file)


def _submit(glia: Glia, script: str = "true") -> str:
    result = glia("run", "--detach", "--", "sh", "-c", script)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _wait_status(glia: Glia, job_id: str, wanted: Callable[[JobStatus], bool]) -> dict[str, Any]:
    """The job as ``glia status -o json`` shows it, once its status is one ``wanted``."""

    async def check() -> dict[str, Any] | None:
        shown = await asyncio.to_thread(glia, "status", job_id, "-o", "json")
        job: dict[str, Any] = json.loads(shown.stdout)
        return job if wanted(JobStatus(job["status"])) else None

    found: dict[str, Any] = asyncio.run(eventually(check))
    return found


def _wait_finished(glia: Glia, job_id: str) -> dict[str, Any]:
    return _wait_status(glia, job_id, lambda status: status.is_finished)


def test_login_stores_the_token_in_a_private_file(
    server: ServedApi, alice: str, config_file: Path
) -> None:
    glia = _runner(config_file)

    result = glia("login", server.url, "-u", "alice", "--password-stdin", input="wonderland\n")

    assert result.exit_code == 0, result.output
    config = load_config(config_file)
    assert (config.current.server, config.current.username) == (server.url, "alice")
    assert config.current.token and config.current.token != alice  # a token of its own
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    shown = json.loads(glia("config", "show", "-o", "json").stdout)
    assert shown["username"] == "alice" and shown["cluster"] == "default"
    assert [p["name"] for p in shown["presets"]] == ["cpu-small", "cpu-medium", "cpu-large"]
    assert shown["presets"][0] == {
        "name": "cpu-small",
        "resources": {
            "cpu": 0.5,
            "memoryMb": 1024,
            "gpu": 0,
            "pidsLimit": 1024,
            "gpuModel": None,
            "shmMb": None,
        },
        "creditsPerHour": 0.0,
        "preemptible": False,
        "schedulerEnabled": True,
        "available": shown["presets"][0]["available"],  # what fits on this host now
    }
    assert shown["presets"][0]["available"] >= 1

    assert glia("logout").exit_code == 0
    assert load_config(config_file).current.token is None
    save_config(config, config_file)  # the old token is revoked on the server too
    assert glia("ps").exit_code == 77


async def _revoke(url: str, token: str) -> None:
    async with GliaClient(url, token) as client:
        await client.auth.logout()


def test_login_with_token_verifies_it(server: ServedApi, alice: str, config_file: Path) -> None:
    glia = _runner(config_file)
    assert glia("login", server.url, "--token", alice).exit_code == 0
    assert load_config(config_file).current.username == "alice"

    result = glia("login", server.url, "--token", "forged")
    still_valid = _runner(config_file)("ps")  # the failed login kept the saved token
    asyncio.run(_revoke(server.url, alice))
    revoked = _runner(config_file)("ps")

    assert result.exit_code == 77
    assert result.stderr == "error: invalid token\n"
    assert still_valid.exit_code == 0
    assert revoked.exit_code == 77
    assert revoked.stderr == "error: the token was revoked (run glia login)\n"


def test_run_streams_logs_and_exits_with_the_job_exit_code(glia: Glia) -> None:
    script = "echo 'epoch 1'; echo 'epoch 2'; echo 'warning: slow' >&2; exit 3"
    result = glia("run", "--", "sh", "-c", script)

    assert result.exit_code == 3, result.output
    assert result.stdout == "epoch 1\nepoch 2\n"
    job_id, warning, ending = result.stderr.splitlines()
    assert job_id.startswith("job-") and warning == "warning: slow"
    assert ending.startswith(f"{job_id}: failed") and "exit code 3" in ending
    job = json.loads(glia("status", job_id, "-o", "json").stdout)
    assert job["command"] == ["sh", "-c", script]
    assert [h["status"] for h in job["history"]] == ["PENDING", "RUNNING", "FAILED"]


def test_run_takes_env_file_then_e_and_rejects_bad_pairs(glia: Glia, tmp_path: Path) -> None:
    env_file = tmp_path / "job.env"
    env_file.write_text("# secrets\nA=from-file\n\nB=kept=with=equals\n")

    result = glia(
        "run", "--detach", "-o", "json", "--env-file", str(env_file), "-e", "A=from-flag",
        "--name", "train-1", "--tag", "x", "--tag", "y", "--life-span", "1h30m",
        "python", "-c", "1",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["env"] == {"A": "from-flag", "B": "kept=with=equals"}
    assert (job["name"], job["tags"], job["lifeSpanSeconds"]) == ("train-1", ["x", "y"], 5400.0)
    assert job["command"] == ["python", "-c", "1"]  # options after the command are the job's
    bad = glia("run", "-e", "NOEQUALS", "--", "true")
    assert bad.exit_code == 65
    assert bad.stderr.startswith("error: invalid environment variable 'NOEQUALS'")


def test_ps_lists_unfinished_by_default_and_all_as_json(glia: Glia) -> None:
    running = [_submit(glia, "sleep 30") for _ in range(2)]
    done = _submit(glia)
    _wait_finished(glia, done)

    default = json.loads(glia("ps", "-o", "json").stdout)
    everything = json.loads(glia("ps", "-a", "-o", "json").stdout)
    limited = json.loads(glia("ps", "-a", "-o", "json", "--limit", "2").stdout)
    finished = json.loads(glia("ps", "-s", "succeeded", "-o", "json").stdout)

    assert [j["id"] for j in default] == running[::-1]  # newest first
    assert [j["id"] for j in everything] == [done, *running[::-1]]
    assert len(limited) == 2
    assert [j["id"] for j in finished] == [done]
    table = glia("ps")
    assert table.exit_code == 0 and "STATUS" in table.stdout and running[0][:12] in table.stdout


def test_errors_map_to_exit_codes_with_one_line(glia: Glia, config_file: Path) -> None:
    missing = glia("status", "job-missing")
    assert missing.exit_code == 66 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: job 'job-missing' not found")

    verbose = glia("--verbose", "status", "job-missing")
    assert verbose.exit_code == 66 and "Traceback" in verbose.stderr

    save_config(CliConfig.single(server="http://127.0.0.1:9", token="t"), config_file)
    down = glia("ps")
    assert down.exit_code == 69
    assert down.stderr.startswith("error: cannot reach the Glia server at http://127.0.0.1:9")
    assert len(down.stderr.splitlines()) == 1


def test_kill_goes_on_after_a_missing_job(glia: Glia) -> None:
    first, second = _submit(glia, "sleep 30"), _submit(glia, "sleep 30")
    for job_id in (first, second):
        _wait_status(glia, job_id, lambda status: status is JobStatus.RUNNING)

    result = glia("kill", first, "no-such-job", second)

    assert result.exit_code == 66
    assert result.stdout.splitlines() == [f"{first} cancelled", f"{second} cancelled"]
    assert result.stderr == "no-such-job: error: job 'no-such-job' not found\n"


def test_logs_of_a_finished_job_and_status_table(glia: Glia) -> None:
    job_id = _submit(glia, "echo a; echo b")
    _wait_finished(glia, job_id)

    logs = glia("logs", job_id, "--timestamps")
    status = glia("status", job_id)

    assert logs.exit_code == 0
    assert [line.split(" ", 1)[1] for line in logs.stdout.splitlines()] == ["a", "b"]
    assert status.exit_code == 0 and "succeeded" in status.stdout and "Creating" in status.stdout


def test_admin_add_user_prints_the_generated_password_once(
    server: ServedApi, alice: str, config_file: Path
) -> None:
    save_config(
        CliConfig.single(server=server.url, token=server.user("root", role="admin")), config_file
    )
    glia = _runner(config_file)

    created = glia("admin", "add-user", "bob", "--email", "bob@example.com", "-o", "json")

    assert created.exit_code == 0, created.output
    password = json.loads(created.stdout)["password"]
    assert len(password) >= 16
    login = glia("login", server.url, "-u", "bob", "--password-stdin", input=password + "\n")
    assert login.exit_code == 0, login.output
    save_config(
        CliConfig.single(server=server.url, token=server.user("root2", role="admin")),
        config_file,
    )
    assert glia("admin", "add-user", "bob").exit_code == 65  # CONFLICT
    save_config(CliConfig.single(server=server.url, token=alice), config_file)
    assert glia("admin", "add-user", "carol").exit_code == 77  # FORBIDDEN


async def test_sdk_pages_subscriptions_and_errors(server: ServedApi, alice: str) -> None:
    async with GliaClient(server.url, None) as client:
        with pytest.raises(Unauthenticated):
            await client.auth.me()
        token, user = await client.auth.login("alice", "wonderland")
        assert user.name == "alice" and client.token == token
        jobs = [await client.jobs.submit(["echo", str(i)]) for i in range(5)]

        page = await client.jobs.list(first=2)
        every = [job.id async for job in client.jobs.iter_all(page_size=2)]
        statuses = [job.status async for job in client.jobs.watch_status(jobs[0].id)]

        assert (len(page.items), page.has_next_page, page.total_count) == (2, True, 5)
        assert every == [job.id for job in reversed(jobs)]
        assert statuses[-1] is JobStatus.SUCCEEDED
        with pytest.raises(NotFound, match="job 'nope' not found"):
            async for _ in client.jobs.logs("nope"):
                pass
    async with GliaClient("http://127.0.0.1:9", "t", timeout=5) as client:
        with pytest.raises(ConnectionFailed, match="127.0.0.1:9"):
            await client.jobs.get("x")


async def test_log_text_keeps_each_streams_run_apart_and_matches_the_lines(
    server: ServedApi, alice: str
) -> None:
    # Pauses between the streams: two pipes read in one wake-up have no order between them.
    script = "echo one; echo two; sleep 0.2; echo oops >&2; sleep 0.2; echo three"
    async with GliaClient(server.url, alice) as client:
        job = await client.jobs.submit(["sh", "-c", script])
        statuses = [update.status async for update in client.jobs.watch_status(job.id)]
        assert statuses[-1] is JobStatus.SUCCEEDED
        texts = [text async for text in client.jobs.log_text(job.id, follow=False)]
        lines = [line async for line in client.jobs.logs(job.id, follow=False)]

    assert [(text.stream, text.text) for text in texts] == [
        (LogStream.STDOUT, "one\ntwo\n"),
        (LogStream.STDERR, "oops\n"),
        (LogStream.STDOUT, "three\n"),
    ]
    assert "".join(text.text for text in texts) == "".join(f"{line.text}\n" for line in lines)


async def test_job_logs_go_on_from_an_offset_and_refuse_a_bad_start(
    server: ServedApi, alice: str
) -> None:
    async with GliaClient(server.url, alice) as client:
        job = await client.jobs.submit(["seq", "1", "3000"])
        statuses = [update.status async for update in client.jobs.watch_status(job.id)]
        assert statuses[-1] is JobStatus.SUCCEEDED
        texts = [text async for text in client.jobs.log_text(job.id, follow=False)]
        assert "".join(text.text for text in texts) == "".join(f"{i}\n" for i in range(1, 3001))
        assert texts[-1].offset == len("".join(f"{i}\n" for i in range(1, 3001)))
        middle = texts[len(texts) // 2]
        assert middle.offset is not None
        variables = {"id": job.id, "follow": False, "offset": middle.offset}
        rest = [
            data["jobLogs"]["text"]
            async for data in client.subscribe(documents.JOB_LOG_TEXT, variables)
        ]
        expected = "".join(f"{i}\n" for i in range(1, 3001)).encode()[middle.offset :]
        assert "".join(rest).encode() == expected
        tail = [line.text async for line in client.jobs.logs(job.id, follow=False, tail=2)]
        assert tail == ["2999", "3000"]
        start = {"id": job.id, "follow": False}
        for bad, said in (
            ({"offset": -1}, "negative"),
            ({"tail": -5}, "negative"),
            ({"offset": 3, "tail": 3}, "not both"),
        ):
            with pytest.raises(BadInput, match=said):
                async for _ in client.subscribe(documents.JOB_LOG_TEXT, {**start, **bad}):
                    pass
