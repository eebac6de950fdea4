"""HTTP exposure of jobs (port, auth, host label, URL) and --pass-config's token

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-27 18:45:00

Jobs that exist get no port (they are not exposed), ``http_auth`` true and ``pass_config``
false: what a submission without those options asks for.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('http_port', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('http_auth', sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.add_column(sa.Column('http_host', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('http_url', sa.Text(), nullable=True))
        batch.add_column(sa.Column('pass_config', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('config_token_id', sa.String(length=36), nullable=True))
        batch.create_index(batch.f('ix_jobs_http_host'), ['http_host'], unique=False)
    # The defaults filled the rows that exist; new rows get theirs from the application.
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('http_auth', existing_type=sa.Boolean(), server_default=None)
        batch.alter_column('pass_config', existing_type=sa.Boolean(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_index(batch.f('ix_jobs_http_host'))
        batch.drop_column('config_token_id')
        batch.drop_column('pass_config')
        batch.drop_column('http_url')
        batch.drop_column('http_host')
        batch.drop_column('http_auth')
        batch.drop_column('http_port')
