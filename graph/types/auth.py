from __future__ import annotations

import strawberry

from glia import auth as kernel
from graph.context import Info
from graph.types.base import expose_enum, field_description, input_type, object_type
from graph.types.node import Node

UserRole = expose_enum(kernel.UserRole)
UserKind = expose_enum(kernel.UserKind)


@object_type(kernel.User)
class User(Node):
    id: strawberry.ID = strawberry.field(description=field_description(kernel.User, "id"))

    @strawberry.field(
        description=f"{field_description(kernel.User, 'email')} Shown to the user and to "
        "admins only: null for anybody else."
    )
    async def email(self, root: strawberry.Parent[kernel.User], info: Info) -> str | None:
        ctx = info.context
        viewer = await ctx.viewer()
        return root.email if viewer.id == root.id or viewer.is_admin else None


@object_type(kernel.Token)
class Token:
    id: strawberry.ID = strawberry.field(description=field_description(kernel.Token, "id"))


@strawberry.input(description="A user name and password to sign in with")
class LoginInput:
    username: str = strawberry.field(description="The user name")
    password: str = strawberry.field(description="The user's password")


@strawberry.type(description="A new token, and whose it is")
class LoginPayload:
    token: str = strawberry.field(
        description="A bearer token: send it as `Authorization: Bearer <token>`; shown once"
    )
    user: User = strawberry.field(description="The user the token is for")


@strawberry.type(description="The token this request was made with, revoked")
class LogoutPayload:
    token_id: strawberry.ID = strawberry.field(description="The id of the revoked token")


@input_type(kernel.NewUser, name="CreateUserInput")
class CreateUserInput:
    pass


@strawberry.type(description="The user created")
class CreateUserPayload:
    user: User = strawberry.field(description="The new user")
    password: str | None = strawberry.field(
        description="The generated password, shown once; null when one was given"
    )


@strawberry.input(description="Changes to a user; a field left null stays as it is")
class UpdateUserInput:
    name: str = strawberry.field(description="The user to change")
    email: str | None = strawberry.field(
        default=None, description=field_description(kernel.UserUpdate, "email")
    )
    role: kernel.UserRole | None = strawberry.field(
        default=None, description=field_description(kernel.UserUpdate, "role")
    )


@strawberry.type(description="The user as changed")
class UpdateUserPayload:
    user: User = strawberry.field(description="The user")


@strawberry.input(description="The user to delete")
class DeleteUserInput:
    name: str = strawberry.field(description="The user's name")


@strawberry.type(description="The user deleted")
class DeleteUserPayload:
    user: User = strawberry.field(description="The user as they were")
    stopped_jobs: int = strawberry.field(description="How many of their jobs were stopped")


@strawberry.input(description="The user to give a new password")
class ResetPasswordInput:
    name: str = strawberry.field(description="The user's name")


@strawberry.type(description="A new generated password")
class ResetPasswordPayload:
    user: User = strawberry.field(description="The user")
    password: str = strawberry.field(description="The new password, shown once")


@input_type(kernel.PasswordChange, name="ChangePasswordInput")
class ChangePasswordInput:
    pass


@strawberry.type(description="The caller's password, changed")
class ChangePasswordPayload:
    user: User = strawberry.field(description="The caller")


@strawberry.input(description="One of the caller's tokens to revoke")
class RevokeTokenInput:
    id: strawberry.ID = strawberry.field(description="The token's id (from `tokens`)")


@strawberry.type(description="The token revoked")
class RevokeTokenPayload:
    token_id: strawberry.ID = strawberry.field(description="The id of the revoked token")
