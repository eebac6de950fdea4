"""Service accounts: programs (CI, a deployed app) acting with the permissions they were given.

A service account is a user row of kind ``service_account`` named ``OWNER/NAME``: it signs in
only with the token made with it, is a grant subject like any user (``user:alice/ci``), and
joins the project it was made for with the role asked (the project's default otherwise).
Its owner (and platform admins) see and delete it; deleting it, or its owner, revokes its
tokens at once, ending its open subscriptions.
"""

from __future__ import annotations

import builtins
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.acl import AclService
from control_plane.services.auth import USERS_URI, AuthService
from control_plane.services.projects import ProjectsService
from control_plane.services.users import UsersService
from control_plane.store.models import UserRow
from glia.acl import Action
from glia.auth import User, UserKind
from glia.errors import BadInput, Forbidden, NotFound
from glia.tenancy import NAME_RE, ProjectRole, ServiceAccount

# How many service accounts one user may have at once.
MAX_SERVICE_ACCOUNTS_PER_USER = 100


def service_account_from_row(row: UserRow, owner: str) -> ServiceAccount:
    return ServiceAccount(
        name=row.name,
        owner=owner,
        org=row.org,
        project=row.project,
        created_at=row.created_at,
    )


class ServiceAccountsService:
    def __init__(
        self,
        *,
        acl: AclService,
        auth: AuthService,
        users: UsersService,
        projects: ProjectsService,
        token_ttl_s: int,
    ) -> None:
        self._acl = acl
        self._auth = auth
        self._users = users
        self._projects = projects
        self._token_ttl = timedelta(seconds=token_ttl_s)

    async def create(
        self,
        session: AsyncSession,
        caller: User,
        name: str,
        *,
        org: str | None = None,
        project: str | None = None,
        role: ProjectRole | None = None,
    ) -> tuple[ServiceAccount, str]:
        """A new service account of the caller's, and its token (shown once). With a
        project, it becomes a member of it (the caller must be able to add members)."""
        if caller.kind is not UserKind.USER:
            raise Forbidden("a service account cannot make service accounts")
        if not NAME_RE.fullmatch(name):
            raise BadInput(
                f"invalid service account name {name!r}: lowercase letters, digits, '-' and "
                "'_', starting with a letter, at most 63 characters",
                fields={"name": "invalid"},
            )
        if (project is None) != (org is None):
            raise BadInput("give both the org and the project, or neither", fields={"org": ""})
        owned = await session.scalars(
            select(UserRow.id).where(UserRow.owner_id == caller.id, UserRow.disabled.is_(False))
        )
        if len(list(owned)) >= MAX_SERVICE_ACCOUNTS_PER_USER:
            raise BadInput(
                f"you have {MAX_SERVICE_ACCOUNTS_PER_USER} service accounts, the most one "
                "user may have: delete one first",
                fields={"name": "too many"},
            )
        if org is not None and project is not None:
            # Before anything is made: NotFound or Forbidden when the caller cannot add it.
            target = await self._projects.row(session, caller, org, project)
            wanted = role or ProjectRole(target.default_role)
            needed = Action.MANAGE if wanted is ProjectRole.ADMIN else Action.WRITE
            await self._acl.require(caller.subject, f"project://{org}/{project}", needed)
        account = await self._auth.create_service_account(
            session, caller, name, org=org, project=project
        )
        if org is not None and project is not None:
            await self._projects.add_member(session, caller, org, project, account.name, role)
        token = await self._auth.issue_token(
            session, account.id, description="service account", ttl=self._token_ttl
        )
        row = await session.get(UserRow, account.id)
        assert row is not None
        return service_account_from_row(row, caller.name), token

    async def list(self, session: AsyncSession, caller: User) -> builtins.list[ServiceAccount]:
        """The caller's service accounts (every one, for an admin), by name."""
        query = select(UserRow, UserRow.owner_id).where(
            UserRow.kind == UserKind.SERVICE_ACCOUNT.value, UserRow.disabled.is_(False)
        )
        if not await self._acl.check(caller.subject, USERS_URI, Action.MANAGE):
            query = query.where(UserRow.owner_id == caller.id)
        rows = (await session.execute(query.order_by(UserRow.name))).all()
        return [service_account_from_row(row, row.name.split("/", 1)[0]) for row, _ in rows]

    async def _row(self, session: AsyncSession, caller: User, name: str) -> UserRow:
        full_name = name if "/" in name else f"{caller.name}/{name}"
        row = await session.scalar(
            select(UserRow).where(
                UserRow.name == full_name,
                UserRow.kind == UserKind.SERVICE_ACCOUNT.value,
                UserRow.disabled.is_(False),
            )
        )
        mine = row is not None and row.owner_id == caller.id
        if row is None or not (
            mine or await self._acl.check(caller.subject, USERS_URI, Action.MANAGE)
        ):
            raise NotFound(f"service account {name!r} not found")
        return row

    async def get(self, session: AsyncSession, caller: User, name: str) -> ServiceAccount:
        """One of the caller's service accounts: ``ci`` or ``alice/ci``."""
        row = await self._row(session, caller, name)
        return service_account_from_row(row, row.name.split("/", 1)[0])

    async def delete(self, session: AsyncSession, caller: User, name: str) -> ServiceAccount:
        """Delete a service account: its tokens stop working at once, its grants go, its
        unfinished jobs are stopped."""
        row = await self._row(session, caller, name)
        account = service_account_from_row(row, row.name.split("/", 1)[0])
        await self._users.deactivate(session, caller, row)
        return account
