"""Exposed jobs' host names, the sign-in's return paths, `glia job generate-run-command`, and
the context a job run with --pass-config finds."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.jobs import run_command
from control_plane.services.ingress import IngressService, normalize_host
from glia.auth import User, UserKind, UserRole
from glia.clusters import Resources
from glia.jobs import Job, JobStatus, job_host_label
from sdk.config import JOB_CONTEXT, load_config
from server.routes.ingress import safe_return_path

JOB_ID = "job-0b6f2c4e-8d1a-4e57-9a43-3c2a1f0e9b7d"


def test_host_labels() -> None:
    assert job_host_label(JOB_ID, None, "alice") == JOB_ID
    assert job_host_label(JOB_ID, "web", "alice") == "web--alice"
    # A service account's '/' cannot be in a host name.
    assert job_host_label(JOB_ID, "web", "alice/ci") == "web--alice--ci"
    # Longer than DNS allows in one label: the id.
    assert job_host_label(JOB_ID, "a" * 40, "b" * 30) == JOB_ID


def test_the_jobs_domain_gives_the_label_and_nothing_else_does() -> None:
    ingress = IngressService(db=None, acl=None, auth=None, jobs_domain="jobs.localhost")  # type: ignore[arg-type]
    assert ingress.host_label("web--alice.jobs.localhost:8080") == "web--alice"
    assert ingress.host_label("WEB--Alice.Jobs.Localhost") == "web--alice"
    assert ingress.host_label("jobs.localhost") is None
    assert ingress.host_label("a.b.jobs.localhost") is None
    assert ingress.host_label("web--alice.jobs.localhost.evil.example") is None
    assert ingress.host_label("127.0.0.1:8080") is None
    assert normalize_host("[::1]:8080") == "[::1]"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/lab?x=1", "/lab?x=1"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("lab", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
    ],
)
def test_the_sign_in_returns_only_to_a_path_of_the_same_host(
    given: str | None, expected: str
) -> None:
    assert safe_return_path(given) == expected


def _job(**fields: object) -> Job:
    values: dict[str, object] = {
        "id": JOB_ID,
        "uri": f"job://default/alice/alice/{JOB_ID}",
        "owner": User(
            id="u1",
            name="alice",
            role=UserRole.USER,
            kind=UserKind.USER,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        "cluster_name": "default",
        "org": "alice",
        "project": "alice",
        "preset": "cpu-small",
        "resources": Resources(cpu=1, memory_mb=1024),
        "command": ("python", "-c", "print('hello world')"),
        "status": JobStatus.RUNNING,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    values.update(fields)
    return Job.model_validate(values)


def test_generate_run_command_quotes_for_the_shell() -> None:
    job = _job(
        name="web",
        env={"GREETING": "hello world; rm -rf /", "SECRET": None},
        tags=("a", "b=c"),
        description="it's",
        life_span_s=5400.0,
        http_port=8888,
        http_auth=False,
        pass_config=True,
    )
    command, hidden = run_command(job)
    assert hidden == ["SECRET"]
    assert shlex.split(command) == [
        "glia", "run", "--name", "web", "--cluster", "default", "--org", "alice",
        "--project", "alice", "--preset", "cpu-small", "-e", "GREETING=hello world; rm -rf /",
        "--no-sync", "--tag", "a", "--tag", "b=c", "--description", "it's", "--life-span", "1h30m",
        "--http-port", "8888", "--no-http-auth", "--pass-config",
        "--", "python", "-c", "print('hello world')",
    ]  # fmt: skip


def test_generate_run_command_names_the_working_directory_the_job_had() -> None:
    """A plain `glia run` syncs where it is typed: the command names the job's own
    directory instead (its synced copy, or a host path), or --no-sync for a scratch one."""
    synced = "storage://default/alice/alice/.glia/workdirs/src-0a1b2c3d"
    args = shlex.split(run_command(_job(storage_workdir=synced))[0])
    assert args[args.index("--workdir") + 1] == synced and "--no-sync" not in args
    args = shlex.split(run_command(_job(working_dir="/srv/code"))[0])
    assert args[args.index("--workdir") + 1] == "/srv/code" and "--no-sync" not in args
    assert "--workdir" not in shlex.split(run_command(_job())[0])


def test_a_job_with_pass_config_uses_its_token_whatever_the_file_says(tmp_path: Path) -> None:
    env = {
        "GLIA_CONFIG": str(tmp_path / "none.toml"),
        "GLIA_API_URL": "http://127.0.0.1:8080",
        "GLIA_TOKEN": "t0ken",
        "GLIA_JOB_OWNER": "alice",
    }
    config = load_config(env=env)
    assert config.current_context == JOB_CONTEXT
    assert (config.current.server, config.current.token, config.current.username) == (
        "http://127.0.0.1:8080",
        "t0ken",
        "alice",
    )
    assert "t0ken" not in repr(config)
    assert load_config(env={"GLIA_CONFIG": env["GLIA_CONFIG"]}).current_context is None
