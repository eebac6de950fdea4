"""disks

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 21:30:00

A disk's record (glia/disks.py): its place, size, status, unused timeout and the job that
holds it; its bytes are its cluster's.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'disks',
        sa.Column('id', sa.String(length=41), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=True),
        sa.Column('cluster', sa.String(length=64), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False),
        sa.Column('project', sa.String(length=64), nullable=False),
        sa.Column('owner_id', sa.String(length=36), nullable=False),
        sa.Column('size_bytes', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('status_description', sa.Text(), nullable=True),
        sa.Column('timeout_unused_s', sa.Float(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('used_by', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_disks_owner_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_disks')),
    )
    op.create_index('ix_disks_used_by', 'disks', ['used_by'], unique=False)
    op.create_index('uq_disks_place_name', 'disks', ['cluster', 'org', 'project', 'name'],
                    unique=True, sqlite_where=sa.text('name IS NOT NULL'),
                    postgresql_where=sa.text('name IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('uq_disks_place_name', table_name='disks')
    op.drop_index('ix_disks_used_by', table_name='disks')
    op.drop_table('disks')
