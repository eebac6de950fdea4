"""orgs, projects, org clusters, custom roles, service accounts; jobs move to personal orgs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 18:00:00

Before this revision every job lived at ``job://CLUSTER/<default org>/<owner>/ID``, in a
project named after its owner inside one org shared by everyone. Now each user has a personal
org named after them, holding a personal project of the same name: the jobs move there, in
place (``job://CLUSTER/<owner>/<owner>/ID``), and so do the grants made on them. The owner
becomes admin of both (ACL role links); the grants those roles carry are derived data, which
the control plane writes at start (`TenancyService.sync`). Every personal org may use every
cluster that exists, as every user could before.
"""
from __future__ import annotations

import uuid

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

users = sa.table(
    'users', sa.column('id', sa.String), sa.column('name', sa.String),
    sa.column('disabled', sa.Boolean), sa.column('created_at', sa.DateTime(timezone=True)),
)
clusters = sa.table('clusters', sa.column('id', sa.String), sa.column('name', sa.String))
jobs = sa.table(
    'jobs', sa.column('id', sa.String), sa.column('owner_id', sa.String),
    sa.column('cluster_id', sa.String), sa.column('org', sa.String),
    sa.column('project', sa.String), sa.column('uri', sa.String),
)
acl_rules = sa.table(
    'acl_rules', sa.column('id', sa.Integer), sa.column('ptype', sa.String),
    sa.column('v0', sa.String), sa.column('v1', sa.String), sa.column('v2', sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.alter_column('name', existing_type=sa.String(length=64), type_=sa.String(length=128))
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                   server_default='user'))
        batch.add_column(sa.Column('owner_id', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('org', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('project', sa.String(length=64), nullable=True))
        batch.create_foreign_key(batch.f('fk_users_owner_id_users'), 'users', ['owner_id'], ['id'])
        batch.create_index(batch.f('ix_users_owner_id'), ['owner_id'], unique=False)
    with op.batch_alter_table('users') as batch:
        batch.alter_column('kind', existing_type=sa.String(length=16), server_default=None)

    op.create_table(
        'orgs',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('owner_id', sa.String(length=36), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_orgs_owner_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_orgs')),
        sa.UniqueConstraint('name', name=op.f('uq_orgs_name')),
        sa.UniqueConstraint('owner_id', name=op.f('uq_orgs_owner_id')),
    )
    op.create_table(
        'projects',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('org_id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('default_role', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_projects_org_id_orgs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
        sa.UniqueConstraint('org_id', 'name', name='uq_projects_org_name'),
    )
    op.create_table(
        'org_clusters',
        sa.Column('org_id', sa.String(length=36), nullable=False),
        sa.Column('cluster_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'],
                                name=op.f('fk_org_clusters_cluster_id_clusters'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_org_clusters_org_id_orgs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('org_id', 'cluster_id', name=op.f('pk_org_clusters')),
    )
    op.create_table(
        'custom_roles',
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('owner_id', sa.String(length=36), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'],
                                name=op.f('fk_custom_roles_owner_id_users')),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_custom_roles')),
    )
    _move_to_personal_orgs(op.get_bind())


def _move_to_personal_orgs(connection: sa.Connection) -> None:
    orgs = sa.table(
        'orgs', sa.column('id', sa.String), sa.column('name', sa.String),
        sa.column('owner_id', sa.String), sa.column('created_at', sa.DateTime(timezone=True)),
    )
    projects = sa.table(
        'projects', sa.column('id', sa.String), sa.column('org_id', sa.String),
        sa.column('name', sa.String), sa.column('default_role', sa.String),
        sa.column('created_at', sa.DateTime(timezone=True)),
    )
    org_clusters = sa.table(
        'org_clusters', sa.column('org_id', sa.String), sa.column('cluster_id', sa.String)
    )
    cluster_rows = connection.execute(sa.select(clusters.c.id, clusters.c.name)).all()
    names_by_id: dict[str, str] = {}
    for user_id, name, disabled, created_at in connection.execute(
        sa.select(users.c.id, users.c.name, users.c.disabled, users.c.created_at)
    ):
        names_by_id[user_id] = name
        org_id = str(uuid.uuid4())
        connection.execute(orgs.insert().values(
            id=org_id, name=name, owner_id=user_id, created_at=created_at))
        connection.execute(projects.insert().values(
            id=str(uuid.uuid4()), org_id=org_id, name=name, default_role='writer',
            created_at=created_at))
        for cluster_id, _cluster_name in cluster_rows:
            connection.execute(org_clusters.insert().values(org_id=org_id, cluster_id=cluster_id))
        if not disabled:
            for role in (f'role:org/{name}/admin', f'role:project/{name}/{name}/admin'):
                connection.execute(acl_rules.insert().values(
                    ptype='g', v0=f'user:{name}', v1=role, v2=''))

    # Jobs: into the personal org of their owner, the project keeping its name.
    old_orgs = {'default'} | set(connection.execute(sa.select(jobs.c.org).distinct()).scalars())
    cluster_names = dict(cluster_rows)
    for job_id, owner_id, cluster_id, project in connection.execute(
        sa.select(jobs.c.id, jobs.c.owner_id, jobs.c.cluster_id, jobs.c.project)
    ).all():
        owner = names_by_id[owner_id]
        connection.execute(sa.update(jobs).where(jobs.c.id == job_id).values(
            org=owner, uri=f'job://{cluster_names[cluster_id]}/{owner}/{project}/{job_id}'))

    # Grants on jobs: the same move. The grant each owner held on their own project is what
    # the project's admin role carries now: it goes.
    for rule_id, subject, uri, action in connection.execute(
        sa.select(acl_rules.c.id, acl_rules.c.v0, acl_rules.c.v1, acl_rules.c.v2)
        .where(acl_rules.c.ptype == 'p', acl_rules.c.v1.startswith('job://'))
    ).all():
        segments = uri.removeprefix('job://').split('/')
        if len(segments) < 3 or segments[1] not in old_orgs:
            continue
        cluster, _org, project, *rest = segments
        if len(rest) == 0 and subject == f'user:{project}' and action == 'manage':
            connection.execute(sa.delete(acl_rules).where(acl_rules.c.id == rule_id))
            continue
        moved = '/'.join([cluster, project, project, *rest])
        connection.execute(sa.update(acl_rules).where(acl_rules.c.id == rule_id)
                           .values(v1=f'job://{moved}'))


def downgrade() -> None:
    op.drop_table('custom_roles')
    op.drop_table('org_clusters')
    op.drop_table('projects')
    op.drop_table('orgs')
    connection = op.get_bind()
    connection.execute(sa.delete(acl_rules).where(
        acl_rules.c.ptype == 'g', acl_rules.c.v1.startswith('role:org/')))
    connection.execute(sa.delete(acl_rules).where(
        acl_rules.c.ptype == 'g', acl_rules.c.v1.startswith('role:project/')))
    with op.batch_alter_table('users') as batch:
        batch.drop_index(batch.f('ix_users_owner_id'))
        batch.drop_constraint(batch.f('fk_users_owner_id_users'), type_='foreignkey')
        batch.drop_column('project')
        batch.drop_column('org')
        batch.drop_column('owner_id')
        batch.drop_column('kind')
        batch.alter_column('name', existing_type=sa.String(length=128), type_=sa.String(length=64))
