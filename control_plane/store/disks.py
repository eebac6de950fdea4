"""The records of disks (`glia.disks`); their bytes are their cluster's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.store.models import Base
from glia.clock import utcnow


class DiskRow(Base):
    """A disk of a project on a cluster. ``used_by`` is the unfinished job that holds it: set
    by a compare-and-set when the scheduler hands the job to the cluster, cleared when the
    job ends, so two jobs never hold one disk."""

    __tablename__ = "disks"
    __table_args__ = (
        Index(
            "uq_disks_place_name",
            "cluster",
            "org",
            "project",
            "name",
            unique=True,
            sqlite_where=text("name IS NOT NULL"),
            postgresql_where=text("name IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(41), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64))
    cluster: Mapped[str] = mapped_column(String(64))
    org: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    status_description: Mapped[str | None] = mapped_column(Text)
    timeout_unused_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(40), index=True)
