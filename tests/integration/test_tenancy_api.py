"""Orgs, projects, roles, sharing and service accounts through the GraphQL API, on SQLite and
on PostgreSQL with Redis: what each member may do, and what a stranger learns (nothing)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cluster_gateway.runtimes.fake import FakeRuntime
from tests.conftest import REDIS_URL
from tests.factories import Api, GraphQLErrors, make_settings, running_api


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    extra: dict[str, Any] = {}
    if database_url.startswith("postgresql"):
        extra = {"redis_url": REDIS_URL, "redis_prefix": f"glia-test-{uuid.uuid4().hex}:"}
    async with running_api(make_settings(tmp_path, database_url, **extra), FakeRuntime()) as api:
        yield api


async def error_code(api: Api, query: str, variables: dict[str, Any], token: str) -> str | None:
    with pytest.raises(GraphQLErrors) as caught:
        await api.gql(query, variables, token=token)
    return caught.value.code


CREATE_ORG = (
    "mutation($name: String!) { createOrg(input: {name: $name}) { org { name clusters } } }"
)
CREATE_PROJECT = """mutation($org: String!, $name: String!) {
  createProject(input: {org: $org, name: $name}) { project { org name role defaultRole } } }"""
SET_PROJECT_MEMBER = """mutation($org: String!, $project: String!, $user: String!,
  $role: ProjectRole) {
  setProjectMember(input: {org: $org, project: $project, user: $user, role: $role}) {
    member { user role } } }"""
SET_ORG_MEMBER = """mutation($org: String!, $user: String!, $role: OrgRole!) {
  setOrgMember(input: {org: $org, user: $user, role: $role}) { member { user role } } }"""
PROJECTS = "{ projects { totalCount edges { node { org name role } } } }"
JOBS = "{ jobs { totalCount edges { node { id uri org project } } } }"
GRANT = """mutation($uri: String!, $subject: String!, $action: String!) {
  grant(input: {uri: $uri, subject: $subject, action: $action}) {
    grant { subject uri action } warnings } }"""
REVOKE = """mutation($uri: String!, $subject: String!) {
  revoke(input: {uri: $uri, subject: $subject}) { grant { subject uri action } } }"""
JOB = "query($id: ID!) { job(id: $id) { id status } }"


async def test_a_new_user_works_in_a_personal_org_and_project(api: Api) -> None:
    alice = await api.user("alice")
    data = await api.gql("{ orgs { edges { node { name personal role clusters } } } }", token=alice)
    assert [edge["node"] for edge in data["orgs"]["edges"]] == [
        {"name": "alice", "personal": True, "role": "ADMIN", "clusters": ["default"]}
    ]
    projects = (await api.gql(PROJECTS, token=alice))["projects"]
    assert [edge["node"] for edge in projects["edges"]] == [
        {"org": "alice", "name": "alice", "role": "ADMIN"}
    ]
    job = await api.submit_job(alice)
    assert job["uri"] == f"job://default/alice/alice/{job['id']}"
    # An org cannot take a user's name, nor a user an org's.
    root = await api.user("root", role="admin")
    assert await error_code(api, CREATE_ORG, {"name": "alice"}, root) == "CONFLICT"


async def test_project_members_see_and_run_what_their_role_allows(api: Api) -> None:
    root = await api.user("root", role="admin")
    owner, reader, writer, stranger = [
        await api.user(name) for name in ("owner", "reader", "writer", "stranger")
    ]
    created = await api.gql(CREATE_ORG, {"name": "acme"}, token=root)
    assert created["createOrg"]["org"] == {"name": "acme", "clusters": ["default"]}
    await api.gql(SET_ORG_MEMBER, {"org": "acme", "user": "owner", "role": "MANAGER"}, token=root)
    project = await api.gql(CREATE_PROJECT, {"org": "acme", "name": "vision"}, token=owner)
    assert project["createProject"]["project"]["role"] == "ADMIN"
    place = {"org": "acme", "project": "vision"}
    await api.gql(SET_PROJECT_MEMBER, {**place, "user": "reader", "role": "READER"}, token=owner)
    added = await api.gql(SET_PROJECT_MEMBER, {**place, "user": "writer"}, token=owner)
    assert added["setProjectMember"]["member"] == {"user": "writer", "role": "writer"}

    job = await api.submit_job(writer, org="acme", project="vision")
    assert job["uri"] == f"job://default/acme/vision/{job['id']}"
    # The reader sees it, and may not run there; the stranger learns nothing of either.
    assert (await api.gql(JOB, {"id": job["id"]}, token=reader))["job"]["id"] == job["id"]
    run_as_reader = {"input": {"command": ["true"], **place}}
    submit = "mutation($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }"
    assert await error_code(api, submit, run_as_reader, reader) == "FORBIDDEN"
    assert await error_code(api, submit, run_as_reader, stranger) == "NOT_FOUND"
    assert await error_code(api, JOB, {"id": job["id"]}, stranger) == "NOT_FOUND"
    assert (await api.gql(JOBS, token=stranger))["jobs"]["totalCount"] == 0
    assert (await api.gql(PROJECTS, token=stranger))["projects"]["totalCount"] == 1  # own
    members = "query($o: String!, $p: String!) { projectMembers(org: $o, project: $p) { user } }"
    assert await error_code(api, members, {"o": "acme", "p": "vision"}, stranger) == "NOT_FOUND"
    # A reader cannot add members; a writer removed loses the project at once.
    assert (
        await error_code(api, SET_PROJECT_MEMBER, {**place, "user": "stranger"}, reader)
        == "FORBIDDEN"
    )
    remove = """mutation($o: String!, $p: String!, $u: String!) {
      removeProjectMember(input: {org: $o, project: $p, user: $u}) { member { role } } }"""
    await api.gql(remove, {"o": "acme", "p": "vision", "u": "writer"}, token=owner)
    assert await error_code(api, submit, {"input": {"command": ["true"], **place}}, writer) == (
        "NOT_FOUND"
    )
    # A project with an unfinished job is not deleted.
    delete = """mutation($o: String!, $n: String!) {
      deleteProject(input: {org: $o, name: $n}) { project { name } } }"""
    assert await error_code(api, delete, {"o": "acme", "n": "vision"}, owner) == "CONFLICT"


async def test_sharing_a_job_and_taking_it_back(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    job = await api.submit_job(alice)
    assert await error_code(api, JOB, {"id": job["id"]}, bob) == "NOT_FOUND"
    shared = await api.gql(
        GRANT, {"uri": job["uri"], "subject": "bob", "action": "read"}, token=alice
    )
    assert shared["grant"] == {
        "grant": {"subject": "user:bob", "uri": job["uri"], "action": "read"},
        "warnings": [],
    }
    assert (await api.gql(JOB, {"id": job["id"]}, token=bob))["job"]["id"] == job["id"]
    listed = await api.gql("{ shared { subject uri action } }", token=alice)
    assert {"subject": "user:bob", "uri": job["uri"], "action": "read"} in listed["shared"]
    # Bob may read, not share onwards; a grant on nothing warns; an unknown user is NOT_FOUND.
    variables = {"uri": job["uri"], "subject": "alice", "action": "read"}
    assert await error_code(api, GRANT, variables, bob) == "FORBIDDEN"
    missing = "job://default/alice/alice/job-00000000-0000-0000-0000-000000000000"
    warned = await api.gql(GRANT, {"uri": missing, "subject": "bob", "action": "read"}, token=alice)
    assert "names nothing" in warned["grant"]["warnings"][0]
    variables = {"uri": job["uri"], "subject": "nobody", "action": "read"}
    assert await error_code(api, GRANT, variables, alice) == "NOT_FOUND"
    await api.gql(REVOKE, {"uri": job["uri"], "subject": "bob"}, token=alice)
    assert await error_code(api, JOB, {"id": job["id"]}, bob) == "NOT_FOUND"


async def test_roles_carry_grants_to_their_members(api: Api) -> None:
    alice, bob, carol = [await api.user(name) for name in ("alice", "bob", "carol")]
    create = 'mutation { createRole(input: {name: "team"}) { role { name uri builtIn } } }'
    role = (await api.gql(create, token=alice))["createRole"]["role"]
    assert role == {"name": "user/alice/team", "uri": "role://user/alice/team", "builtIn": False}
    job = await api.submit_job(alice)
    await api.gql(GRANT, {"uri": job["uri"], "subject": role["uri"], "action": "read"}, token=alice)
    await api.gql(GRANT, {"uri": role["uri"], "subject": "bob", "action": "read"}, token=alice)
    assert (await api.gql(JOB, {"id": job["id"]}, token=bob))["job"]["id"] == job["id"]
    held = [r["name"] for r in (await api.gql("{ roles { name } }", token=bob))["roles"]]
    assert "user/alice/team" in held
    assert {"org/bob/admin", "project/bob/bob/admin", "cluster/default/user"} <= set(held)
    members = 'query { roleMembers(role: "role://user/alice/team") { subject action } }'
    listed = (await api.gql(members, token=alice))["roleMembers"]
    assert {"subject": "user:bob", "action": "read"} in listed
    assert await error_code(api, members, {}, bob) == "FORBIDDEN"  # holds it, may not list
    assert await error_code(api, members, {}, carol) == "NOT_FOUND"
    # Bob holds the role but does not manage it: he cannot add carol.
    variables = {"uri": role["uri"], "subject": "carol", "action": "read"}
    assert await error_code(api, GRANT, variables, bob) == "FORBIDDEN"
    delete = 'mutation { deleteRole(input: {name: "team"}) { role { name } } }'
    await api.gql(delete, token=alice)
    assert await error_code(api, JOB, {"id": job["id"]}, bob) == "NOT_FOUND"
    assert await error_code(api, JOB, {"id": job["id"]}, carol) == "NOT_FOUND"


async def test_service_accounts_act_with_what_they_were_given_until_deleted(api: Api) -> None:
    alice = await api.user("alice")
    create = """mutation { createServiceAccount(input: {name: "ci", project: "alice"}) {
      serviceAccount { name owner org project } token } }"""
    made = (await api.gql(create, token=alice))["createServiceAccount"]
    assert made["serviceAccount"] == {
        "name": "alice/ci",
        "owner": "alice",
        "org": "alice",
        "project": "alice",
    }
    token = made["token"]
    job = await api.submit_job(token)
    assert job["uri"] == f"job://default/alice/alice/{job['id']}"
    me = await api.gql("{ me { name kind } }", token=token)
    assert me["me"] == {"name": "alice/ci", "kind": "SERVICE_ACCOUNT"}
    listed = await api.gql("{ serviceAccounts { name } }", token=alice)
    assert listed["serviceAccounts"] == [{"name": "alice/ci"}]
    assert await error_code(api, create.replace('alice"', 'alice"'), {}, token) == "FORBIDDEN"
    delete = 'mutation { deleteServiceAccount(input: {name: "ci"}) { serviceAccount { name } } }'
    await api.gql(delete, token=alice)
    assert await error_code(api, "{ me { name } }", {}, token) == "UNAUTHENTICATED"
    # Another user learns nothing of alice's accounts.
    bob = await api.user("bob")
    get = '{ serviceAccount(name: "alice/ci") { name } }'
    assert await error_code(api, get, {}, bob) == "NOT_FOUND"
