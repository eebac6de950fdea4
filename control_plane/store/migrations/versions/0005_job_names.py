"""job names unique among a user's unfinished jobs; job tags in a table of their own

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 18:40:00

``jobs.active_name`` holds a job's name from its submission to its final status, under a
unique index on (owner, active_name) where it is set: the database decides a race between two
submissions of one name. Unfinished jobs get their name there; where an owner already has
several unfinished jobs of one name (the check before the insert let races through), the
newest holds it and the others keep their name for reading. ``job_tags`` holds each job's
tags, one row each, so that listings filter on them in SQL; the JSON list stays what a job is
read with.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

UNFINISHED = ('pending', 'running', 'suspended')

jobs = sa.table(
    'jobs', sa.column('id', sa.String), sa.column('name', sa.String),
    sa.column('active_name', sa.String), sa.column('owner_id', sa.String),
    sa.column('status', sa.String), sa.column('tags', sa.JSON),
    sa.column('created_at', sa.DateTime(timezone=True)),
)
job_tags = sa.table('job_tags', sa.column('job_id', sa.String), sa.column('tag', sa.String))


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('active_name', sa.String(length=64), nullable=True))
    op.create_table(
        'job_tags',
        sa.Column('job_id', sa.String(length=40), nullable=False),
        sa.Column('tag', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_tags_job_id_jobs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'tag', name=op.f('pk_job_tags')),
    )
    op.create_index('ix_job_tags_tag_job', 'job_tags', ['tag', 'job_id'], unique=False)

    connection = op.get_bind()
    named = connection.execute(
        sa.select(jobs.c.id, jobs.c.name, jobs.c.owner_id)
        .where(jobs.c.name.is_not(None), jobs.c.status.in_(UNFINISHED))
        .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
    ).all()
    taken: set[tuple[str, str]] = set()
    for job_id, name, owner_id in named:
        if (owner_id, name) in taken:
            continue  # an older duplicate: it keeps its name, the newest job holds it
        taken.add((owner_id, name))
        connection.execute(
            jobs.update().where(jobs.c.id == job_id).values(active_name=name)
        )
    tagged = connection.execute(sa.select(jobs.c.id, jobs.c.tags)).all()
    rows = [
        {'job_id': job_id, 'tag': tag}
        for job_id, tags in tagged
        for tag in dict.fromkeys(tags or ())
        if isinstance(tag, str)
    ]
    for start in range(0, len(rows), 1000):
        connection.execute(job_tags.insert(), rows[start:start + 1000])

    op.create_index(
        'uq_jobs_owner_active_name', 'jobs', ['owner_id', 'active_name'], unique=True,
        sqlite_where=sa.text('active_name IS NOT NULL'),
        postgresql_where=sa.text('active_name IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('uq_jobs_owner_active_name', table_name='jobs')
    op.drop_index('ix_job_tags_tag_job', table_name='job_tags')
    op.drop_table('job_tags')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('active_name')
