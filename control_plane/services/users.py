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
from control_plane.services.pages import Order, SortKey, keyset_page
from control_plane.store.models import UserRow
from glia.acl import Action, role_subject
from glia.auth import User, UserRole, UserUpdate
from glia.errors import Conflict
from glia.jobs import UNFINISHED_STATUSES, JobFilter
from glia.pages import MAX_PAGE_SIZE, Page, PageRequest

logger = logging.getLogger(__name__)

# A deleted user's jobs are stopped this many at a time (each stop waits a little for its end).
_KILLS_AT_ONCE = 16

_BY_NAME = Order[User](
    name="NAME", keys=[SortKey[User](UserRow.name, lambda user: user.name)], descending=False
)


class UsersService:
    def __init__(self, *, acl: AclService, auth: AuthService, jobs: JobsService) -> None:
        self._acl = acl
        self._auth = auth
        self._jobs = jobs

    async def _require_manager(self, caller: User) -> None:
        await self._acl.require(caller.subject, USERS_URI, Action.MANAGE)

    async def list(self, session: AsyncSession, caller: User, page: PageRequest) -> Page[User]:
        """Every user but the deleted ones, by name (admins only)."""
        await self._require_manager(caller)
        active = UserRow.disabled.is_(False)
        total = await session.scalar(select(func.count()).where(active)) or 0
        return await keyset_page(
            session,
            select(UserRow).where(active),
            order=_BY_NAME,
            request=page,
            total=total,
            to_item=lambda found: user_from_row(found[0]),
        )

    async def get(self, session: AsyncSession, name: str) -> User:
        """A user by name (anyone signed in may look one up, to share with them)."""
        return user_from_row(await self._auth.user_row(session, name))

    async def by_id(self, session: AsyncSession, user_id: str) -> User | None:
        """A user who was not deleted, by id."""
        row = await session.get(UserRow, user_id)
        return user_from_row(row) if row is not None and not row.disabled else None

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
        tokens revoked, their grants dropped. Returns the user and how many jobs were stopped."""
        await self._require_manager(caller)
        row = await self._auth.user_row(session, name)
        if row.id == caller.id:
            raise Conflict("you cannot delete yourself: another admin can", fields={"name": "you"})
        user = user_from_row(row)
        row.disabled = True
        await session.commit()  # no new token or job from here on
        await self._auth.revoke_tokens_of(session, row.id)
        for uri, _action in await self._acl.grants_of(user.subject):
            await self._acl.revoke(user.subject, uri)
        for role in await self._acl.roles_of(user.subject):
            await self._acl.remove_role(user.subject, role)
        # The caller manages users, and so reads every job: they find and stop the jobs.
        unfinished = JobFilter(statuses=tuple(UNFINISHED_STATUSES), owner=name)
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
                    logger.exception("could not stop job %s of deleted user %s", job_id, name)
                    return False
                return True

        stopped = sum(await asyncio.gather(*(stop(job_id) for job_id in job_ids)))
        return user, stopped
