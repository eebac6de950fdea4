from __future__ import annotations

import strawberry

from glia import tenancy as kernel
from graph.types.base import expose_enum, input_type, object_type

OrgRole = expose_enum(kernel.OrgRole)
ProjectRole = expose_enum(kernel.ProjectRole)
ClusterRole = expose_enum(kernel.ClusterRole)


@object_type(kernel.Org)
class Org:
    pass


@object_type(kernel.Project)
class Project:
    pass


@object_type(kernel.Member)
class Member:
    pass


@input_type(kernel.NewOrg, name="CreateOrgInput")
class CreateOrgInput:
    pass


@strawberry.type(description="The org created; the caller is its admin")
class CreateOrgPayload:
    org: Org = strawberry.field(description="The new org")


@strawberry.input(description="An org to delete (it must have no projects left)")
class DeleteOrgInput:
    name: str = strawberry.field(description="The org's name")


@strawberry.type(description="The org deleted; its name is never given out again")
class DeleteOrgPayload:
    org: Org = strawberry.field(description="The org as it was")


@strawberry.input(description="An org and a cluster its members may (or may no longer) run on")
class OrgClusterInput:
    org: str = strawberry.field(description="The org's name")
    cluster: str = strawberry.field(description="The cluster's name")


@strawberry.type(description="The org with its clusters now")
class OrgClusterPayload:
    org: Org = strawberry.field(description="The org")


@strawberry.input(description="A user to give a role in an org, replacing the one they had")
class SetOrgMemberInput:
    org: str = strawberry.field(description="The org's name")
    user: str = strawberry.field(description="The user's name")
    role: kernel.OrgRole = strawberry.field(
        default=kernel.OrgRole.USER, description="Their role in the org"
    )


@strawberry.input(description="A user to take out of an org (and its projects)")
class RemoveOrgMemberInput:
    org: str = strawberry.field(description="The org's name")
    user: str = strawberry.field(description="The user's name")


@strawberry.type(description="A member and their role")
class MemberPayload:
    member: Member = strawberry.field(description="The member: their role now, or the one they had")


@input_type(kernel.NewProject, name="CreateProjectInput")
class CreateProjectInput:
    pass


@strawberry.type(description="The project created; the caller is its admin")
class CreateProjectPayload:
    project: Project = strawberry.field(description="The new project")


@strawberry.input(description="A project to change (its admins)")
class UpdateProjectInput:
    org: str = strawberry.field(description="The org's name")
    name: str = strawberry.field(description="The project's name")
    default_role: kernel.ProjectRole = strawberry.field(
        description="The role a new member gets when none is given"
    )


@strawberry.input(description="A project to delete (it must have no unfinished job)")
class DeleteProjectInput:
    org: str = strawberry.field(description="The org's name")
    name: str = strawberry.field(description="The project's name")


@strawberry.type(description="The project")
class ProjectPayload:
    project: Project = strawberry.field(description="The project")


@strawberry.input(description="A user to give a role in a project, replacing the one they had")
class SetProjectMemberInput:
    org: str = strawberry.field(description="The org's name")
    project: str = strawberry.field(description="The project's name")
    user: str = strawberry.field(description="The user's (or service account's) name")
    role: kernel.ProjectRole | None = strawberry.field(
        default=None, description="Their role; null for the project's default role"
    )


@strawberry.input(description="A user to take out of a project")
class RemoveProjectMemberInput:
    org: str = strawberry.field(description="The org's name")
    project: str = strawberry.field(description="The project's name")
    user: str = strawberry.field(description="The user's name")


@strawberry.input(description="A user to give a role on a cluster, replacing the one they had")
class SetClusterUserInput:
    cluster: str = strawberry.field(description="The cluster's name")
    user: str = strawberry.field(description="The user's name")
    role: kernel.ClusterRole = strawberry.field(
        default=kernel.ClusterRole.USER, description="Their role on the cluster"
    )


@strawberry.input(description="A user to take off a cluster")
class RemoveClusterUserInput:
    cluster: str = strawberry.field(description="The cluster's name")
    user: str = strawberry.field(description="The user's name")
