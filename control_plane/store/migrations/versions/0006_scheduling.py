"""scheduling: preset sizes and prices, job priorities, queue, restarts; cluster life span

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-27 18:45:00

Presets get a GPU model, a shared-memory size, a price in credits per hour, and whether their
jobs are preemptible and wait in the queue. Jobs get their priority (JobPriority.rank: low 0,
normal 1, high 2), schedule timeout, restart policy and count, and ``scheduled_at``: when the
scheduler handed them to their cluster. Jobs that exist were handed to their cluster at
submission, so they get their creation time there. Clusters get the default life span of
their jobs.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clusters') as batch:
        batch.add_column(sa.Column('default_life_span_s', sa.Float(), nullable=True))
    with op.batch_alter_table('presets') as batch:
        batch.add_column(sa.Column('gpu_model', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('shm_mb', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('credits_per_hour', sa.Float(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('preemptible', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('scheduler_enabled', sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('gpu_model', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('shm_mb', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('priority', sa.Integer(), nullable=False,
                                   server_default='1'))
        batch.add_column(sa.Column('schedule_timeout_s', sa.Float(), nullable=True))
        batch.add_column(sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('restart_policy', sa.String(length=16), nullable=False,
                                   server_default='never'))
        batch.add_column(sa.Column('restart_count', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.create_index('ix_jobs_queue', ['cluster_id', 'status', 'scheduled_at'],
                           unique=False)
    jobs = sa.table('jobs', sa.column('scheduled_at', sa.DateTime(timezone=True)),
                    sa.column('created_at', sa.DateTime(timezone=True)))
    op.execute(sa.update(jobs).values(scheduled_at=jobs.c.created_at))
    # The defaults filled the rows that exist; new rows get theirs from the application.
    with op.batch_alter_table('presets') as batch:
        batch.alter_column('credits_per_hour', existing_type=sa.Float(), server_default=None)
        batch.alter_column('preemptible', existing_type=sa.Boolean(), server_default=None)
        batch.alter_column('scheduler_enabled', existing_type=sa.Boolean(),
                           server_default=None)
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('priority', existing_type=sa.Integer(), server_default=None)
        batch.alter_column('restart_policy', existing_type=sa.String(length=16),
                           server_default=None)
        batch.alter_column('restart_count', existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_index('ix_jobs_queue')
        batch.drop_column('restart_count')
        batch.drop_column('restart_policy')
        batch.drop_column('scheduled_at')
        batch.drop_column('schedule_timeout_s')
        batch.drop_column('priority')
        batch.drop_column('shm_mb')
        batch.drop_column('gpu_model')
    with op.batch_alter_table('presets') as batch:
        batch.drop_column('scheduler_enabled')
        batch.drop_column('preemptible')
        batch.drop_column('credits_per_hour')
        batch.drop_column('shm_mb')
        batch.drop_column('gpu_model')
    with op.batch_alter_table('clusters') as batch:
        batch.drop_column('default_life_span_s')
