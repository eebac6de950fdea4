"""cluster life cycle: clusters' config, gateway secret and health

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 00:00:00

Clusters registered through the Config API: their runtime, storage and registry endpoints,
their gateway's URL (or `local`) and sealed shared secret, why they are failed, and the last
heartbeat and capacity their gateway reported. The one cluster that existed (status
`ready`, gateway `embedded`) becomes `deployed` with a `local` gateway.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clusters') as batch:
        batch.alter_column('gateway', existing_type=sa.String(length=16),
                           type_=sa.String(length=2048), existing_nullable=False)
        batch.add_column(sa.Column('status_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('runtime', sa.String(length=16), nullable=False,
                                   server_default='local'))
        batch.add_column(sa.Column('storage_url', sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column('registry_url', sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column('gateway_secret', sa.Text(), nullable=True))
        batch.add_column(sa.Column('last_heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('capacity', sa.JSON(), nullable=True))
    with op.batch_alter_table('clusters') as batch:
        batch.alter_column('runtime', existing_type=sa.String(length=16), server_default=None)
    op.execute("UPDATE clusters SET status = 'deployed' WHERE status = 'ready'")
    op.execute("UPDATE clusters SET gateway = 'local' WHERE gateway = 'embedded'")


def downgrade() -> None:
    op.execute("UPDATE clusters SET gateway = 'embedded' WHERE gateway = 'local'")
    op.execute("UPDATE clusters SET status = 'ready'")
    # A cluster registered with a URL keeps its row (its jobs refer to it), as "remote".
    op.execute("UPDATE clusters SET gateway = 'remote' WHERE gateway <> 'embedded'")
    with op.batch_alter_table('clusters') as batch:
        batch.drop_column('capacity')
        batch.drop_column('last_heartbeat_at')
        batch.drop_column('gateway_secret')
        batch.drop_column('registry_url')
        batch.drop_column('storage_url')
        batch.drop_column('runtime')
        batch.drop_column('status_reason')
        batch.alter_column('gateway', existing_type=sa.String(length=2048),
                           type_=sa.String(length=16), existing_nullable=False)
