"""Users and tokens.

Passwords are argon2 hashes. Tokens are HS256 JWTs whose ``jti`` is a row in ``tokens``: the
signature proves who issued it, the row lets an admin or ``glia logout`` revoke it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.events import EventBus
from control_plane.rate_limits import RateLimits
from control_plane.services.acl import AclService
from control_plane.services.orgs import OrgsService
from control_plane.store.database import Database
from control_plane.store.models import TokenRow, UserRow
from glia.acl import Action, role_subject, user_subject
from glia.auth import NewUser, PasswordChange, Token, User, UserKind, UserRole
from glia.clock import utcnow
from glia.errors import (
    Conflict,
    Forbidden,
    NotFound,
    QuotaExceeded,
    TooManyRequests,
    Unauthenticated,
)

logger = logging.getLogger(__name__)

# The ACL role admins hold (``role:admin``), named after their platform role.
ADMIN_ROLE = UserRole.ADMIN.value
# Managing users is a grant on the root of the user:// scheme (admins hold it through "*").
USERS_URI = "user://"
_JWT_ALGORITHM = "HS256"
# How long `identify` trusts what it found for a token, and for how many tokens at most.
IDENTITY_CACHE_S = 1.0
IDENTITY_CACHE_SIZE = 10_000
REVOCATIONS_CHANNEL = "auth.revoked"
# The audience of browser sessions on job hosts (`issue_ingress_session`).
INGRESS_AUDIENCE = "glia-ingress"
_GENERATED_PASSWORD_BYTES = 18


@dataclass(frozen=True)
class Identity:
    """Who made a request, and with which token (so logout can revoke exactly that one, and a
    stream can end when it is revoked or expires)."""

    user: User
    token_id: str
    expires_at: datetime


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def user_from_row(row: UserRow) -> User:
    return User(
        id=row.id,
        name=row.name,
        email=row.email,
        role=UserRole(row.role),
        kind=UserKind(row.kind),
        created_at=row.created_at,
    )


class AuthService:
    """Users, passwords and tokens.

    Every request names its token, so `identify` keeps what it found for a token for
    `IDENTITY_CACHE_S` (a second): a revocation evicts it at once in this process and, through
    the bus channel `REVOCATIONS_CHANNEL` (`watch_revocations`), in every other one.
    """

    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        acl: AclService,
        orgs: OrgsService,
        home_cluster: str | None,
        secret_key: str,
        token_ttl_s: int,
        rate_limits: RateLimits,
        login_rate_per_user: str = "10/minute",
        login_rate_per_address: str = "60/minute",
        uid_range: range = range(200_000, 265_536),
        single_user: bool = False,
        ingress_session_ttl_s: int = 12 * 3600,
    ) -> None:
        if len(secret_key) < 32:
            raise ValueError("the token signing key must be at least 32 characters")
        self._db = db
        self._bus = bus
        self._acl = acl
        self._orgs = orgs
        # The cluster each new user's personal org may use.
        self._home_cluster = home_cluster
        self._secret_key = secret_key
        self._token_ttl = timedelta(seconds=token_ttl_s)
        self._ingress_session_ttl = timedelta(seconds=ingress_session_ttl_s)
        self._hasher = PasswordHasher()
        self._identities: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        # Streams that end when their token is revoked: an event per open stream.
        self._revocation_events: dict[str, set[asyncio.Event]] = {}
        self._rate_limits = rate_limits
        self._login_rate_per_user = login_rate_per_user
        self._login_rate_per_address = login_rate_per_address
        self._uid_range = uid_range
        # Jobs of several users would see each other's files (see JobIsolation): one user only.
        self.single_user = single_user

    async def _hash(self, password: str) -> str:
        # argon2 is slow on purpose (~50 ms): never on the event loop.
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def create_user(self, session: AsyncSession, new: NewUser) -> tuple[User, str | None]:
        """Create a user; returns the generated password when none was given."""
        if self.single_user and await session.scalar(select(UserRow.id).limit(1)) is not None:
            raise Conflict(
                "Glia runs in single-user mode: its cluster can neither give each user's jobs "
                "a uid of their own (the server does not run as root) nor sandbox them "
                "(bubblewrap is not installed), so a second user's jobs could read the first "
                "one's files. Run the server as root or install bubblewrap to add users."
            )
        await self._check_name_free(session, new.name)
        if await self._orgs.name_taken(session, new.name):
            raise Conflict(
                f"the name {new.name!r} is taken by an org: user names and org names are one "
                "namespace (each user has a personal org of their name)",
                fields={"name": "taken by an org"},
            )
        generated = None
        password = new.password
        if password is None:
            generated = password = secrets.token_urlsafe(_GENERATED_PASSWORD_BYTES)
        password_hash = await self._hash(password)
        row = await self._insert_user(
            session,
            lambda uid: UserRow(
                id=str(uuid.uuid4()),
                name=new.name,
                email=new.email,
                role=new.role.value,
                password_hash=password_hash,
                uid=uid,
            ),
            personal_org=True,
        )
        user = user_from_row(row)
        clusters = [self._home_cluster] if self._home_cluster else []
        await self._orgs.after_personal_created(user, clusters)
        if new.role is UserRole.ADMIN:
            await self._acl.add_role(user_subject(new.name), role_subject(ADMIN_ROLE))
        return user, generated

    async def create_service_account(
        self, session: AsyncSession, owner: User, name: str, *, org: str | None, project: str | None
    ) -> User:
        """The account row of a service account named ``OWNER/NAME``; it has no password and
        gets no personal org (`ServiceAccountsService` gives it its project and token)."""
        full_name = f"{owner.name}/{name}"
        return user_from_row(
            await self._insert_user(
                session,
                lambda uid: UserRow(
                    id=str(uuid.uuid4()),
                    name=full_name,
                    kind=UserKind.SERVICE_ACCOUNT.value,
                    owner_id=owner.id,
                    org=org,
                    project=project,
                    role=UserRole.USER.value,
                    uid=uid,
                ),
                personal_org=False,
            )
        )

    async def _insert_user(
        self,
        session: AsyncSession,
        make_row: Callable[[int], UserRow],
        *,
        personal_org: bool,
    ) -> UserRow:
        for _attempt in range(5):
            row = make_row(await self._free_uid(session))
            session.add(row)
            if personal_org:
                await self._orgs.create_personal(session, row.id, row.name, self._home_cluster)
            try:
                await session.commit()
                return row
            except IntegrityError:
                await session.rollback()
                await self._check_name_free(session, row.name)
                if personal_org and await self._orgs.name_taken(session, row.name):
                    raise Conflict(f"the name {row.name!r} is taken by an org") from None
                # Another process took the same uid at the same time: take the next one.
        raise Conflict("could not give the new user a uid: try again")

    async def _check_name_free(self, session: AsyncSession, name: str) -> None:
        taken = await session.scalar(select(UserRow.disabled).where(UserRow.name == name))
        if taken is not None:
            why = "belonged to a deleted user" if taken else "is taken"
            raise Conflict(
                f"the name {name!r} {why}: names are never reused, so that nobody inherits "
                "another user's jobs and grants",
                fields={"name": why},
            )

    async def _free_uid(self, session: AsyncSession) -> int:
        highest = await session.scalar(select(func.max(UserRow.uid)))
        uid = self._uid_range.start if highest is None else max(highest + 1, self._uid_range.start)
        if uid not in self._uid_range:
            raise QuotaExceeded(
                f"every uid for jobs is taken ({len(self._uid_range)} users): raise "
                "GLIA_JOB_UID_COUNT"
            )
        return uid

    async def uids_by_ids(self, session: AsyncSession, ids: Sequence[str]) -> dict[str, int]:
        """The job uid of each user (for the gateway to run their jobs as)."""
        rows = await session.execute(select(UserRow.id, UserRow.uid).where(UserRow.id.in_(ids)))
        return {user_id: uid for user_id, uid in rows}

    async def add_user(
        self, session: AsyncSession, caller: User, new: NewUser
    ) -> tuple[User, str | None]:
        """`create_user` on behalf of ``caller``, who must manage users."""
        await self._acl.require(caller.subject, USERS_URI, Action.MANAGE)
        return await self.create_user(session, new)

    async def ensure_admin(
        self, session: AsyncSession, name: str, *, password: str | None = None
    ) -> tuple[User, str | None]:
        """The first admin of a fresh install; returns the generated password only when the
        user was created without one given."""
        row = await session.scalar(select(UserRow).where(UserRow.name == name))
        if row is not None:
            return user_from_row(row), None
        return await self.create_user(
            session, NewUser(name=name, role=UserRole.ADMIN, password=password)
        )

    async def ensure_admin_exists_or_warn(self, session: AsyncSession, name: str) -> None:
        row = await session.scalar(
            select(UserRow.id).where(UserRow.role == UserRole.ADMIN.value).limit(1)
        )
        if row is None:
            logger.warning(
                "no admin user exists: set GLIA_ADMIN_PASSWORD to create %r at start", name
            )

    async def check_password(
        self,
        session: AsyncSession,
        *,
        username: str,
        password: str,
        client_address: str | None = None,
    ) -> UserRow:
        """The user whose name and password these are (Unauthenticated otherwise); attempts
        are rate-limited per user name and per client address (TooManyRequests), whether they
        succeed or not."""
        limits = [(self._login_rate_per_user, ("login-user", username[:128]))]
        if client_address:
            limits.append((self._login_rate_per_address, ("login-address", client_address)))
        for rate, key in limits:
            wait = await self._rate_limits.hit(rate, *key)
            if wait is not None:
                raise TooManyRequests(
                    f"too many login attempts: try again in {max(1, round(wait))} s",
                    retry_after_s=max(1, round(wait)),
                )
        row = await session.scalar(select(UserRow).where(UserRow.name == username))
        if row is None or not row.password_hash:
            # Hash anyway so the time taken does not tell which names exist.
            await self._hash(password)
            raise Unauthenticated("wrong user name or password")
        if not await self._verify(row.password_hash, password):
            raise Unauthenticated("wrong user name or password")
        if row.disabled:
            raise Unauthenticated(f"user {username!r} is disabled")
        return row

    async def login(
        self,
        session: AsyncSession,
        *,
        username: str,
        password: str,
        client_address: str | None = None,
    ) -> tuple[str, User]:
        """A new token for the user; attempts are rate-limited per user name and per client
        address (TooManyRequests), whether they succeed or not."""
        row = await self.check_password(
            session, username=username, password=password, client_address=client_address
        )
        token = await self.issue_token(session, row.id, description="login")
        return token, user_from_row(row)

    async def change_password(
        self, session: AsyncSession, identity: Identity, change: PasswordChange
    ) -> None:
        """Set the caller's own password; the current one must be right (attempts count as
        logins). Every other token of theirs is revoked: whoever knew the old password is
        signed out."""
        name = identity.user.name
        wait = await self._rate_limits.hit(self._login_rate_per_user, "login-user", name)
        if wait is not None:
            raise TooManyRequests(
                f"too many password attempts: try again in {max(1, round(wait))} s",
                retry_after_s=max(1, round(wait)),
            )
        row = await session.get(UserRow, identity.user.id)
        if row is None:
            raise Unauthenticated("log in again")
        if not row.password_hash:  # a service account: its token is not a session to renew
            raise Forbidden("this account has no password: it signs in with a token")
        if not await self._verify(row.password_hash, change.current_password):
            raise Forbidden("the current password is wrong", fields={"currentPassword": "wrong"})
        row.password_hash = await self._hash(change.new_password)
        await session.commit()
        await self.revoke_tokens_of(session, row.id, keep=identity.token_id)

    async def reset_password(
        self, session: AsyncSession, caller: User, name: str
    ) -> tuple[User, str]:
        """A new generated password for user ``name`` (admins only), shown once; their
        tokens are revoked."""
        await self._acl.require(caller.subject, USERS_URI, Action.MANAGE)
        row = await self.user_row(session, name)
        password = secrets.token_urlsafe(_GENERATED_PASSWORD_BYTES)
        row.password_hash = await self._hash(password)
        await session.commit()
        await self.revoke_tokens_of(session, row.id)
        return user_from_row(row), password

    async def user_row(self, session: AsyncSession, name: str) -> UserRow:
        """The row of a user who was not deleted; NotFound otherwise."""
        row = await session.scalar(
            select(UserRow).where(UserRow.name == name, UserRow.disabled.is_(False))
        )
        if row is None:
            raise NotFound(f"user {name!r} not found")
        return row

    async def tokens(self, session: AsyncSession, identity: Identity) -> list[Token]:
        """The caller's own tokens that still work, newest first."""
        rows = await session.scalars(
            select(TokenRow)
            .where(
                TokenRow.user_id == identity.user.id,
                TokenRow.revoked_at.is_(None),
                TokenRow.expires_at > utcnow(),
            )
            .order_by(TokenRow.created_at.desc(), TokenRow.id)
        )
        return [
            Token(
                id=row.id,
                description=row.description,
                created_at=row.created_at,
                expires_at=row.expires_at,
                current=row.id == identity.token_id,
            )
            for row in rows
        ]

    async def revoke_own_token(self, session: AsyncSession, user: User, token_id: str) -> None:
        """Revoke one of the caller's tokens; NotFound for one that is not theirs."""
        row = await session.get(TokenRow, token_id) if _is_uuid(token_id) else None
        if row is None or row.user_id != user.id:
            raise NotFound(f"token {token_id!r} not found")
        await self.revoke_token(session, token_id)

    async def revoke_tokens_of(
        self, session: AsyncSession, user_id: str, *, keep: str | None = None
    ) -> None:
        """Revoke every token of a user but ``keep``."""
        ids = await session.scalars(
            select(TokenRow.id).where(
                TokenRow.user_id == user_id, TokenRow.revoked_at.is_(None), TokenRow.id != keep
            )
        )
        for token_id in list(ids):
            await self.revoke_token(session, token_id)

    async def issue_token(
        self,
        session: AsyncSession,
        user_id: str,
        *,
        description: str,
        ttl: timedelta | None = None,
    ) -> str:
        return (await self.issue_token_with_id(session, user_id, description=description, ttl=ttl))[
            1
        ]

    async def issue_token_with_id(
        self,
        session: AsyncSession,
        user_id: str,
        *,
        description: str,
        ttl: timedelta | None = None,
        extra_claims: Mapping[str, str] | None = None,
    ) -> tuple[str, str]:
        """A new token and its id (what revokes it): an API token, or with ``extra_claims``
        (an audience) one that only what checks that audience accepts."""
        now = utcnow()
        row = TokenRow(
            id=str(uuid.uuid4()),
            user_id=user_id,
            description=description,
            created_at=now,
            expires_at=now + (ttl or self._token_ttl),
        )
        session.add(row)
        await session.commit()
        claims = {"sub": user_id, "jti": row.id, "iat": now, "exp": row.expires_at}
        claims.update(extra_claims or {})
        return row.id, jwt.encode(claims, self._secret_key, algorithm=_JWT_ALGORITHM)

    async def issue_ingress_session(self, session: AsyncSession, user: User, host: str) -> str:
        """A browser's session on one job host name (the ``glia_session`` cookie): accepted
        by the job proxy and ``/auth/forward`` for that host only, never by the API."""
        _token_id, token = await self.issue_token_with_id(
            session,
            user.id,
            description=f"browser session on {host}"[:200],
            ttl=self._ingress_session_ttl,
            extra_claims={"aud": INGRESS_AUDIENCE, "host": host},
        )
        return token

    async def identify_ingress_session(self, token: str, host: str) -> Identity:
        """Who a ``glia_session`` cookie belongs to, on ``host``; Unauthenticated for one
        made for another host, or bad, expired or revoked."""
        claims = self._decode(token, audience=INGRESS_AUDIENCE)
        if claims.get("host") != host:
            raise Unauthenticated("this session is for another host: sign in again")
        return await self._identity(str(claims["jti"]))

    def _decode(self, token: str, *, audience: str | None = None) -> dict[str, object]:
        # An API token has no audience; PyJWT refuses a token with one when none is expected,
        # so a browser session on a job host can never call the API.
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._secret_key,
                algorithms=[_JWT_ALGORITHM],
                audience=audience,
                options={"require": ["jti", "sub", "exp", *(["aud"] if audience else [])]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired: log in again") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("invalid token") from None
        return claims

    async def identify(self, token: str) -> Identity:
        """Who ``token`` belongs to; Unauthenticated for a bad, expired or revoked token."""
        return await self._identity(str(self._decode(token)["jti"]))

    async def _identity(self, token_id: str) -> Identity:
        cached = self._identities.get(token_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        async with self._db.session() as session:
            found = (
                await session.execute(
                    select(TokenRow, UserRow)
                    .join(UserRow, UserRow.id == TokenRow.user_id)
                    .where(TokenRow.id == token_id)
                )
            ).first()
        if found is None:
            raise Unauthenticated("the token was revoked")
        token_row, user_row = found
        if token_row.revoked_at is not None:
            raise Unauthenticated("the token was revoked")
        if token_row.expires_at <= utcnow():
            raise Unauthenticated("the token has expired: log in again")
        if user_row.disabled:
            raise Unauthenticated(f"user {user_row.name!r} is disabled")
        identity = Identity(
            user=user_from_row(user_row), token_id=token_row.id, expires_at=token_row.expires_at
        )
        self._identities[token_id] = (identity, time.monotonic() + IDENTITY_CACHE_S)
        self._identities.move_to_end(token_id)
        while len(self._identities) > IDENTITY_CACHE_SIZE:
            self._identities.popitem(last=False)
        return identity

    async def revoke_token(self, session: AsyncSession, token_id: str) -> None:
        row = await session.get(TokenRow, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
            await session.commit()
        self._revoked(token_id)
        try:
            await self._bus.publish(REVOCATIONS_CHANNEL, {"token_id": token_id})
        except Exception:  # the revocation is stored; other processes' caches expire in a second
            logger.exception("auth: could not announce a revoked token")

    async def forget_revoked(self, token_id: str) -> None:
        """Evict a token revoked in the store (here and, through the bus, everywhere)."""
        self._revoked(token_id)
        try:
            await self._bus.publish(REVOCATIONS_CHANNEL, {"token_id": token_id})
        except Exception:  # the revocation is stored; other processes' caches expire in a second
            logger.exception("auth: could not announce a revoked token")

    async def watch_revocations(self) -> None:
        """Forget the tokens other processes revoke (a background task; returns only when
        cancelled or when its subscription fails)."""
        async with self._bus.subscribe(REVOCATIONS_CHANNEL) as revocations:
            self._identities.clear()  # whatever was revoked before this point
            async for message in revocations:
                token_id = message.get("token_id")
                if isinstance(token_id, str):
                    self._revoked(token_id)

    def _revoked(self, token_id: str) -> None:
        self._identities.pop(token_id, None)
        for event in self._revocation_events.get(token_id, ()):
            event.set()

    @contextlib.contextmanager
    def revocation(self, token_id: str) -> Iterator[asyncio.Event]:
        """An event set when ``token_id`` is revoked, here or (through the bus) elsewhere."""
        event = asyncio.Event()
        self._revocation_events.setdefault(token_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._revocation_events.get(token_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._revocation_events[token_id]
