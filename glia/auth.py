"""Who uses Glia: users and their platform roles."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field, field_validator

from glia.acl import user_subject
from glia.model import DescribedEnum, Model

USER_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class UserRole(DescribedEnum):
    """What a user may do on the whole platform."""

    ADMIN = "admin", "Manages every resource of every kind, and the users"
    USER = "user", "Runs jobs and manages what they own or what is shared with them"


class UserKind(DescribedEnum):
    """Who is behind an account."""

    USER = "user", "A person, who signs in with a password"
    SERVICE_ACCOUNT = (
        "service_account",
        "A program, signing in with a token its owner made; named OWNER/NAME",
    )


class User(Model):
    """A person or a service account that signs in to Glia."""

    id: str
    """The user's id (a UUID)."""
    name: str
    """The user name: lowercase letters, digits, '-' and '_', starting with a letter; never
    reused, even after the user is deleted."""
    email: str | None = None
    """Where notifications go; null when none was given."""
    role: UserRole
    """The user's platform role."""
    kind: UserKind = UserKind.USER
    """A person, or a service account."""
    created_at: datetime
    """When the user was created (UTC)."""

    @property
    def subject(self) -> str:
        """The user as a subject of grants: `user:<name>`."""
        return user_subject(self.name)

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.ADMIN


class NewUser(Model):
    """A user to create."""

    name: str
    """Lowercase letters, digits, '-' and '_', starting with a letter, at most 63 characters."""
    email: str | None = None
    """An email address, or null."""
    role: UserRole = UserRole.USER
    """The new user's platform role."""
    password: str | None = Field(default=None, repr=False)
    """At least 8 characters; null to have the server generate one and return it once."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not USER_NAME_RE.fullmatch(name):
            raise ValueError(
                f"invalid user name {name!r}: lowercase letters, digits, '-' and '_', "
                "starting with a letter, at most 63 characters"
            )
        return name

    @field_validator("email")
    @classmethod
    def _email(cls, email: str | None) -> str | None:
        return check_email(email)

    @field_validator("password")
    @classmethod
    def _password(cls, password: str | None) -> str | None:
        return None if password is None else check_password(password)


class Token(Model):
    """A token a user signed in with (the token itself is shown once, at login)."""

    id: str
    """The token's id (a UUID): what `revokeToken` takes."""
    description: str | None = None
    """What made it: `login`, `glia up`, …"""
    created_at: datetime
    """When it was issued (UTC)."""
    expires_at: datetime
    """When it stops working (UTC)."""
    current: bool = False
    """Whether this request was made with it."""


class UserUpdate(Model):
    """Changes to a user; a field left null stays as it is."""

    email: str | None = None
    """A new email address."""
    role: UserRole | None = None
    """A new platform role."""

    @field_validator("email")
    @classmethod
    def _email(cls, email: str | None) -> str | None:
        return check_email(email)


def check_password(password: str) -> str:
    """A password Glia accepts: 8 to 1024 characters."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"the password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return password


def check_email(email: str | None) -> str | None:
    """An email address as far as Glia checks one: an @, no whitespace, at most 320."""
    if email is not None and (
        "@" not in email or len(email) > 320 or any(c.isspace() for c in email)
    ):
        raise ValueError(f"invalid email address {email!r}")
    return email


class PasswordChange(Model):
    """A user's new password, with the current one to prove it is them."""

    current_password: str = Field(repr=False)
    """The password now."""
    new_password: str = Field(repr=False)
    """8 to 1024 characters."""

    @field_validator("new_password")
    @classmethod
    def _new(cls, password: str) -> str:
        return check_password(password)
