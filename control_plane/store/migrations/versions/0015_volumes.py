"""volumes: what a job mounts, and its variables set from secrets

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27 21:45:00

A job's volumes (storage URIs, disk ids, secret keys, with where they are mounted) and its
secret environment variables (names and keys, never values), resolved at submission. Jobs
that exist mount nothing.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('volumes', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('secret_env', sa.JSON(), nullable=False,
                                   server_default='[]'))
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('volumes', existing_type=sa.JSON(), server_default=None)
        batch.alter_column('secret_env', existing_type=sa.JSON(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('secret_env')
        batch.drop_column('volumes')
