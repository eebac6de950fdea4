"""buckets of projects, imported buckets' provider credentials, access keys for buckets

Revision ID: 0008
Revises: 0004
Create Date: 2026-11-27 18:40:00

``buckets`` holds each bucket's name, place (cluster, org, project), provider and the name it
has there; an imported bucket's provider credentials are in ``blob_secrets``, encrypted.
``blob_credentials`` holds the access keys made for programs outside Glia (the secret as a
SHA-256).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'blob_secrets',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('ciphertext', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_blob_secrets')),
    )
    op.create_table(
        'buckets',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('cluster', sa.String(length=64), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False),
        sa.Column('project', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('physical_name', sa.String(length=255), nullable=False),
        sa.Column('public', sa.Boolean(), nullable=False),
        sa.Column('endpoint_url', sa.Text(), nullable=True),
        sa.Column('region', sa.String(length=64), nullable=True),
        sa.Column('credentials_ref', sa.String(length=36), nullable=True),
        sa.Column('created_by', sa.String(length=36), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'],
                                name=op.f('fk_buckets_created_by_users')),
        sa.ForeignKeyConstraint(['credentials_ref'], ['blob_secrets.id'],
                                name=op.f('fk_buckets_credentials_ref_blob_secrets'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_buckets')),
        sa.UniqueConstraint('cluster', 'org', 'project', 'name', name='uq_buckets_place'),
    )
    op.create_table(
        'blob_credentials',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('owner_id', sa.String(length=36), nullable=False),
        sa.Column('access_key_id', sa.String(length=64), nullable=False),
        sa.Column('secret_hash', sa.String(length=128), nullable=False),
        sa.Column('read_only', sa.Boolean(), nullable=False),
        sa.Column('bucket_ids', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'],
                                name=op.f('fk_blob_credentials_owner_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_blob_credentials')),
        sa.UniqueConstraint('access_key_id', name=op.f('uq_blob_credentials_access_key_id')),
    )
    with op.batch_alter_table('blob_credentials') as batch:
        batch.create_index(batch.f('ix_blob_credentials_owner_id'), ['owner_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('blob_credentials') as batch:
        batch.drop_index(batch.f('ix_blob_credentials_owner_id'))
    op.drop_table('blob_credentials')
    op.drop_table('buckets')
    op.drop_table('blob_secrets')
