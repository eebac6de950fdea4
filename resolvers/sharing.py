from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia import tenancy as kernel
from graph.context import Info
from graph.types.sharing import (
    CreateServiceAccountInput,
    CreateServiceAccountPayload,
    DeleteServiceAccountInput,
    DeleteServiceAccountPayload,
    Grant,
    GrantInput,
    GrantPayload,
    RevokeInput,
    RevokePayload,
    Role,
    RoleInput,
    RolePayload,
    ServiceAccount,
)

SUBJECT = strawberry.argument(
    description="A user name or a role (`role://…`); null for the caller. Another user's are "
    "for those who manage users, a role's for those who manage it or hold it"
)


@strawberry.type
class SharingQuery:
    @strawberry.field(
        description="What a user or role may do: its grants and its roles' grants, by URI"
    )
    async def permissions(
        self, info: Info, subject: Annotated[str | None, SUBJECT] = None
    ) -> list[Grant]:
        ctx = info.context
        found = await ctx.platform.sharing.permissions(ctx.session, await ctx.user(), subject)
        return cast(list[Grant], found)

    @strawberry.field(
        description="What a user has shared: grants others hold on URIs the user manages "
        "(members of orgs and projects are listed with them)"
    )
    async def shared(
        self, info: Info, subject: Annotated[str | None, SUBJECT] = None
    ) -> list[Grant]:
        ctx = info.context
        found = await ctx.platform.sharing.shared(ctx.session, await ctx.user(), subject)
        return cast(list[Grant], found)

    @strawberry.field(description="The roles a user or role holds, directly or through others")
    async def roles(self, info: Info, subject: Annotated[str | None, SUBJECT] = None) -> list[Role]:
        ctx = info.context
        found = await ctx.platform.sharing.roles(ctx.session, await ctx.user(), subject)
        return cast(list[Role], found)

    @strawberry.field(
        description="Who holds a role directly (`read`: a member; `manage`: a member who may "
        "change its members); for those who manage the role"
    )
    async def role_members(
        self,
        info: Info,
        role: Annotated[
            str, strawberry.argument(description="The role: `role://user/alice/team` or its name")
        ],
    ) -> list[Grant]:
        ctx = info.context
        found = await ctx.platform.sharing.role_members(ctx.session, await ctx.user(), role)
        return cast(list[Grant], found)

    @strawberry.field(description="The caller's service accounts (every one, for admins)")
    async def service_accounts(self, info: Info) -> list[ServiceAccount]:
        ctx = info.context
        found = await ctx.platform.service_accounts.list(ctx.session, await ctx.user())
        return cast(list[ServiceAccount], found)

    @strawberry.field(description="One of the caller's service accounts: `ci` or `alice/ci`")
    async def service_account(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="Its name")],
    ) -> ServiceAccount:
        ctx = info.context
        found = await ctx.platform.service_accounts.get(ctx.session, await ctx.user(), name)
        return cast(ServiceAccount, found)


@strawberry.type
class SharingMutation:
    @strawberry.mutation(
        description="Let a user or role do an action on a URI and beneath it (the caller must "
        "manage the URI); on a role's URI, make them a member of the role"
    )
    async def grant(
        self, info: Info, input: Annotated[GrantInput, strawberry.argument(description="What")]
    ) -> GrantPayload:
        ctx = info.context
        grant, warnings = await ctx.platform.sharing.grant(
            ctx.session, await ctx.user(), input.uri, input.subject, input.action
        )
        return GrantPayload(grant=cast(Grant, grant), warnings=warnings)

    @strawberry.mutation(
        description="Take back what a user or role holds on exactly one URI (the caller must "
        "manage it, or be giving up their own)"
    )
    async def revoke(
        self, info: Info, input: Annotated[RevokeInput, strawberry.argument(description="What")]
    ) -> RevokePayload:
        ctx = info.context
        grant = await ctx.platform.sharing.revoke(
            ctx.session, await ctx.user(), input.uri, input.subject
        )
        return RevokePayload(grant=cast(Grant, grant))

    @strawberry.mutation(description="Create a role of the caller's own, which they manage")
    async def create_role(
        self, info: Info, input: Annotated[RoleInput, strawberry.argument(description="Which")]
    ) -> RolePayload:
        ctx = info.context
        role = await ctx.platform.sharing.create_role(ctx.session, await ctx.user(), input.name)
        return RolePayload(role=cast(Role, role))

    @strawberry.mutation(description="Delete a role the caller manages; its members lose it")
    async def delete_role(
        self, info: Info, input: Annotated[RoleInput, strawberry.argument(description="Which")]
    ) -> RolePayload:
        ctx = info.context
        role = await ctx.platform.sharing.delete_role(ctx.session, await ctx.user(), input.name)
        return RolePayload(role=cast(Role, role))

    @strawberry.mutation(
        description="Create a service account and its token (shown once); with a project, "
        "it joins it"
    )
    async def create_service_account(
        self,
        info: Info,
        input: Annotated[CreateServiceAccountInput, strawberry.argument(description="Which")],
    ) -> CreateServiceAccountPayload:
        ctx = info.context
        caller = await ctx.user()
        org = input.org or (caller.name if input.project is not None else None)
        role = kernel.ProjectRole(input.role) if input.role is not None else None
        account, token = await ctx.platform.service_accounts.create(
            ctx.session, caller, input.name, org=org, project=input.project, role=role
        )
        return CreateServiceAccountPayload(
            service_account=cast(ServiceAccount, account), token=token
        )

    @strawberry.mutation(
        description="Delete a service account: its tokens stop working at once, ending its "
        "open subscriptions"
    )
    async def delete_service_account(
        self,
        info: Info,
        input: Annotated[DeleteServiceAccountInput, strawberry.argument(description="Which")],
    ) -> DeleteServiceAccountPayload:
        ctx = info.context
        account = await ctx.platform.service_accounts.delete(
            ctx.session, await ctx.user(), input.name
        )
        return DeleteServiceAccountPayload(service_account=cast(ServiceAccount, account))
