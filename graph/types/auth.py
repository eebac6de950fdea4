from __future__ import annotations

import strawberry

from glia import auth as kernel
from graph.types.base import expose_enum, field_description, input_type, object_type

UserRole = expose_enum(kernel.UserRole)


@object_type(kernel.User)
class User:
    id: strawberry.ID = strawberry.field(description=field_description(kernel.User, "id"))


@strawberry.type(description="A new token, and whose it is")
class LoginPayload:
    token: str = strawberry.field(description="A bearer token: send it as `Authorization: Bearer`")
    user: User = strawberry.field(description="The user the token is for")


@strawberry.type(description="The user created")
class CreateUserPayload:
    user: User = strawberry.field(description="The new user")
    password: str | None = strawberry.field(
        description="The generated password, shown once; null when one was given"
    )


@input_type(kernel.NewUser, name="CreateUserInput")
class CreateUserInput:
    pass
