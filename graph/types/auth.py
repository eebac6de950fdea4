from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from glia.services import auth as service


@strawberry.enum
class UserRole(enum.Enum):
    ADMIN = "admin"
    USER = "user"


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    email: str | None
    role: UserRole
    created_at: datetime

    @classmethod
    def from_domain(cls, user: service.User) -> User:
        return cls(
            id=strawberry.ID(user.id),
            name=user.name,
            email=user.email,
            role=UserRole(user.role),
            created_at=user.created_at,
        )


@strawberry.type
class LoginPayload:
    token: str
    user: User


@strawberry.type
class CreateUserPayload:
    user: User
    password: str | None = strawberry.field(
        description="The generated password, shown once; null when one was given"
    )


@strawberry.input
class CreateUserInput:
    name: str
    email: str | None = None
    role: UserRole = UserRole.USER
    password: str | None = None
