"""Users and tokens.

Passwords are argon2 hashes. Tokens are HS256 JWTs whose ``jti`` is a row in ``tokens``: the
signature proves who issued it, the row lets an admin or ``glia logout`` revoke it.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from glia.clock import utcnow
from glia.errors import BadInput, Conflict, Unauthenticated
from glia.services.acl import AclService, Action, role_subject, user_subject
from glia.store.models import TokenRow, UserRow

logger = logging.getLogger(__name__)

USER_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
ROLES = ("admin", "user")
ADMIN_ROLE = "admin"
# Managing users is a grant on the root of the user:// scheme (admins hold it through "*").
USERS_URI = "user://"
_JWT_ALGORITHM = "HS256"
_GENERATED_PASSWORD_BYTES = 18


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str | None
    role: str
    created_at: datetime

    @property
    def subject(self) -> str:
        return user_subject(self.name)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE


@dataclass(frozen=True)
class Identity:
    """Who made a request, and with which token (so logout can revoke exactly that one)."""

    user: User
    token_id: str


def _user(row: UserRow) -> User:
    return User(id=row.id, name=row.name, email=row.email, role=row.role, created_at=row.created_at)


class AuthService:
    def __init__(self, *, acl: AclService, secret_key: str, token_ttl_s: int) -> None:
        if len(secret_key) < 32:
            raise ValueError("the token signing key must be at least 32 characters")
        self._acl = acl
        self._secret_key = secret_key
        self._token_ttl = timedelta(seconds=token_ttl_s)
        self._hasher = PasswordHasher()

    async def create_user(
        self,
        session: AsyncSession,
        *,
        name: str,
        email: str | None = None,
        role: str = "user",
        password: str | None = None,
    ) -> tuple[User, str | None]:
        """Create a user; returns the generated password when none was given."""
        if not USER_NAME_RE.match(name):
            raise BadInput(
                f"invalid user name {name!r}: lowercase letters, digits, '-' and '_', "
                "starting with a letter, at most 63 characters",
                fields={"name": name},
            )
        if role not in ROLES:
            raise BadInput(f"invalid role {role!r}: one of {', '.join(ROLES)}")
        if email is not None and "@" not in email:
            raise BadInput(f"invalid email {email!r}")
        generated = None
        if password is None:
            generated = password = secrets.token_urlsafe(_GENERATED_PASSWORD_BYTES)
        elif len(password) < 8:
            raise BadInput("the password must have at least 8 characters")
        row = UserRow(
            id=str(uuid.uuid4()),
            name=name,
            email=email,
            role=role,
            password_hash=self._hasher.hash(password),
        )
        session.add(row)
        try:
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            raise Conflict(f"user {name!r} already exists") from exc
        if role == ADMIN_ROLE:
            await self._acl.add_role(user_subject(name), role_subject(ADMIN_ROLE))
        return _user(row), generated

    async def add_user(
        self,
        session: AsyncSession,
        caller: User,
        *,
        name: str,
        email: str | None = None,
        role: str = "user",
        password: str | None = None,
    ) -> tuple[User, str | None]:
        """`create_user` on behalf of ``caller``, who must manage users."""
        await self._acl.require(caller.subject, USERS_URI, Action.MANAGE)
        return await self.create_user(session, name=name, email=email, role=role, password=password)

    async def ensure_admin(
        self, session: AsyncSession, name: str, *, password: str | None = None
    ) -> tuple[User, str | None]:
        """The first admin of a fresh install; returns the generated password only when the
        user was created without one given."""
        row = await session.scalar(select(UserRow).where(UserRow.name == name))
        if row is not None:
            return _user(row), None
        return await self.create_user(session, name=name, role=ADMIN_ROLE, password=password)

    async def ensure_admin_exists_or_warn(self, session: AsyncSession, name: str) -> None:
        row = await session.scalar(select(UserRow.id).where(UserRow.role == ADMIN_ROLE).limit(1))
        if row is None:
            logger.warning(
                "no admin user exists: set GLIA_ADMIN_PASSWORD to create %r at start", name
            )

    async def login(
        self, session: AsyncSession, *, username: str, password: str
    ) -> tuple[str, User]:
        row = await session.scalar(select(UserRow).where(UserRow.name == username))
        if row is None or not row.password_hash:
            # Hash anyway so the time taken does not tell which names exist.
            self._hasher.hash(password)
            raise Unauthenticated("wrong user name or password")
        try:
            self._hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise Unauthenticated("wrong user name or password") from None
        if row.disabled:
            raise Unauthenticated(f"user {username!r} is disabled")
        token = await self.issue_token(session, row.id, description="login")
        return token, _user(row)

    async def issue_token(self, session: AsyncSession, user_id: str, *, description: str) -> str:
        now = utcnow()
        row = TokenRow(
            id=str(uuid.uuid4()),
            user_id=user_id,
            description=description,
            created_at=now,
            expires_at=now + self._token_ttl,
        )
        session.add(row)
        await session.commit()
        claims = {"sub": user_id, "jti": row.id, "iat": now, "exp": row.expires_at}
        return jwt.encode(claims, self._secret_key, algorithm=_JWT_ALGORITHM)

    async def identify(self, session: AsyncSession, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._secret_key,
                algorithms=[_JWT_ALGORITHM],
                options={"require": ["jti", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired: log in again") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("invalid token") from None
        result = await session.execute(
            select(TokenRow, UserRow)
            .join(UserRow, UserRow.id == TokenRow.user_id)
            .where(TokenRow.id == claims["jti"])
        )
        found = result.first()
        if found is None:
            raise Unauthenticated("the token was revoked")
        token_row, user_row = found
        if token_row.revoked_at is not None:
            raise Unauthenticated("the token was revoked")
        if user_row.disabled:
            raise Unauthenticated(f"user {user_row.name!r} is disabled")
        return Identity(user=_user(user_row), token_id=token_row.id)

    async def revoke_token(self, session: AsyncSession, token_id: str) -> None:
        row = await session.get(TokenRow, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
            await session.commit()

    async def users_by_ids(self, session: AsyncSession, ids: Sequence[str]) -> list[User | None]:
        rows = await session.scalars(select(UserRow).where(UserRow.id.in_(set(ids))))
        by_id = {row.id: _user(row) for row in rows}
        return [by_id.get(user_id) for user_id in ids]
