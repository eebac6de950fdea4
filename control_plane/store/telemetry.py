"""The records of jobs' telemetry (`glia.telemetry`): raw samples, then one-minute points."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.store.models import Base

RAW = 1  # span_s of a sample as the cluster took it
MINUTE = 60  # span_s of a point made of a minute's samples


class TelemetryRow(Base):
    """A sample (``span_s`` 1, ``samples`` 1) or a one-minute point (``span_s`` 60) of a job.

    Times are milliseconds since the epoch (UTC) in an integer, so that a history answer
    groups rows into steps with integer arithmetic, alike on SQLite and PostgreSQL. Means are
    kept with their count (``samples``) so that points merge exactly; no foreign key to
    ``jobs``: the rows are written in bulk from the cluster's feed and removed by retention.
    """

    __tablename__ = "job_telemetry"
    __table_args__ = (Index("ix_job_telemetry_cluster_span_at", "cluster", "span_s", "at_ms"),)

    job_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    span_s: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    at_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64))
    samples: Mapped[int] = mapped_column(Integer)
    cpu_percent: Mapped[float] = mapped_column(Float)  # the mean over ``samples``
    memory_bytes: Mapped[int] = mapped_column(BigInteger)  # the most
    gpu_percent: Mapped[float | None] = mapped_column(Float)  # the mean over gpu_samples
    gpu_samples: Mapped[int] = mapped_column(Integer, default=0)
    gpu_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)  # the most
