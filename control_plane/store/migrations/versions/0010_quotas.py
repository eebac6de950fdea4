"""quotas and credits; preemptible jobs

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 21:00:00

A ``quotas`` row holds the limits an admin set at one level of the tenancy (glia/quotas.py).
Jobs get what quotas and credits need: whether they wait for a seat, their price per hour
(their preset's at submission), how far their run time is paid for and what they spent; and
whether they may be preempted (their preset's). Jobs that exist hold their seats, cost
nothing and are not preemptible.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'quotas',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('level', sa.String(length=16), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=True),
        sa.Column('cluster', sa.String(length=64), nullable=True),
        sa.Column('user', sa.String(length=64), nullable=True),
        sa.Column('max_running_jobs', sa.Integer(), nullable=True),
        sa.Column('credits_micro', sa.BigInteger(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_quotas')),
    )
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('preemptible', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('seat_wait', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('credits_per_hour', sa.Float(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('charged_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('credits_spent_micro', sa.BigInteger(), nullable=False,
                                   server_default='0'))
        batch.create_index('ix_jobs_org_status', ['org', 'status'], unique=False)
    # The defaults filled the rows that exist; new rows get theirs from the application.
    with op.batch_alter_table('jobs') as batch:
        for name, kind in (('preemptible', sa.Boolean()), ('seat_wait', sa.Boolean()),
                           ('credits_per_hour', sa.Float()),
                           ('credits_spent_micro', sa.BigInteger())):
            batch.alter_column(name, existing_type=kind, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_index('ix_jobs_org_status')
        for name in ('credits_spent_micro', 'charged_until', 'credits_per_hour', 'seat_wait',
                     'preemptible'):
            batch.drop_column(name)
    op.drop_table('quotas')
