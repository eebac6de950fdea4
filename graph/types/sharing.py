from __future__ import annotations

import strawberry

from glia import tenancy as kernel
from graph.types.base import object_type


@object_type(kernel.GrantEntry, name="Grant")
class Grant:
    pass


@object_type(kernel.Role)
class Role:
    pass


@object_type(kernel.ServiceAccount)
class ServiceAccount:
    pass


@strawberry.input(description="A permission to give: an action on a URI, to a user or a role")
class GrantInput:
    uri: str = strawberry.field(
        description="The resource URI (`job://CLUSTER/ORG/PROJECT/ID`, `role://NAME`, …); a "
        "grant covers everything beneath it. On a role's URI it makes the grantee a member"
    )
    subject: str = strawberry.field(
        description="Who gets it: a user name (`bob`, `alice/ci` for a service account) or a "
        "role (`role://user/alice/team`)"
    )
    action: str = strawberry.field(
        description="list, read, write or manage (each includes the ones before it)"
    )


@strawberry.type(description="The grant made, and what to know about it")
class GrantPayload:
    grant: Grant = strawberry.field(description="The grant")
    warnings: list[str] = strawberry.field(
        description="Things to know: a URI that names nothing yet (the grant waits for it)"
    )


@strawberry.input(description="A grant to take back: what a subject holds on exactly one URI")
class RevokeInput:
    uri: str = strawberry.field(description="The resource URI the grant is on")
    subject: str = strawberry.field(description="A user name or a role (`role://…`)")


@strawberry.type(description="The grant taken back")
class RevokePayload:
    grant: Grant = strawberry.field(description="The grant as it was")


@strawberry.input(description="A role to create or delete")
class RoleInput:
    name: str = strawberry.field(
        description="`team` for one of the caller's own (`user/<caller>/team`), or the full "
        "name, `user/alice/team`"
    )


@strawberry.type(description="The role")
class RolePayload:
    role: Role = strawberry.field(description="The role")


@strawberry.input(description="A service account to create")
class CreateServiceAccountInput:
    name: str = strawberry.field(
        description="Its name under the caller's: `ci` makes `<caller>/ci`"
    )
    org: str | None = strawberry.field(
        default=None, description="The org of `project`; null for the caller's personal org"
    )
    project: str | None = strawberry.field(
        default=None,
        description="A project it joins (the caller must be able to add members); null for none",
    )
    role: kernel.ProjectRole | None = strawberry.field(
        default=None, description="Its role in the project; null for the project's default"
    )


@strawberry.type(description="The service account, and its token (shown once)")
class CreateServiceAccountPayload:
    service_account: ServiceAccount = strawberry.field(description="The new service account")
    token: str = strawberry.field(
        description="Its bearer token, shown once: it acts with what the account is given"
    )


@strawberry.input(description="A service account to delete")
class DeleteServiceAccountInput:
    name: str = strawberry.field(description="`ci` (the caller's) or `alice/ci`")


@strawberry.type(description="The service account deleted; its tokens no longer work")
class DeleteServiceAccountPayload:
    service_account: ServiceAccount = strawberry.field(description="The account as it was")
