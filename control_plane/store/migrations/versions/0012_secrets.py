"""secrets of projects, sealed with the secrets keyring

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 21:10:00

``secrets`` holds each secret's place (cluster, org, project), key and value as a Fernet
token of the secrets keyring (control_plane/keyring.py); ``version`` counts the writes of
the value, so a rotation never puts back a value written meanwhile.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'secrets',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('cluster', sa.String(length=64), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False),
        sa.Column('project', sa.String(length=64), nullable=False),
        sa.Column('key', sa.String(length=253), nullable=False),
        sa.Column('ciphertext', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=36), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['updated_by'], ['users.id'],
                                name=op.f('fk_secrets_updated_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_secrets')),
        sa.UniqueConstraint('cluster', 'org', 'project', 'key', name='uq_secrets_place'),
    )


def downgrade() -> None:
    op.drop_table('secrets')
