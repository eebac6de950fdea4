"""The rows of buckets and their credentials (`control_plane.services.blobs`).

Declared on the one `Base` of `control_plane.store.models`, which imports this module at its
end so that the metadata (and Alembic) always holds these tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control_plane.store.models import Base
from glia.clock import utcnow


class BlobSecretRow(Base):
    """An imported bucket's provider credentials, encrypted with the server's secret key:
    never returned by the API, never logged."""

    __tablename__ = "blob_secrets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BucketRow(Base):
    """A bucket of a project on a cluster; its objects are the provider's."""

    __tablename__ = "buckets"
    __table_args__ = (
        UniqueConstraint("cluster", "org", "project", "name", name="uq_buckets_place"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64))
    org: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    # "filesystem" or "s3" (glia.blobs.BlobProvider)
    provider: Mapped[str] = mapped_column(String(16))
    # The bucket's name at its provider.
    physical_name: Mapped[str] = mapped_column(String(255))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    # An imported bucket's endpoint, region and credentials.
    endpoint_url: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(String(64))
    credentials_ref: Mapped[str | None] = mapped_column(
        ForeignKey("blob_secrets.id", ondelete="SET NULL")
    )
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    secret: Mapped[BlobSecretRow | None] = relationship(lazy="joined")


class BlobCredentialRow(Base):
    """An access key pair for programs outside Glia; the secret is kept as a SHA-256 (it is
    random and long: a slow hash would buy nothing)."""

    __tablename__ = "blob_credentials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    access_key_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # The ids of the buckets it covers.
    bucket_ids: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
