"""job tty

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 22:00:00

``glia run -t``: a job under a terminal the cluster holds. Jobs that exist have none.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('tty', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('tty', existing_type=sa.Boolean(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('tty')
