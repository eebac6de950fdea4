"""The rows of secrets (`control_plane.services.secrets`).

Declared on the one `Base` of `control_plane.store.models`, which imports this module at its
end so that the metadata (and Alembic) always holds this table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.store.models import Base
from glia.clock import utcnow


class SecretRow(Base):
    """A project's secret on a cluster: its value sealed with the secrets keyring (a Fernet
    token), never returned by the API, never logged."""

    __tablename__ = "secrets"
    __table_args__ = (
        UniqueConstraint("cluster", "org", "project", "key", name="uq_secrets_place"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64))
    org: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(253))
    ciphertext: Mapped[str] = mapped_column(Text)
    # Counts every write of the value: a rotation re-encrypts a row only if nobody wrote it
    # since it was read.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
