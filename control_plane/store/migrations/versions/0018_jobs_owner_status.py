"""jobs: an index on (owner_id, status)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 00:00:00

A submission counts its owner's unfinished jobs against
`GLIA_MAX_UNFINISHED_JOBS_PER_USER`: the count reads this index, not every job the owner
ever ran.
"""
from __future__ import annotations

from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_jobs_owner_status', 'jobs', ['owner_id', 'status'])


def downgrade() -> None:
    op.drop_index('ix_jobs_owner_status', table_name='jobs')
