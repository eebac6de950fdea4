from __future__ import annotations

from typing import cast

import strawberry

from glia.auth import NewUser
from graph.context import Info
from graph.types.auth import CreateUserInput, CreateUserPayload, LoginPayload, User
from graph.types.base import model_from_input


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The user this request is authenticated as")
    async def me(self, info: Info) -> User:
        return cast(User, await info.context.user())


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Exchange a user name and password for a token")
    async def login(self, info: Info, username: str, password: str) -> LoginPayload:
        ctx = info.context
        token, user = await ctx.platform.auth.login(
            ctx.session, username=username, password=password, client_address=ctx.client_address
        )
        return LoginPayload(token=token, user=cast(User, user))

    @strawberry.mutation(description="Revoke the token this request was made with")
    async def logout(self, info: Info) -> bool:
        ctx = info.context
        identity = await ctx.identity()
        await ctx.platform.auth.revoke_token(ctx.session, identity.token_id)
        return True

    @strawberry.mutation(description="Create a user (admins only)")
    async def create_user(self, info: Info, input: CreateUserInput) -> CreateUserPayload:
        ctx = info.context
        user, password = await ctx.platform.auth.add_user(
            ctx.session, await ctx.user(), model_from_input(NewUser, input)
        )
        return CreateUserPayload(user=cast(User, user), password=password)
