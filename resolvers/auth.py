from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia.auth import NewUser, PasswordChange
from graph.context import Info
from graph.types.auth import (
    ChangePasswordInput,
    ChangePasswordPayload,
    CreateUserInput,
    CreateUserPayload,
    LoginInput,
    LoginPayload,
    LogoutPayload,
    RevokeTokenInput,
    RevokeTokenPayload,
    Token,
    User,
)
from graph.types.base import model_from_input


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The user this request is authenticated as")
    async def me(self, info: Info) -> User:
        return cast(User, await info.context.user())

    @strawberry.field(description="The caller's tokens that still work, newest first")
    async def tokens(self, info: Info) -> list[Token]:
        ctx = info.context
        return cast(list[Token], await ctx.platform.auth.tokens(ctx.session, await ctx.identity()))


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        description="Exchange a user name and password for a token (rate-limited per user "
        "name and per client address: TOO_MANY_REQUESTS)"
    )
    async def login(
        self,
        info: Info,
        input: Annotated[LoginInput, strawberry.argument(description="Who signs in")],
    ) -> LoginPayload:
        ctx = info.context
        token, user = await ctx.platform.auth.login(
            ctx.session,
            username=input.username,
            password=input.password,
            client_address=ctx.client_address,
        )
        ctx.operation.signed_in = user
        return LoginPayload(token=token, user=cast(User, user))

    @strawberry.mutation(description="Revoke the token this request was made with")
    async def logout(self, info: Info) -> LogoutPayload:
        ctx = info.context
        identity = await ctx.identity()
        await ctx.platform.auth.revoke_token(ctx.session, identity.token_id)
        return LogoutPayload(token_id=strawberry.ID(identity.token_id))

    @strawberry.mutation(description="Create a user (admins only)")
    async def create_user(
        self,
        info: Info,
        input: Annotated[CreateUserInput, strawberry.argument(description="The user to create")],
    ) -> CreateUserPayload:
        ctx = info.context
        user, password = await ctx.platform.auth.add_user(
            ctx.session, await ctx.user(), model_from_input(NewUser, input)
        )
        return CreateUserPayload(user=cast(User, user), password=password)

    @strawberry.mutation(
        description="Change the caller's own password; their other tokens are revoked"
    )
    async def change_password(
        self,
        info: Info,
        input: Annotated[
            ChangePasswordInput, strawberry.argument(description="The current and the new password")
        ],
    ) -> ChangePasswordPayload:
        ctx = info.context
        identity = await ctx.identity()
        change = model_from_input(PasswordChange, input)
        await ctx.platform.auth.change_password(ctx.session, identity, change)
        return ChangePasswordPayload(user=cast(User, identity.user))

    @strawberry.mutation(description="Revoke one of the caller's own tokens")
    async def revoke_token(
        self,
        info: Info,
        input: Annotated[RevokeTokenInput, strawberry.argument(description="Which token")],
    ) -> RevokeTokenPayload:
        ctx = info.context
        await ctx.platform.auth.revoke_own_token(ctx.session, await ctx.user(), str(input.id))
        return RevokeTokenPayload(token_id=input.id)
