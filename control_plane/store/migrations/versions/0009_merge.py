"""join the four branches made side by side on 0004: job names, scheduling, HTTP exposure,
buckets

Revision ID: 0009
Revises: 0005, 0006, 0007, 0008
Create Date: 2026-11-27 19:10:00

Each branch touches tables of its own or columns of its own, so their order does not matter;
this revision only makes the history one line again.
"""
from __future__ import annotations


revision = '0009'
down_revision = ('0005', '0006', '0007', '0008')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
