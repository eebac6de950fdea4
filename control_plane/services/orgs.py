"""Orgs: their members, the clusters they may use, and each user's personal org.

An org's members and what they may do are ACL role links and the grants of the org's built-in
roles (`glia.tenancy`); this service keeps the rows (names, personal owners, clusters) and the
derived rules in step. `sync` rewrites whatever derived rule is missing, at every start.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from control_plane.services.acl import AclService
from control_plane.services.clusters import ClustersService
from control_plane.services.pages import Order, SortKey, keyset_page
from control_plane.store.models import ClusterRow, OrgClusterRow, OrgRow, ProjectRow, UserRow
from glia.acl import Action, user_subject
from glia.auth import User
from glia.clock import utcnow
from glia.errors import Conflict, Forbidden, NotFound
from glia.pages import Page, PageRequest
from glia.tenancy import (
    ORG_ROLES,
    PROJECT_ROLES,
    Member,
    NewOrg,
    Org,
    OrgRole,
    ProjectRole,
    cluster_role_rules,
    org_role,
    org_role_rules,
    org_uri,
    project_role,
    project_role_rules,
)

# Creating and deleting orgs, and choosing their clusters, is a platform admin's: a grant on
# the root of the org:// scheme (admins hold "*").
ORGS_URI = "org://"

_BY_NAME = Order[Org](
    name="NAME", keys=[SortKey[Org](OrgRow.name, lambda org: org.name)], descending=False
)


def org_from_row(row: OrgRow, role: OrgRole | None = None) -> Org:
    return Org(
        name=row.name,
        personal=row.owner_id is not None,
        clusters=tuple(sorted(link.cluster.name for link in row.clusters)),
        created_at=row.created_at,
        role=role,
    )


def _live_org(name: str):  # type: ignore[no-untyped-def]
    return (
        select(OrgRow)
        .where(OrgRow.name == name, OrgRow.deleted_at.is_(None))
        .options(
            selectinload(OrgRow.clusters).selectinload(OrgClusterRow.cluster),
            # delete, remove_member and the cluster changes read them: no lazy load in async.
            selectinload(OrgRow.projects),
        )
    )


class OrgsService:
    def __init__(self, *, acl: AclService, clusters: ClustersService) -> None:
        self._acl = acl
        self._clusters = clusters

    # -- reading --

    def role_in(self, subject: str, org: str) -> OrgRole | None:
        held = self._acl.subjects_of(subject)
        for role in reversed(ORG_ROLES):
            if org_role(org, role) in held:
                return role
        return None

    async def row(self, session: AsyncSession, caller: User, name: str) -> OrgRow:
        """The org, if the caller may see it (NotFound otherwise, as for one that is not)."""
        row = await session.scalar(_live_org(name))
        if row is None or not await self._acl.check(caller.subject, org_uri(name), Action.READ):
            raise NotFound(f"org {name!r} not found")
        return row

    async def get(self, session: AsyncSession, caller: User, name: str) -> Org:
        row = await self.row(session, caller, name)
        return org_from_row(row, self.role_in(caller.subject, name))

    async def list(self, session: AsyncSession, caller: User, page: PageRequest) -> Page[Org]:
        """The orgs the caller belongs to (every org, for a platform admin), by name."""
        prefixes = self._acl.visible_prefixes(caller.subject, "org", Action.READ)
        query = select(OrgRow).where(OrgRow.deleted_at.is_(None))
        if prefixes is not None:
            query = query.where(OrgRow.name.in_([p.removeprefix("org://") for p in prefixes]))
        query = query.options(selectinload(OrgRow.clusters).selectinload(OrgClusterRow.cluster))
        total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
        return await keyset_page(
            session,
            query,
            order=_BY_NAME,
            request=page,
            total=total,
            to_item=lambda found: org_from_row(
                found[0], self.role_in(caller.subject, found[0].name)
            ),
        )

    async def members(
        self, session: AsyncSession, caller: User, name: str
    ) -> builtins.list[Member]:
        """Who belongs to the org, with their role (its members and admins may look)."""
        await self.row(session, caller, name)
        return self._members(name)

    def _members(self, org: str) -> builtins.list[Member]:
        members: dict[str, str] = {}
        for role in ORG_ROLES:  # lowest first: a higher role replaces a lower one
            for member in self._acl.members_of(org_role(org, role)):
                if member.startswith("user:"):
                    members[member.removeprefix("user:")] = role.value
        return [Member(user=user, role=role) for user, role in sorted(members.items())]

    async def cluster_names(self, session: AsyncSession, org: str) -> builtins.list[str]:
        rows = await session.scalars(
            select(ClusterRow.name)
            .join(OrgClusterRow, OrgClusterRow.cluster_id == ClusterRow.id)
            .join(OrgRow, OrgRow.id == OrgClusterRow.org_id)
            .where(OrgRow.name == org)
            .order_by(ClusterRow.name)
        )
        return list(rows)

    # -- personal orgs --

    async def create_personal(
        self, session: AsyncSession, user_id: str, name: str, cluster: str | None
    ) -> None:
        """The rows of a new user's personal org and project, named after them, on
        ``cluster``: part of creating the user (the caller commits, then calls
        `after_personal_created`)."""
        org = OrgRow(id=str(uuid.uuid4()), name=name, owner_id=user_id)
        org.projects = [ProjectRow(id=str(uuid.uuid4()), name=name)]
        if cluster is not None:
            cluster_id = await session.scalar(
                select(ClusterRow.id).where(ClusterRow.name == cluster)
            )
            if cluster_id is not None:
                org.clusters = [OrgClusterRow(cluster_id=cluster_id)]
        session.add(org)

    async def after_personal_created(self, user: User, clusters: Sequence[str]) -> None:
        """The ACL side of `create_personal`, once its rows are committed."""
        grants, links = org_role_rules(user.name, clusters)
        project_grants, project_links = project_role_rules(user.name, user.name, clusters)
        links += [
            (user.subject, org_role(user.name, OrgRole.ADMIN)),
            (user.subject, project_role(user.name, user.name, ProjectRole.ADMIN)),
        ]
        await self._acl.add_rules(grants + project_grants, links + project_links)

    async def close_personal(self, session: AsyncSession, owner_id: str) -> None:
        """Close the personal org of a deleted user: its name stays taken, its members and
        roles go (its jobs stay readable to platform admins)."""
        row = await session.scalar(
            select(OrgRow).where(OrgRow.owner_id == owner_id).options(selectinload(OrgRow.projects))
        )
        if row is None or row.deleted_at is not None:
            return
        row.deleted_at = utcnow()
        for project in row.projects:
            project.deleted_at = project.deleted_at or row.deleted_at
        await session.commit()
        await self._acl.remove_subjects(
            [org_role(row.name, role) for role in ORG_ROLES]
            + [project_role(row.name, p.name, r) for p in row.projects for r in PROJECT_ROLES]
        )

    async def name_taken(self, session: AsyncSession, name: str) -> bool:
        """Whether an org (even a deleted one) has this name: user names are org names."""
        return await session.scalar(select(OrgRow.id).where(OrgRow.name == name)) is not None

    # -- changes (platform admins) --

    async def create(self, session: AsyncSession, caller: User, new: NewOrg) -> Org:
        await self._acl.require(caller.subject, ORGS_URI, Action.MANAGE)
        clusters = list(new.clusters) or [await self._clusters.default_name(session)]
        cluster_rows = []
        for name in clusters:
            cluster_rows.append(await self._cluster_row(session, name))
        taken_by_user = await session.scalar(select(UserRow.id).where(UserRow.name == new.name))
        if taken_by_user is not None or await self.name_taken(session, new.name):
            raise Conflict(
                f"the name {new.name!r} is taken: org names and user names are one namespace, "
                "and are never reused",
                fields={"name": "taken"},
            )
        row = OrgRow(id=str(uuid.uuid4()), name=new.name)
        row.clusters = [OrgClusterRow(cluster_id=c.id) for c in cluster_rows]
        session.add(row)
        try:
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            raise Conflict(f"the name {new.name!r} is taken", fields={"name": "taken"}) from exc
        grants, links = org_role_rules(new.name, clusters)
        # The admin who made it runs it until they add its admins.
        links.append((caller.subject, org_role(new.name, OrgRole.ADMIN)))
        await self._acl.add_rules(grants, links)
        return await self.get(session, caller, new.name)

    async def _cluster_row(self, session: AsyncSession, name: str) -> ClusterRow:
        row = await session.scalar(select(ClusterRow).where(ClusterRow.name == name))
        if row is None:
            raise NotFound(f"cluster {name!r} not found", fields={"clusters": f"no {name!r}"})
        return row

    async def delete(self, session: AsyncSession, caller: User, name: str) -> Org:
        """Delete an org that has no projects left (platform admins); its name stays taken."""
        await self._acl.require(caller.subject, ORGS_URI, Action.MANAGE)
        row = await self.row(session, caller, name)
        if row.owner_id is not None:
            raise Conflict(
                f"{name!r} is a user's personal org: it goes when the user is deleted",
                fields={"name": "personal"},
            )
        live = [p.name for p in row.projects if p.deleted_at is None]
        if live:
            raise Conflict(
                f"org {name!r} still has projects ({', '.join(live)}): delete them first",
                fields={"name": "has projects"},
            )
        org = org_from_row(row)
        row.deleted_at = utcnow()
        await session.commit()
        await self._acl.remove_subjects(
            [org_role(name, role) for role in ORG_ROLES]
            + [project_role(name, p.name, r) for p in row.projects for r in PROJECT_ROLES]
        )
        return org

    async def add_cluster(
        self, session: AsyncSession, caller: User, name: str, cluster: str
    ) -> Org:
        """Let the org's members run on ``cluster`` (platform admins)."""
        await self._acl.require(caller.subject, ORGS_URI, Action.MANAGE)
        row = await self.row(session, caller, name)
        cluster_row = await self._cluster_row(session, cluster)
        if all(link.cluster_id != cluster_row.id for link in row.clusters):
            session.add(OrgClusterRow(org_id=row.id, cluster_id=cluster_row.id))
            await session.commit()
        await self._acl.add_rules(*self._org_rules(row, [cluster]))
        session.expire(row)
        return await self.get(session, caller, name)

    async def remove_cluster(
        self, session: AsyncSession, caller: User, name: str, cluster: str
    ) -> Org:
        """Stop the org's members running new jobs on ``cluster`` (platform admins); what
        they ran there stays readable to platform and cluster admins."""
        await self._acl.require(caller.subject, ORGS_URI, Action.MANAGE)
        row = await self.row(session, caller, name)
        cluster_row = await self._cluster_row(session, cluster)
        link = next((link for link in row.clusters if link.cluster_id == cluster_row.id), None)
        if link is None:
            raise NotFound(f"org {name!r} does not use cluster {cluster!r}")
        row.clusters.remove(link)
        await session.commit()
        grants, links = self._org_rules(row, [cluster])
        keep_grants, keep_links = self._org_rules(row, [])
        await self._acl.remove_rules(
            [g for g in grants if g not in keep_grants], [k for k in links if k not in keep_links]
        )
        session.expire(row)
        return await self.get(session, caller, name)

    def _org_rules(
        self, row: OrgRow, clusters: Sequence[str]
    ) -> tuple[builtins.list[tuple[str, str, Action]], builtins.list[tuple[str, str]]]:
        grants, links = org_role_rules(row.name, clusters)
        for project in row.projects:
            if project.deleted_at is None:
                more_grants, more_links = project_role_rules(row.name, project.name, clusters)
                grants += more_grants
                links += more_links
        return grants, links

    # -- members --

    async def add_member(
        self, session: AsyncSession, caller: User, org: str, user: str, role: OrgRole
    ) -> Member:
        """Give a user a role in the org, replacing the one they had. Managers add and
        remove users and managers; admins, admins too."""
        await self.row(session, caller, org)
        await self._require_member_manager(caller, org, role)
        member = await self.member_subject(session, user)
        current = self.role_in(member, org)
        if current is not None:
            await self._require_member_manager(caller, org, current)
        await self._acl.add_rules([], [(member, org_role(org, role))])
        others = [(member, org_role(org, other)) for other in ORG_ROLES if other is not role]
        await self._acl.remove_rules([], others)
        return Member(user=user, role=role.value)

    async def remove_member(
        self, session: AsyncSession, caller: User, org: str, user: str
    ) -> Member:
        """Take a user out of the org, and out of each of its projects."""
        row = await self.row(session, caller, org)
        member = await self.member_subject(session, user, deleted_ok=True)
        current = self.role_in(member, org)
        if current is None:
            raise NotFound(f"{user!r} is not a member of org {org!r}")
        await self._require_member_manager(caller, org, current)
        if row.owner_id is not None and member == user_subject(row.name):
            raise Conflict(
                f"{user!r} owns the personal org {org!r} and cannot leave it",
                fields={"user": "owner"},
            )
        roles = [org_role(org, r) for r in ORG_ROLES] + [
            project_role(org, p.name, r) for p in row.projects for r in PROJECT_ROLES
        ]
        await self._acl.remove_rules([], [(member, role) for role in roles])
        return Member(user=user, role=current.value)

    async def _require_member_manager(self, caller: User, org: str, role: OrgRole) -> None:
        needed = Action.MANAGE if role is OrgRole.ADMIN else Action.WRITE
        if not await self._acl.check(caller.subject, org_uri(org), needed):
            raise Forbidden(
                f"only the org's {'admins' if needed is Action.MANAGE else 'managers'} may "
                f"change who is {'an admin' if role is OrgRole.ADMIN else 'a member'} of {org!r}"
            )

    async def member_subject(
        self, session: AsyncSession, name: str, *, deleted_ok: bool = False
    ) -> str:
        """``user:NAME`` for a user or service account that exists (NotFound otherwise); with
        ``deleted_ok``, one that was deleted too (to take them out of what they were in)."""
        query = select(UserRow.id).where(UserRow.name == name)
        if not deleted_ok:
            query = query.where(UserRow.disabled.is_(False))
        if await session.scalar(query) is None:
            raise NotFound(f"user {name!r} not found", fields={"user": "no such user"})
        return user_subject(name)

    # -- derived rules --

    async def sync(self, session: AsyncSession) -> int:
        """Write every derived rule of every cluster, org and project that is missing (after
        a migration, or a crash between a commit and its ACL change); returns how many."""
        grants: builtins.list[tuple[str, str, Action]] = []
        links: builtins.list[tuple[str, str]] = []
        for cluster in await session.scalars(select(ClusterRow.name)):
            more_grants, more_links = cluster_role_rules(cluster)
            grants += more_grants
            links += more_links
        rows = await session.scalars(
            select(OrgRow)
            .where(OrgRow.deleted_at.is_(None))
            .options(
                selectinload(OrgRow.clusters).selectinload(OrgClusterRow.cluster),
                selectinload(OrgRow.projects),
            )
        )
        for row in rows:
            more_grants, more_links = self._org_rules(
                row, [link.cluster.name for link in row.clusters]
            )
            grants += more_grants
            links += more_links
        return await self._acl.add_rules(grants, links)
