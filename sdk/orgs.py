"""Orgs, their projects and members, and the users of clusters: ``client.orgs``,
``client.projects`` (and ``client.clusters.users`` in `sdk.client`)."""

from __future__ import annotations

import builtins
from typing import TypeVar

from glia.errors import BadInput
from glia.model import DescribedEnum, parse_input
from glia.tenancy import Member, NewOrg, NewProject, Org, OrgRole, Project, ProjectRole
from sdk import documents
from sdk.resource import Resource

E = TypeVar("E", bound=DescribedEnum)


def role_name(kind: type[E], role: E | str, field: str = "role") -> str:
    """A role as GraphQL sends it (``"writer"`` -> ``"WRITER"``); `BadInput` for one that
    ``kind`` does not have, naming the roles it has."""
    try:
        return kind(role).name
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise BadInput(
            f"unknown role {role!r}: expected one of {known}", fields={field: "not a role"}
        ) from None


class OrgsResource(Resource):
    async def list(self) -> builtins.list[Org]:
        """The orgs the caller belongs to (every org, for platform admins), by name."""
        return await self._all_pages(documents.ORGS, "orgs", Org)

    async def get(self, name: str) -> Org:
        """An org; `NotFound` unless the caller belongs to it."""
        data = await self._client.execute(documents.ORG, {"name": name})
        return Org.model_validate(data["org"])

    async def members(self, org: str) -> builtins.list[Member]:
        """An org's members and their roles."""
        data = await self._client.execute(documents.ORG_MEMBERS, {"org": org})
        return [Member.model_validate(member) for member in data["orgMembers"]]

    async def create(self, name: str, clusters: builtins.list[str] | None = None) -> Org:
        """Create an org (platform admins); with no clusters, it may use the default one."""
        new = parse_input(NewOrg, {"name": name, "clusters": tuple(clusters or ())})
        data = await self._client.execute(documents.CREATE_ORG, {"input": new.to_wire()})
        return Org.model_validate(data["createOrg"]["org"])

    async def delete(self, name: str) -> Org:
        """Delete an org that has no projects left (platform admins)."""
        data = await self._client.execute(documents.DELETE_ORG, {"input": {"name": name}})
        return Org.model_validate(data["deleteOrg"]["org"])

    async def add_cluster(self, org: str, cluster: str) -> Org:
        """Let an org's members run on a cluster (platform admins)."""
        variables = {"input": {"org": org, "cluster": cluster}}
        data = await self._client.execute(documents.ADD_ORG_CLUSTER, variables)
        return Org.model_validate(data["addOrgCluster"]["org"])

    async def remove_cluster(self, org: str, cluster: str) -> Org:
        """Stop an org's members running on a cluster (platform admins)."""
        variables = {"input": {"org": org, "cluster": cluster}}
        data = await self._client.execute(documents.REMOVE_ORG_CLUSTER, variables)
        return Org.model_validate(data["removeOrgCluster"]["org"])

    async def set_member(self, org: str, user: str, role: OrgRole | str = OrgRole.USER) -> Member:
        """Give a user a role in an org (admin, manager or user), adding them if not in it."""
        variables = {"input": {"org": org, "user": user, "role": role_name(OrgRole, role)}}
        data = await self._client.execute(documents.SET_ORG_MEMBER, variables)
        return Member.model_validate(data["setOrgMember"]["member"])

    async def remove_member(self, org: str, user: str) -> Member:
        """Take a user out of an org and its projects."""
        variables = {"input": {"org": org, "user": user}}
        data = await self._client.execute(documents.REMOVE_ORG_MEMBER, variables)
        return Member.model_validate(data["removeOrgMember"]["member"])


class ProjectsResource(Resource):
    async def list(self, org: str | None = None) -> builtins.list[Project]:
        """The projects the caller may see (all of an org for its admins), by org and name;
        only ``org``'s when given."""
        return await self._all_pages(documents.PROJECTS, "projects", Project, {"org": org})

    async def get(self, org: str, name: str) -> Project:
        """A project; `NotFound` unless the caller may see it."""
        data = await self._client.execute(documents.PROJECT, {"org": org, "name": name})
        return Project.model_validate(data["project"])

    async def members(self, org: str, project: str) -> builtins.list[Member]:
        """A project's members and their roles."""
        variables = {"org": org, "project": project}
        data = await self._client.execute(documents.PROJECT_MEMBERS, variables)
        return [Member.model_validate(member) for member in data["projectMembers"]]

    async def create(
        self, org: str, name: str, default_role: ProjectRole | str = ProjectRole.WRITER
    ) -> Project:
        """Create a project in an org (its managers and admins); ``default_role`` is what a
        member added without a role gets."""
        role = ProjectRole(role_name(ProjectRole, default_role, "defaultRole"))
        new = parse_input(NewProject, {"org": org, "name": name, "default_role": role})
        data = await self._client.execute(documents.CREATE_PROJECT, {"input": new.to_wire()})
        return Project.model_validate(data["createProject"]["project"])

    async def update(self, org: str, name: str, *, default_role: ProjectRole | str) -> Project:
        """Change a project's default role (its admins)."""
        role = role_name(ProjectRole, default_role, "defaultRole")
        variables = {"input": {"org": org, "name": name, "defaultRole": role}}
        data = await self._client.execute(documents.UPDATE_PROJECT, variables)
        return Project.model_validate(data["updateProject"]["project"])

    async def delete(self, org: str, name: str) -> Project:
        """Delete a project with no unfinished job (its admins)."""
        variables = {"input": {"org": org, "name": name}}
        data = await self._client.execute(documents.DELETE_PROJECT, variables)
        return Project.model_validate(data["deleteProject"]["project"])

    async def set_member(
        self, org: str, project: str, user: str, role: ProjectRole | str | None = None
    ) -> Member:
        """Give a user a role in a project (the project's default role when None); they
        join the org as users if they are not in it."""
        wire_role = None if role is None else role_name(ProjectRole, role)
        variables = {"input": {"org": org, "project": project, "user": user, "role": wire_role}}
        data = await self._client.execute(documents.SET_PROJECT_MEMBER, variables)
        return Member.model_validate(data["setProjectMember"]["member"])

    async def remove_member(self, org: str, project: str, user: str) -> Member:
        """Take a user out of a project (anyone may leave)."""
        variables = {"input": {"org": org, "project": project, "user": user}}
        data = await self._client.execute(documents.REMOVE_PROJECT_MEMBER, variables)
        return Member.model_validate(data["removeProjectMember"]["member"])
