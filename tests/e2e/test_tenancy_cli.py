"""Orgs, projects, sharing, roles and service accounts through the real `glia` binary
against a real `glia up`: what each user sees and may do, and the messages when they may not."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, Server

pytestmark = pytest.mark.e2e


def _user(server: Server, cli: Cli, tmp_path: Path, name: str) -> Cli:
    """A user made by the admin, logged in with a CLI config of their own."""
    password = f"{name}-password-1"
    cli.ok("admin", "add-user", name, "--password-stdin", input=password + "\n")
    user = Cli(server=server, config=tmp_path / f"{name}.toml")
    user.ok("login", server.url, "-u", name, "--password-stdin", input=password + "\n")
    return user


def _refused(result: object, code: int, *words: str) -> None:
    """A failure with ``code``, one clear line naming ``words``, and no traceback."""
    stderr = getattr(result, "stderr", "")
    assert getattr(result, "returncode", None) == code, (code, result)
    assert stderr.startswith("error: ") and "Traceback" not in stderr, stderr
    for word in words:
        assert word in stderr, (word, stderr)


def _submit(user: Cli, *args: str) -> str:
    return user.ok("run", "--detach", *args, "--", "sh", "-c", "echo from-$GLIA_JOB_ID").strip()


def test_switching_org_and_project_is_where_run_and_ps_work(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    alice = _user(server, cli, tmp_path, "alice")
    bob = _user(server, cli, tmp_path, "bob")
    cli.ok("admin", "create-org", "acme")
    cli.ok("admin", "add-org-user", "acme", "alice", "manager")
    project = alice.json("admin", "create-project", "acme", "vision")
    alice.ok("admin", "add-project-user", "acme", "vision", "bob", "reader")

    assert project["org"] == "acme" and project["defaultRole"] == "WRITER"
    assert {o["name"] for o in alice.json("admin", "ls-orgs")} == {"alice", "acme"}
    assert [p["name"] for p in alice.json("admin", "ls-projects", "acme")] == ["vision"]
    members = {
        m["user"]: m["role"] for m in alice.json("admin", "ls-project-users", "acme", "vision")
    }
    assert members["bob"] == "reader"
    assert {m["user"] for m in cli.json("admin", "ls-org-users", "acme")} >= {"alice", "bob"}

    shown = alice.json("config", "show")
    assert (shown["org"], shown["project"]) == ("alice", "alice")
    _refused(alice("config", "switch-org", "nope"), 66, "org 'nope' not found")
    alice.ok("config", "switch-org", "acme")  # its one project is chosen with it
    shown = alice.json("config", "show")
    assert (shown["org"], shown["project"]) == ("acme", "vision")
    _refused(alice("config", "switch-project", "nope"), 66, "nope")
    alice.ok("config", "switch-project", "acme/vision")
    assert "vision" in alice.ok("config", "show")

    in_vision = _submit(alice)
    personal = _submit(alice, "--org", "alice", "--project", "alice")
    job = alice.json("status", in_vision)
    assert (job["org"], job["project"]) == ("acme", "vision")
    assert job["uri"] == f"job://default/acme/vision/{in_vision}"
    assert alice.json("status", personal)["project"] == "alice"
    assert [j["id"] for j in alice.json("ps", "-a")] == [in_vision]
    assert {j["id"] for j in alice.json("ps", "-a", "--all-projects")} == {in_vision, personal}
    assert [j["id"] for j in alice.json("ps", "-a", "--project", "alice", "--org", "alice")] == [
        personal
    ]
    assert "acme/vision" in alice.ok("ps", "-a", "--all-projects")
    _refused(alice("ps", "--all-projects", "--project", "x"), 65, "--all-projects")

    # bob reads the project's jobs, and may not run any there
    assert [j["id"] for j in bob.json("ps", "-a", "--org", "acme", "--project", "vision")] == [
        in_vision
    ]
    _refused(bob("run", "--org", "acme", "--project", "vision", "--", "true"), 77, "acme/vision")
    _refused(bob("run", "--org", "nope", "--project", "x", "--", "true"), 66, "nope")
    _refused(cli("admin", "create-project", "nope", "x"), 66, "nope")
    _refused(bob("admin", "create-org", "bobs"), 77)

    alice.ok("admin", "rm-project-user", "acme", "vision", "bob")
    _refused(bob("status", in_vision), 66)
    alice.ok("kill", in_vision)
    alice.wait_status(in_vision, "succeeded", "failed", "cancelled")


def test_run_share_and_acl(server: Server, cli: Cli, tmp_path: Path) -> None:
    alice = _user(server, cli, tmp_path, "alice")
    bob = _user(server, cli, tmp_path, "bob")

    job_id = _submit(alice, "--share", "bob")
    alice.wait_status(job_id, "succeeded")
    uri = f"job://default/alice/alice/{job_id}"
    assert bob.json("status", job_id)["id"] == job_id
    assert f"from-{job_id}" in bob.ok("logs", job_id)
    shared = alice.json("acl", "ls", "--shared")
    assert {"subject": "user:bob", "uri": uri, "action": "read"} in shared
    assert any(g["uri"] == uri for g in bob.json("acl", "ls"))
    assert uri in alice.ok("acl", "ls", "--shared")

    revoked = alice.json("acl", "revoke", job_id, "bob")
    assert revoked["action"] == "read"
    _refused(bob("status", job_id), 66)
    _refused(alice("acl", "revoke", uri, "bob"), 66)

    alice.ok("share", job_id, "bob", "read")
    assert bob.json("status", job_id)["id"] == job_id
    alice.ok("acl", "revoke", uri, "bob")

    missing = alice("acl", "grant", "job://default/alice/alice/job-nothing", "bob", "read")
    assert missing.returncode == 0 and missing.stderr.startswith("warning: "), missing.stderr
    _refused(alice("acl", "grant", uri, "bob", "own"), 65, "own")
    _refused(bob("acl", "grant", uri, "bob", "manage"), 77)

    role = alice.json("acl", "add-role", "team")
    assert role["uri"] == "role://user/alice/team"
    alice.ok("acl", "grant", uri, "role://user/alice/team", "read")
    alice.ok("acl", "grant", "role://user/alice/team", "bob", "read")
    assert "role://user/alice/team" in {r["uri"] for r in bob.json("acl", "ls-roles")}
    assert "user/alice/team" in bob.ok("acl", "ls-roles")
    assert f"from-{job_id}" in bob.ok("logs", job_id)
    alice.ok("acl", "rm-role", "team")
    _refused(bob("status", job_id), 66)
    _refused(alice("acl", "rm-role", "team"), 66)


def test_service_accounts(server: Server, cli: Cli, tmp_path: Path) -> None:
    alice = _user(server, cli, tmp_path, "alice")

    shown = alice("service-account", "create", "ci", "--project", "alice")
    assert shown.returncode == 0, shown.stderr
    assert "shown only once" in shown.stderr
    token = shown.stdout.split("Token", 1)[1].split()[0]
    made = alice.json("service-account", "create", "nightly", "--project", "alice")
    assert made["serviceAccount"]["name"] == "alice/nightly" and made["token"]
    assert {a["name"] for a in alice.json("service-account", "ls")} == {"alice/ci", "alice/nightly"}
    assert alice.json("service-account", "get", "ci")["project"] == "alice"
    _refused(alice("service-account", "get", "nope"), 66)
    _refused(alice("service-account", "create", "x", "--role", "writer"), 65, "--project")

    robot = Cli(server=server, config=tmp_path / "robot.toml")
    robot.ok("login", server.url, "--token", token, "--name", "ci")
    job_id = robot.ok("run", "--detach", "--", "true").strip()
    assert robot.json("status", job_id)["project"] == "alice"
    assert job_id in {j["id"] for j in robot.json("ps", "-a")}
    assert job_id in {j["id"] for j in alice.json("ps", "-a")}

    alice.ok("service-account", "rm", "-y", "ci")
    _refused(robot("ps"), 77)
    _refused(alice("service-account", "get", "ci"), 66)


def test_cluster_users(cli: Cli, server: Server, tmp_path: Path) -> None:
    _user(server, cli, tmp_path, "bob")
    assert cli.json("admin", "add-cluster-user", "default", "bob", "manager")["role"] == "manager"
    users = cli.json("admin", "ls-cluster-users", "default")
    assert {"user": "bob", "role": "manager"} in users
    assert "bob" in cli.ok("admin", "ls-cluster-users", "default")
    cli.ok("admin", "rm-cluster-user", "default", "bob")
    assert "bob" not in {m["user"] for m in cli.json("admin", "ls-cluster-users", "default")}
    _refused(cli("admin", "add-cluster-user", "default", "bob", "owner"), 65, "owner")
    _refused(cli("admin", "ls-cluster-users", "nope"), 66)


def test_org_clusters_users_and_deletion(cli: Cli, server: Server, tmp_path: Path) -> None:
    _user(server, cli, tmp_path, "bob")
    cli.ok("admin", "create-org", "acme")
    cli.ok("admin", "add-org-user", "acme", "bob")
    cli.ok("admin", "rm-org-cluster", "acme", "default")
    assert cli.json("admin", "ls-orgs")[0]["clusters"] == []
    cli.ok("admin", "add-org-cluster", "acme", "default")
    cli.ok("admin", "rm-org-user", "acme", "bob")
    assert "bob" not in {m["user"] for m in cli.json("admin", "ls-org-users", "acme")}
    cli.ok("admin", "rm-org", "-y", "acme")
    assert "acme" not in {o["name"] for o in cli.json("admin", "ls-orgs")}


def test_readme_orgs_projects_and_sharing_runs_as_written(cli: Cli, server: Server) -> None:
    """The ```sh block under "### Orgs, projects and sharing", as the admin, command by
    command, with its users made first."""
    readme = Path(__file__).parents[2] / "README.md"
    text = readme.read_text().split("### Orgs, projects and sharing", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    for name in ("alice", "bob", "carol"):
        cli.ok("admin", "add-user", name)
    outputs = []
    for line in block.splitlines():
        args = shlex.split(line.split("  #")[0])
        assert args[0] == "glia", line
        outputs.append(cli.ok(*args[1:]))
    assert "acme/vision" in outputs[7]
    assert "user:alice" in outputs[9] and "user:carol" in outputs[9]
    assert cli.json("status", "eval")["project"] == "vision"
