from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia import tenancy as kernel
from graph.context import Info
from graph.types.base import model_from_input
from graph.types.orgs import (
    CreateOrgInput,
    CreateOrgPayload,
    CreateProjectInput,
    CreateProjectPayload,
    DeleteOrgInput,
    DeleteOrgPayload,
    DeleteProjectInput,
    Member,
    MemberPayload,
    Org,
    OrgClusterInput,
    OrgClusterPayload,
    Project,
    ProjectPayload,
    RemoveClusterUserInput,
    RemoveOrgMemberInput,
    RemoveProjectMemberInput,
    SetClusterUserInput,
    SetOrgMemberInput,
    SetProjectMemberInput,
    UpdateProjectInput,
)
from graph.types.pages import AFTER, BEFORE, FIRST, LAST, Connection, page_request

ORG = strawberry.argument(description="The org's name")
PROJECT = strawberry.argument(description="The project's name")
CLUSTER = strawberry.argument(description="The cluster's name")


@strawberry.type
class OrgsQuery:
    @strawberry.field(
        description="The orgs the caller belongs to (every org, for platform admins), by name"
    )
    async def orgs(
        self,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[Org]:
        ctx = info.context
        found = await ctx.platform.orgs.list(
            ctx.session, await ctx.user(), page_request(first, after, last, before)
        )
        return Connection[Org].of(found)

    @strawberry.field(description="An org by name; NOT_FOUND unless the caller belongs to it")
    async def org(self, info: Info, name: Annotated[str, ORG]) -> Org:
        ctx = info.context
        return cast(Org, await ctx.platform.orgs.get(ctx.session, await ctx.user(), name))

    @strawberry.field(description="An org's members and their roles (its members may look)")
    async def org_members(self, info: Info, org: Annotated[str, ORG]) -> list[Member]:
        ctx = info.context
        found = await ctx.platform.orgs.members(ctx.session, await ctx.user(), org)
        return cast(list[Member], found)

    @strawberry.field(
        description="The projects the caller may see (theirs; all of an org for its admins), "
        "by org and name"
    )
    async def projects(
        self,
        info: Info,
        org: Annotated[str | None, strawberry.argument(description="Only this org's")] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[Project]:
        ctx = info.context
        found = await ctx.platform.projects.list(
            ctx.session, await ctx.user(), page_request(first, after, last, before), org=org
        )
        return Connection[Project].of(found)

    @strawberry.field(description="A project; NOT_FOUND unless the caller may see it")
    async def project(
        self, info: Info, org: Annotated[str, ORG], name: Annotated[str, PROJECT]
    ) -> Project:
        ctx = info.context
        found = await ctx.platform.projects.get(ctx.session, await ctx.user(), org, name)
        return cast(Project, found)

    @strawberry.field(description="A project's members and their roles (its members may look)")
    async def project_members(
        self, info: Info, org: Annotated[str, ORG], project: Annotated[str, PROJECT]
    ) -> list[Member]:
        ctx = info.context
        found = await ctx.platform.projects.members(ctx.session, await ctx.user(), org, project)
        return cast(list[Member], found)

    @strawberry.field(
        description="The users given a role on a cluster itself (its managers and admins may "
        "look); an org's members use the clusters of their org"
    )
    async def cluster_users(self, info: Info, cluster: Annotated[str, CLUSTER]) -> list[Member]:
        ctx = info.context
        found = await ctx.platform.cluster_users.members(ctx.session, await ctx.user(), cluster)
        return cast(list[Member], found)


@strawberry.type
class OrgsMutation:
    @strawberry.mutation(description="Create an org (platform admins)")
    async def create_org(
        self,
        info: Info,
        input: Annotated[CreateOrgInput, strawberry.argument(description="The org")],
    ) -> CreateOrgPayload:
        ctx = info.context
        new = model_from_input(kernel.NewOrg, input)
        org = await ctx.platform.orgs.create(ctx.session, await ctx.user(), new)
        return CreateOrgPayload(org=cast(Org, org))

    @strawberry.mutation(description="Delete an org with no projects left (platform admins)")
    async def delete_org(
        self, info: Info, input: Annotated[DeleteOrgInput, strawberry.argument(description="Which")]
    ) -> DeleteOrgPayload:
        ctx = info.context
        org = await ctx.platform.orgs.delete(ctx.session, await ctx.user(), input.name)
        return DeleteOrgPayload(org=cast(Org, org))

    @strawberry.mutation(description="Let an org's members run on a cluster (platform admins)")
    async def add_org_cluster(
        self,
        info: Info,
        input: Annotated[OrgClusterInput, strawberry.argument(description="Which")],
    ) -> OrgClusterPayload:
        ctx = info.context
        org = await ctx.platform.orgs.add_cluster(
            ctx.session, await ctx.user(), input.org, input.cluster
        )
        return OrgClusterPayload(org=cast(Org, org))

    @strawberry.mutation(description="Stop an org's members running on a cluster (platform admins)")
    async def remove_org_cluster(
        self,
        info: Info,
        input: Annotated[OrgClusterInput, strawberry.argument(description="Which")],
    ) -> OrgClusterPayload:
        ctx = info.context
        org = await ctx.platform.orgs.remove_cluster(
            ctx.session, await ctx.user(), input.org, input.cluster
        )
        return OrgClusterPayload(org=cast(Org, org))

    @strawberry.mutation(
        description="Give a user a role in an org (its managers; admins for the admin role)"
    )
    async def set_org_member(
        self,
        info: Info,
        input: Annotated[SetOrgMemberInput, strawberry.argument(description="Who")],
    ) -> MemberPayload:
        ctx = info.context
        member = await ctx.platform.orgs.add_member(
            ctx.session, await ctx.user(), input.org, input.user, kernel.OrgRole(input.role)
        )
        return MemberPayload(member=cast(Member, member))

    @strawberry.mutation(description="Take a user out of an org and its projects (its managers)")
    async def remove_org_member(
        self,
        info: Info,
        input: Annotated[RemoveOrgMemberInput, strawberry.argument(description="Who")],
    ) -> MemberPayload:
        ctx = info.context
        member = await ctx.platform.orgs.remove_member(
            ctx.session, await ctx.user(), input.org, input.user
        )
        return MemberPayload(member=cast(Member, member))

    @strawberry.mutation(description="Create a project in an org (its managers and admins)")
    async def create_project(
        self,
        info: Info,
        input: Annotated[CreateProjectInput, strawberry.argument(description="The project")],
    ) -> CreateProjectPayload:
        ctx = info.context
        new = model_from_input(kernel.NewProject, input)
        project = await ctx.platform.projects.create(ctx.session, await ctx.user(), new)
        return CreateProjectPayload(project=cast(Project, project))

    @strawberry.mutation(description="Change a project's default role (its admins)")
    async def update_project(
        self,
        info: Info,
        input: Annotated[UpdateProjectInput, strawberry.argument(description="The change")],
    ) -> ProjectPayload:
        ctx = info.context
        project = await ctx.platform.projects.update(
            ctx.session,
            await ctx.user(),
            input.org,
            input.name,
            kernel.ProjectRole(input.default_role),
        )
        return ProjectPayload(project=cast(Project, project))

    @strawberry.mutation(description="Delete a project with no unfinished job (its admins)")
    async def delete_project(
        self,
        info: Info,
        input: Annotated[DeleteProjectInput, strawberry.argument(description="Which")],
    ) -> ProjectPayload:
        ctx = info.context
        project = await ctx.platform.projects.delete(
            ctx.session, await ctx.user(), input.org, input.name
        )
        return ProjectPayload(project=cast(Project, project))

    @strawberry.mutation(
        description="Give a user a role in a project, its default role when none is given "
        "(its managers; admins for the admin role); they join the org as users if not in it"
    )
    async def set_project_member(
        self,
        info: Info,
        input: Annotated[SetProjectMemberInput, strawberry.argument(description="Who")],
    ) -> MemberPayload:
        ctx = info.context
        role = kernel.ProjectRole(input.role) if input.role is not None else None
        member = await ctx.platform.projects.add_member(
            ctx.session, await ctx.user(), input.org, input.project, input.user, role
        )
        return MemberPayload(member=cast(Member, member))

    @strawberry.mutation(
        description="Take a user out of a project (its managers; anyone may leave)"
    )
    async def remove_project_member(
        self,
        info: Info,
        input: Annotated[RemoveProjectMemberInput, strawberry.argument(description="Who")],
    ) -> MemberPayload:
        ctx = info.context
        member = await ctx.platform.projects.remove_member(
            ctx.session, await ctx.user(), input.org, input.project, input.user
        )
        return MemberPayload(member=cast(Member, member))

    @strawberry.mutation(
        description="Give a user a role on a cluster (its managers; admins for the admin role)"
    )
    async def set_cluster_user(
        self,
        info: Info,
        input: Annotated[SetClusterUserInput, strawberry.argument(description="Who")],
    ) -> MemberPayload:
        ctx = info.context
        platform = ctx.platform
        caller = await ctx.user()  # before a lookup that tells whether the user exists
        subject = await platform.orgs.member_subject(ctx.session, input.user)
        member = await platform.cluster_users.add_member(
            ctx.session, caller, input.cluster, subject, kernel.ClusterRole(input.role)
        )
        return MemberPayload(member=cast(Member, member))

    @strawberry.mutation(description="Take a user's role on a cluster away (its managers)")
    async def remove_cluster_user(
        self,
        info: Info,
        input: Annotated[RemoveClusterUserInput, strawberry.argument(description="Who")],
    ) -> MemberPayload:
        ctx = info.context
        platform = ctx.platform
        caller = await ctx.user()  # before a lookup that tells whether the user exists
        subject = await platform.orgs.member_subject(ctx.session, input.user, deleted_ok=True)
        member = await platform.cluster_users.remove_member(
            ctx.session, caller, input.cluster, subject
        )
        return MemberPayload(member=cast(Member, member))
