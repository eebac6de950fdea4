"""Managing users: list, look up, change and delete them (admins), and see them (everyone).

Creating users, passwords and tokens are `AuthService`'s. A deleted user is disabled rather
than removed: their jobs keep their history and their name stays taken, so that nobody
inherits their jobs' URIs (`job://CLUSTER/ORG/<name>/…`) and the grants on them.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.acl import AclService
from control_plane.services.auth import ADMIN_ROLE, USERS_URI, AuthService, user_from_row
from control_plane.services.jobs import JobsService
from control_plane.services.orgs import OrgsService
from control_plane.services.pages import Order, SortKey, keyset_page
from control_plane.store.models import UserRow
from glia.acl import Action, role_subject
from glia.auth import User, UserKind, UserRole, UserUpdate
from glia.errors import Conflict, NotFound
from glia.jobs import UNFINISHED_STATUSES, JobFilter
from glia.pages import MAX_PAGE_SIZE, Page, PageRequest

logger = logging.getLogger(__name__)

# A deleted user's jobs are stopped this many at a time (each stop waits a little for its end).
_KILLS_AT_ONCE = 16

_BY_NAME = Order[User](
    name="NAME", keys=[SortKey[User](UserRow.name, lambda user: user.name)], descending=False
)


class UsersService:
    def __init__(
        self, *, acl: AclService, auth: AuthService, jobs: JobsService, orgs: OrgsService
    ) -> None:
        self._acl = acl
        self._orgs = orgs
        self._auth = auth
        self._jobs = jobs

    async def _require_manager(self, caller: User) -> None:
        await self._acl.require(caller.subject, USERS_URI, Action.MANAGE)

    async def list(self, session: AsyncSession, caller: User, page: PageRequest) -> Page[User]:
        """Every user but the deleted ones, by name (admins only)."""
        await self._require_manager(caller)
        active = UserRow.disabled.is_(False) & (UserRow.kind == UserKind.USER.value)
        total = await session.scalar(select(func.count()).where(active)) or 0
        return await keyset_page(
            session,
            select(UserRow).where(active),
            order=_BY_NAME,
            request=page,
            total=total,
            to_item=lambda found: user_from_row(found[0]),
        )

    async def get(self, session: AsyncSession, caller: User, name: str) -> User:
        """A user by name (anyone signed in may look one up, to share with them); a service
        account only for those who may see it (NotFound for others, as for none)."""
        row = await self._auth.user_row(session, name)
        if not await self._visible(caller, row):
            raise NotFound(f"user {name!r} not found")
        return user_from_row(row)

    async def by_id(self, session: AsyncSession, caller: User, user_id: str) -> User | None:
        """A user who was not deleted, by id (a service account as in `get`)."""
        row = await session.get(UserRow, user_id)
        if row is None or row.disabled or not await self._visible(caller, row):
            return None
        return user_from_row(row)

    async def _visible(self, caller: User, row: UserRow) -> bool:
        """A service account is its owner's, itself's and user managers' to see, as
        `ServiceAccountsService.get` answers."""
        if row.kind != UserKind.SERVICE_ACCOUNT.value or caller.id in (row.id, row.owner_id):
            return True
        return await self._acl.check(caller.subject, USERS_URI, Action.MANAGE)

    async def update(
        self, session: AsyncSession, caller: User, name: str, update: UserUpdate
    ) -> User:
        """Change a user's email or role (admins only); an admin cannot demote themself, so
        that the platform keeps someone who can manage it."""
        await self._require_manager(caller)
        row = await self._auth.user_row(session, name)
        if update.email is not None:
            row.email = update.email
        if update.role is not None and update.role.value != row.role:
            if row.id == caller.id:
                raise Conflict(
                    "you cannot change your own role: another admin can",
                    fields={"role": "your own"},
                )
            row.role = update.role.value
        await session.commit()
        member, admins = user_from_row(row).subject, role_subject(ADMIN_ROLE)
        if row.role == UserRole.ADMIN.value:
            await self._acl.add_role(member, admins)
        else:
            await self._acl.remove_role(member, admins)
        return user_from_row(row)

    async def delete(self, session: AsyncSession, caller: User, name: str) -> tuple[User, int]:
        """Delete a user (admins only, not themself): their unfinished jobs are stopped, their
        tokens revoked, their grants and memberships dropped, their personal org closed and
        their service accounts deleted. Returns the user and how many jobs were stopped."""
        await self._require_manager(caller)
        row = await self._auth.user_row(session, name)
        if row.id == caller.id:
            raise Conflict("you cannot delete yourself: another admin can", fields={"name": "you"})
        if row.kind != UserKind.USER.value:
            raise NotFound(f"user {name!r} not found: {name!r} is a service account")
        stopped = 0
        accounts = await session.scalars(
            select(UserRow).where(UserRow.owner_id == row.id, UserRow.disabled.is_(False))
        )
        for account in list(accounts):
            stopped += await self.deactivate(session, caller, account)
        stopped += await self.deactivate(session, caller, row)
        await self._orgs.close_personal(session, row.id)
        return user_from_row(row), stopped

    async def deactivate(self, session: AsyncSession, caller: User, row: UserRow) -> int:
        """Disable a user or service account for good: no new token or job from the moment it
        is committed, its tokens revoked (ending its open streams), its grants and role links
        dropped, its unfinished jobs stopped by ``caller`` (who must be able to). Returns how
        many jobs were stopped."""
        user = user_from_row(row)
        row.disabled = True
        await session.commit()  # no new token or job from here on
        await self._auth.revoke_tokens_of(session, row.id)
        await self._acl.remove_subjects([user.subject])
        unfinished = JobFilter(statuses=tuple(UNFINISHED_STATUSES), owner=user.name)
        job_ids: list[str] = []
        after = None
        while True:
            page = await self._jobs.list(
                session, caller, unfinished, PageRequest(first=MAX_PAGE_SIZE, after=after)
            )
            job_ids += [job.id for job in page.items]
            if not page.has_next_page:
                break
            after = page.end_cursor
        gate = asyncio.Semaphore(_KILLS_AT_ONCE)

        async def stop(job_id: str) -> bool:
            async with gate:
                try:
                    await self._jobs.kill(caller, job_id)
                except Exception:
                    logger.exception("could not stop job %s of deleted %s", job_id, user.name)
                    return False
                return True

        return sum(await asyncio.gather(*(stop(job_id) for job_id in job_ids)))
