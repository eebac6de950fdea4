"""Named leases in the database: one process at a time does the work a lease names.

Several API processes may share one database; each cluster still needs exactly one
reconcile loop and one follower. A lease is a row ``(name, holder, expires_at)``: a process
takes it when it is free or expired, keeps it by renewing it before it expires, and loses it
when it stops renewing (it died, or its database went away). Acquiring and renewing are one
conditional UPDATE (or an INSERT for a lease never held), so two processes cannot both win,
on SQLite as on PostgreSQL. Expiry is judged by the clocks of the processes, which is why the
time to live is several renewal intervals long.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from control_plane.store.database import Database
from control_plane.store.models import LeaseRow
from glia.clock import utcnow

logger = logging.getLogger(__name__)


class Leases:
    def __init__(self, db: Database, *, holder: str | None = None) -> None:
        self._db = db
        self.holder = holder or uuid.uuid4().hex

    async def acquire(self, name: str, *, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl_s`` seconds; False if another holds it."""
        now = utcnow()
        until = now + timedelta(seconds=ttl_s)
        async with self._db.session() as session:
            result = await session.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.name == name,
                    or_(LeaseRow.holder == self.holder, LeaseRow.expires_at < now),
                )
                .values(holder=self.holder, expires_at=until)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                await session.commit()
                return True
            session.add(LeaseRow(name=name, holder=self.holder, expires_at=until))
            try:
                await session.commit()
            except IntegrityError:  # held by another process
                await session.rollback()
                return False
            return True

    async def release(self, name: str) -> None:
        """Give the lease up now, so another process need not wait for it to expire."""
        async with self._db.session() as session:
            await session.execute(
                delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == self.holder)
            )
            await session.commit()
