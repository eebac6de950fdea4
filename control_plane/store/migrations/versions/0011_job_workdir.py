"""a job's working directory in its project's storage (glia run's synced workdir)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 21:05:00

Jobs that exist get none: they start where they started before (their ``working_dir`` or a
scratch directory).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('storage_workdir', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('storage_workdir')
