"""job telemetry

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27 22:00:00

Jobs' telemetry (glia/telemetry.py): raw samples and one-minute points, per cluster.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_telemetry',
        sa.Column('job_id', sa.String(length=40), nullable=False),
        sa.Column('span_s', sa.SmallInteger(), nullable=False),
        sa.Column('at_ms', sa.BigInteger(), nullable=False),
        sa.Column('cluster', sa.String(length=64), nullable=False),
        sa.Column('samples', sa.Integer(), nullable=False),
        sa.Column('cpu_percent', sa.Float(), nullable=False),
        sa.Column('memory_bytes', sa.BigInteger(), nullable=False),
        sa.Column('gpu_percent', sa.Float(), nullable=True),
        sa.Column('gpu_samples', sa.Integer(), nullable=False),
        sa.Column('gpu_memory_bytes', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('job_id', 'span_s', 'at_ms', name=op.f('pk_job_telemetry')),
    )
    op.create_index('ix_job_telemetry_cluster_span_at', 'job_telemetry',
                    ['cluster', 'span_s', 'at_ms'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_job_telemetry_cluster_span_at', table_name='job_telemetry')
    op.drop_table('job_telemetry')
