from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia.auth import UserUpdate
from graph.context import Info
from graph.types.auth import (
    DeleteUserInput,
    DeleteUserPayload,
    ResetPasswordInput,
    ResetPasswordPayload,
    UpdateUserInput,
    UpdateUserPayload,
    User,
)
from graph.types.base import model_from_input
from graph.types.pages import AFTER, BEFORE, FIRST, LAST, Connection, page_request


@strawberry.type
class UsersQuery:
    @strawberry.field(description="Every user, by name (admins only)")
    async def users(
        self,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[User]:
        ctx = info.context
        page = page_request(first, after, last, before)
        found = await ctx.platform.users.list(ctx.session, await ctx.user(), page)
        return Connection[User].of(found)

    @strawberry.field(description="A user by name; NOT_FOUND for none (or a deleted one)")
    async def user(
        self, info: Info, name: Annotated[str, strawberry.argument(description="The user name")]
    ) -> User:
        ctx = info.context
        return cast(User, await ctx.platform.users.get(ctx.session, await ctx.user(), name))


@strawberry.type
class UsersMutation:
    @strawberry.mutation(description="Change a user's email or role (admins only)")
    async def update_user(
        self,
        info: Info,
        input: Annotated[
            UpdateUserInput, strawberry.argument(description="The user and the changes")
        ],
    ) -> UpdateUserPayload:
        ctx = info.context
        update = model_from_input(UserUpdate, {"email": input.email, "role": input.role})
        user = await ctx.platform.users.update(ctx.session, await ctx.user(), input.name, update)
        return UpdateUserPayload(user=cast(User, user))

    @strawberry.mutation(
        description="Delete a user (admins only): their unfinished jobs are stopped, their "
        "tokens revoked and their grants dropped; their name is never given out again"
    )
    async def delete_user(
        self,
        info: Info,
        input: Annotated[DeleteUserInput, strawberry.argument(description="Which user")],
    ) -> DeleteUserPayload:
        ctx = info.context
        user, stopped = await ctx.platform.users.delete(ctx.session, await ctx.user(), input.name)
        return DeleteUserPayload(user=cast(User, user), stopped_jobs=stopped)

    @strawberry.mutation(
        description="Give a user a new generated password (admins only); their tokens are revoked"
    )
    async def reset_password(
        self,
        info: Info,
        input: Annotated[ResetPasswordInput, strawberry.argument(description="Which user")],
    ) -> ResetPasswordPayload:
        ctx = info.context
        user, password = await ctx.platform.auth.reset_password(
            ctx.session, await ctx.user(), input.name
        )
        return ResetPasswordPayload(user=cast(User, user), password=password)
