"""users.uid for jobs to run as; pids limits; idempotent job submission

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:00:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Users that exist already get uids from the default GLIA_JOB_UID_BASE on, oldest first.
UID_BASE = 200_000


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('uid', sa.Integer(), nullable=True))
    users = sa.table('users', sa.column('id', sa.String), sa.column('uid', sa.Integer),
                     sa.column('created_at', sa.DateTime(timezone=True)))
    connection = op.get_bind()
    ids = connection.execute(
        sa.select(users.c.id).order_by(users.c.created_at, users.c.id)
    ).scalars().all()
    for offset, user_id in enumerate(ids):
        connection.execute(
            sa.update(users).where(users.c.id == user_id).values(uid=UID_BASE + offset)
        )
    with op.batch_alter_table('users') as batch:
        batch.alter_column('uid', existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint(batch.f('uq_users_uid'), ['uid'])

    with op.batch_alter_table('presets') as batch:
        batch.add_column(sa.Column('pids_limit', sa.Integer(), nullable=False,
                                   server_default='1024'))
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('pids_limit', sa.Integer(), nullable=False,
                                   server_default='1024'))
        batch.add_column(sa.Column('uid', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('idempotency_key', sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            'uq_jobs_owner_idempotency_key', ['owner_id', 'idempotency_key']
        )
    # The defaults filled the rows that exist; new rows get theirs from the application.
    with op.batch_alter_table('presets') as batch:
        batch.alter_column('pids_limit', existing_type=sa.Integer(), server_default=None)
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('pids_limit', existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_constraint('uq_jobs_owner_idempotency_key', type_='unique')
        batch.drop_column('idempotency_key')
        batch.drop_column('uid')
        batch.drop_column('pids_limit')
    with op.batch_alter_table('presets') as batch:
        batch.drop_column('pids_limit')
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint(batch.f('uq_users_uid'), type_='unique')
        batch.drop_column('uid')
