"""The SDK's tenancy resources (orgs, projects, cluster users, sharing, service accounts)
against the real server, as the CLI and the web UI use them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sdk import (
    BadInput,
    Forbidden,
    GliaClient,
    NotFound,
    OrgRole,
    ProjectRole,
    Unauthenticated,
)
from tests.factories import ServedApi, make_settings, serving_api


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServedApi]:
    with serving_api(make_settings(tmp_path)) as server:
        yield server


async def test_orgs_projects_and_members(server: ServedApi) -> None:
    root = server.user("root", role="admin")
    alice = server.user("alice")
    server.user("bob")
    async with GliaClient(server.url, root) as admin, GliaClient(server.url, alice) as client:
        assert [org.name for org in await client.orgs.list()] == ["alice"]
        assert (await client.orgs.get("alice")).personal

        acme = await admin.orgs.create("acme")
        assert acme.name == "acme" and acme.clusters == ("default",)
        member = await admin.orgs.set_member("acme", "alice", "manager")
        assert (member.user, member.role) == ("alice", "manager")
        assert {m.user for m in await client.orgs.members("acme")} >= {"alice"}

        vision = await client.projects.create("acme", "vision", default_role=ProjectRole.READER)
        assert (vision.org, vision.name, vision.default_role) == ("acme", "vision", "reader")
        assert (await client.projects.set_member("acme", "vision", "bob")).role == "reader"
        updated = await client.projects.update("acme", "vision", default_role="writer")
        assert updated.default_role is ProjectRole.WRITER
        assert {p.name for p in await client.projects.list("acme")} == {"vision"}
        assert (await client.projects.get("acme", "vision")).name == "vision"
        members = {m.user: m.role for m in await client.projects.members("acme", "vision")}
        assert members["bob"] == "reader"
        await client.projects.remove_member("acme", "vision", "bob")
        await client.projects.delete("acme", "vision")
        with pytest.raises(NotFound):
            await client.projects.get("acme", "vision")

        with pytest.raises(BadInput, match="unknown role"):
            await admin.orgs.set_member("acme", "bob", "owner")
        with pytest.raises(Forbidden):
            await client.orgs.create("other")
        assert (await admin.orgs.set_member("acme", "bob", OrgRole.USER)).role == "user"


async def test_org_clusters_removing_members_and_deleting(server: ServedApi) -> None:
    root = server.user("root", role="admin")
    alice = server.user("alice")
    async with GliaClient(server.url, root) as admin, GliaClient(server.url, alice) as client:
        await admin.orgs.create("acme")
        await admin.orgs.set_member("acme", "alice")
        assert (await admin.orgs.remove_cluster("acme", "default")).clusters == ()
        assert (await admin.orgs.add_cluster("acme", "default")).clusters == ("default",)
        await admin.orgs.remove_member("acme", "alice")
        with pytest.raises(NotFound):
            await client.orgs.get("acme")
        await admin.orgs.delete("acme")
        assert "acme" not in {org.name for org in await admin.orgs.list()}


async def test_cluster_users(server: ServedApi) -> None:
    root = server.user("root", role="admin")
    server.user("bob")
    async with GliaClient(server.url, root) as admin:
        assert (await admin.clusters.set_user("default", "bob", "manager")).role == "manager"
        assert ("bob", "manager") in {
            (m.user, m.role) for m in await admin.clusters.users("default")
        }
        await admin.clusters.remove_user("default", "bob")
        assert "bob" not in {m.user for m in await admin.clusters.users("default")}


async def test_jobs_in_projects_sharing_and_roles(server: ServedApi) -> None:
    alice = server.user("alice")
    bob = server.user("bob")
    async with GliaClient(server.url, alice) as client, GliaClient(server.url, bob) as other:
        job = await client.jobs.submit(["true"], share=["bob"])
        assert (job.org, job.project) == ("alice", "alice")
        assert (await other.jobs.get(job.id)).id == job.id
        page = await client.jobs.list(org="alice", project="alice")
        assert [j.id for j in page.items] == [job.id]
        assert (await client.jobs.list(project="elsewhere")).items == ()

        uri = f"job://default/alice/alice/{job.id}"
        assert any(g.uri == uri and g.subject == "user:bob" for g in await client.acl.shared())
        assert any(g.uri == uri for g in await other.acl.permissions())
        revoked = await client.acl.revoke(uri, "bob")
        assert revoked.action == "read"
        with pytest.raises(NotFound):
            await other.jobs.get(job.id)

        grant, warnings = await client.acl.grant(
            "job://default/alice/alice/job-none", "bob", "read"
        )
        assert grant.subject == "user:bob" and warnings
        with pytest.raises(BadInput):
            await client.acl.grant(uri, "bob", "own")

        role = await client.acl.create_role("team")
        assert role.uri == "role://user/alice/team" and not role.built_in
        await client.acl.grant(uri, role.uri, "read")
        await client.acl.grant(role.uri, "bob", "read")
        assert role.uri in {r.uri for r in await other.acl.roles()}
        assert (await other.jobs.get(job.id)).id == job.id
        await client.acl.delete_role("team")
        with pytest.raises(NotFound):
            await other.jobs.get(job.id)


async def test_service_accounts(server: ServedApi) -> None:
    alice = server.user("alice")
    async with GliaClient(server.url, alice) as client:
        account, token = await client.service_accounts.create("ci", project="alice")
        assert (account.name, account.owner, account.project) == ("alice/ci", "alice", "alice")
        assert [a.name for a in await client.service_accounts.list()] == ["alice/ci"]
        assert (await client.service_accounts.get("ci")).name == "alice/ci"
        async with GliaClient(server.url, token) as robot:
            job = await robot.jobs.submit(["true"])
            assert (job.org, job.project) == ("alice", "alice")
            await client.service_accounts.delete("ci")
            with pytest.raises(Unauthenticated):
                await robot.jobs.list()
        with pytest.raises(NotFound):
            await client.service_accounts.get("ci")
