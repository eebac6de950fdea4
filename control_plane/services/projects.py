"""Projects: where jobs and data live, and who may do what in them.

Like an org's, a project's members are ACL role links to its built-in roles, and the roles'
grants cover its resources on each cluster its org may use (`glia.tenancy`).
"""

from __future__ import annotations

import builtins
import uuid

from sqlalchemy import and_, delete, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.acl import AclService
from control_plane.services.orgs import OrgsService
from control_plane.services.pages import Order, SortKey, keyset_page
from control_plane.store.models import JobRow, OrgRow, ProjectRow
from control_plane.store.secrets import SecretRow
from glia.acl import Action
from glia.auth import User
from glia.clock import utcnow
from glia.errors import Conflict, Forbidden, NotFound
from glia.jobs import UNFINISHED_STATUSES
from glia.pages import Page, PageRequest
from glia.tenancy import (
    PROJECT_ROLES,
    Member,
    NewProject,
    OrgRole,
    Project,
    ProjectRole,
    org_role,
    project_role,
    project_role_rules,
    project_uri,
)

_BY_NAME = Order[Project](
    name="ORG_NAME",
    keys=[
        SortKey[Project](OrgRow.name, lambda project: project.org),
        SortKey[Project](ProjectRow.name, lambda project: project.name),
    ],
    descending=False,
)


def project_from_row(row: ProjectRow, org: str, role: ProjectRole | None) -> Project:
    return Project(
        org=org,
        name=row.name,
        default_role=ProjectRole(row.default_role),
        created_at=row.created_at,
        role=role,
    )


class ProjectsService:
    def __init__(self, *, acl: AclService, orgs: OrgsService) -> None:
        self._acl = acl
        self._orgs = orgs

    def role_in(self, subject: str, org: str, project: str) -> ProjectRole | None:
        held = self._acl.subjects_of(subject)
        for role in reversed(PROJECT_ROLES):
            if project_role(org, project, role) in held:
                return role
        return None

    async def row(self, session: AsyncSession, caller: User, org: str, name: str) -> ProjectRow:
        """The project, if the caller may see it (NotFound otherwise, as for none)."""
        row = await session.scalar(
            select(ProjectRow)
            .join(OrgRow, OrgRow.id == ProjectRow.org_id)
            .where(
                OrgRow.name == org,
                OrgRow.deleted_at.is_(None),
                ProjectRow.name == name,
                ProjectRow.deleted_at.is_(None),
            )
        )
        visible = await self._acl.check(caller.subject, project_uri(org, name), Action.READ)
        if row is None or not visible:
            raise NotFound(f"project {org}/{name} not found")
        return row

    async def get(self, session: AsyncSession, caller: User, org: str, name: str) -> Project:
        row = await self.row(session, caller, org, name)
        return project_from_row(row, org, self.role_in(caller.subject, org, name))

    async def list(
        self, session: AsyncSession, caller: User, page: PageRequest, *, org: str | None = None
    ) -> Page[Project]:
        """The projects the caller may see (those they belong to; all of an org for its
        admins), by org and name; ``org`` keeps one org's."""
        prefixes = self._acl.visible_prefixes(caller.subject, "project", Action.READ)
        query = (
            select(ProjectRow, OrgRow.name)
            .join(OrgRow, OrgRow.id == ProjectRow.org_id)
            .where(ProjectRow.deleted_at.is_(None), OrgRow.deleted_at.is_(None))
        )
        if org is not None:
            query = query.where(OrgRow.name == org)
        if prefixes is not None:
            conditions = []
            for prefix in prefixes:
                segments = prefix.removeprefix("project://").split("/")
                if len(segments) == 1:
                    conditions.append(OrgRow.name == segments[0])
                else:
                    conditions.append(
                        and_(OrgRow.name == segments[0], ProjectRow.name == segments[1])
                    )
            query = query.where(or_(false(), *conditions))
        total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
        return await keyset_page(
            session,
            query,
            order=_BY_NAME,
            request=page,
            total=total,
            to_item=lambda found: project_from_row(
                found[0], found[1], self.role_in(caller.subject, found[1], found[0].name)
            ),
        )

    async def create(self, session: AsyncSession, caller: User, new: NewProject) -> Project:
        """A new project in an org (its managers and admins); the caller becomes its admin."""
        org = await self._orgs.row(session, caller, new.org)
        if not await self._acl.check(caller.subject, f"org://{new.org}", Action.WRITE):
            raise Forbidden(f"only the managers and admins of org {new.org!r} create projects")
        taken = await session.scalar(
            select(ProjectRow.id).where(ProjectRow.org_id == org.id, ProjectRow.name == new.name)
        )
        if taken is not None:
            raise Conflict(
                f"org {new.org!r} has (or had) a project named {new.name!r}: project names "
                "are never reused, so nobody inherits another project's jobs",
                fields={"name": "taken"},
            )
        session.add(
            ProjectRow(
                id=str(uuid.uuid4()),
                org_id=org.id,
                name=new.name,
                default_role=new.default_role.value,
            )
        )
        try:
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            raise Conflict(
                f"project {new.org}/{new.name} exists", fields={"name": "taken"}
            ) from exc
        clusters = await self._orgs.cluster_names(session, new.org)
        grants, links = project_role_rules(new.org, new.name, clusters)
        links.append((caller.subject, project_role(new.org, new.name, ProjectRole.ADMIN)))
        await self._acl.add_rules(grants, links)
        return await self.get(session, caller, new.org, new.name)

    async def update(
        self, session: AsyncSession, caller: User, org: str, name: str, default_role: ProjectRole
    ) -> Project:
        """Change the role new members get (the project's admins)."""
        row = await self.row(session, caller, org, name)
        await self._acl.require(caller.subject, project_uri(org, name), Action.MANAGE)
        row.default_role = default_role.value
        await session.commit()
        return await self.get(session, caller, org, name)

    async def delete(self, session: AsyncSession, caller: User, org: str, name: str) -> Project:
        """Delete a project with no unfinished job (its admins); its name stays taken, and its
        finished jobs readable to org and platform admins; its secrets are deleted."""
        row = await self.row(session, caller, org, name)
        await self._acl.require(caller.subject, project_uri(org, name), Action.MANAGE)
        unfinished = await session.scalar(
            select(func.count())
            .select_from(JobRow)
            .where(
                JobRow.org == org,
                JobRow.project == name,
                JobRow.status.in_([s.value for s in UNFINISHED_STATUSES]),
            )
        )
        if unfinished:
            raise Conflict(
                f"project {org}/{name} has {unfinished} unfinished job(s): kill them first",
                fields={"name": "has unfinished jobs"},
            )
        project = project_from_row(row, org, None)
        row.deleted_at = utcnow()
        # Its secrets go with it: nobody could reach them again (its name is never reused).
        await session.execute(
            delete(SecretRow).where(SecretRow.org == org, SecretRow.project == name)
        )
        await session.commit()
        await self._acl.remove_subjects([project_role(org, name, role) for role in PROJECT_ROLES])
        return project

    # -- members --

    async def members(
        self, session: AsyncSession, caller: User, org: str, name: str
    ) -> builtins.list[Member]:
        await self.row(session, caller, org, name)
        members: dict[str, str] = {}
        for role in PROJECT_ROLES:  # lowest first: a higher role replaces a lower one
            for member in self._acl.members_of(project_role(org, name, role)):
                if member.startswith("user:"):
                    members[member.removeprefix("user:")] = role.value
        return [Member(user=user, role=role) for user, role in sorted(members.items())]

    async def add_member(
        self,
        session: AsyncSession,
        caller: User,
        org: str,
        name: str,
        user: str,
        role: ProjectRole | None = None,
    ) -> Member:
        """Give a user (or service account) a role in the project, the project's default role
        when none is given, replacing the one they had. The user joins the org as a user if
        they were not in it. Managers add readers, writers and managers; admins, admins too."""
        row = await self.row(session, caller, org, name)
        role = role or ProjectRole(row.default_role)
        member = await self._orgs.member_subject(session, user)
        self._require_member_manager(caller, org, name, role)
        current = self.role_in(member, org, name)
        if current is not None:
            self._require_member_manager(caller, org, name, current)
        links = [(member, project_role(org, name, role))]
        if self._orgs.role_in(member, org) is None:
            links.append((member, org_role(org, OrgRole.USER)))
        await self._acl.add_rules([], links)
        others = [(member, project_role(org, name, r)) for r in PROJECT_ROLES if r is not role]
        await self._acl.remove_rules([], others)
        return Member(user=user, role=role.value)

    async def remove_member(
        self, session: AsyncSession, caller: User, org: str, name: str, user: str
    ) -> Member:
        await self.row(session, caller, org, name)
        member = await self._orgs.member_subject(session, user, deleted_ok=True)
        current = self.role_in(member, org, name)
        if current is None:
            raise NotFound(f"{user!r} is not a member of project {org}/{name}")
        if member != caller.subject:  # anyone may leave
            self._require_member_manager(caller, org, name, current)
        await self._acl.remove_rules(
            [], [(member, project_role(org, name, role)) for role in PROJECT_ROLES]
        )
        return Member(user=user, role=current.value)

    def _require_member_manager(self, caller: User, org: str, name: str, role: ProjectRole) -> None:
        needed = Action.MANAGE if role is ProjectRole.ADMIN else Action.WRITE
        if not self._acl.index.check(caller.subject, project_uri(org, name), needed):
            raise Forbidden(
                f"only the {'admins' if needed is Action.MANAGE else 'managers'} of project "
                f"{org}/{name} may change who is "
                f"{'an admin' if role is ProjectRole.ADMIN else 'a member'} of it"
            )
