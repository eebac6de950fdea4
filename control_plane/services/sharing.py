"""Sharing: grants of a URI and an action to users and roles, and the roles users make.

Roles are resources too (``role://NAME``): a grant on a role's URI makes the grantee — a
user, a service account or another role — a member of it, and ``manage`` on it lets the
grantee change its members. Anyone who manages a resource may share it; a grant on a URI
that does not exist is made (it takes effect when the resource appears) with a warning.
"""

from __future__ import annotations

import builtins

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.services.acl import AclService
from control_plane.services.auth import USERS_URI
from control_plane.store.models import (
    ClusterRow,
    CustomRoleRow,
    JobRow,
    OrgClusterRow,
    OrgRow,
    ProjectRow,
    UserRow,
)
from glia.acl import ALL_URIS, Action, parse_grant_uri, role_subject, user_subject
from glia.auth import User
from glia.errors import BadInput, Conflict, Forbidden, NotFound
from glia.tenancy import (
    PROJECT_SCHEMES,
    GrantEntry,
    Role,
    custom_role,
    role_from_uri,
    role_uri,
)

# Built-in roles come and go with their org, project or cluster; `admin` is the platform's.
_BUILT_IN_PREFIXES = ("role:org/", "role:project/", "role:cluster/")
_PLATFORM_ROLES = (role_subject("admin"),)
# What `shared` and `permissions` return at most (the ACL holds them all in memory anyway).
MAX_LISTED_GRANTS = 10_000


def is_built_in(role: str) -> bool:
    return role.startswith(_BUILT_IN_PREFIXES) or role in _PLATFORM_ROLES


def role_from_subject(subject: str) -> Role:
    name = subject.removeprefix("role:")
    return Role(name=name, uri=role_uri(subject), built_in=is_built_in(subject))


def parse_grantee(grantee: str) -> str:
    """``alice`` -> ``user:alice``; ``role://x`` and ``role:x`` -> ``role:x``."""
    if grantee.startswith("role://"):
        return role_from_uri(grantee)
    if grantee.startswith("role:"):
        return role_subject(grantee.removeprefix("role:"))
    return user_subject(grantee.removeprefix("user:"))


class SharingService:
    def __init__(self, *, acl: AclService) -> None:
        self._acl = acl

    # -- grants --

    async def grant(
        self, session: AsyncSession, caller: User, uri: str, grantee: str, action: str | Action
    ) -> tuple[GrantEntry, builtins.list[str]]:
        """Let ``grantee`` do ``action`` on ``uri``; returns the grant and warnings (a URI
        that names nothing yet). The caller must manage ``uri``."""
        needed = Action.parse(action)
        subject = parse_grantee(grantee)
        parse_grant_uri(uri)
        await self._require_manage(caller, uri)
        await self._require_subject(session, subject)
        warnings = await self._warnings(session, uri)
        if uri.startswith("role://"):
            role = role_from_uri(uri)
            await self._require_subject(session, role)
            if role == subject:
                raise BadInput(f"{role} cannot hold itself", fields={"subject": "the role itself"})
            grants = [(subject, uri, Action.MANAGE)] if needed is Action.MANAGE else []
            await self._acl.add_rules(grants, [(subject, role)])
            if needed is not Action.MANAGE:
                await self._acl.revoke(subject, uri)
        else:
            await self._acl.grant(subject, uri, needed)
        return GrantEntry(subject=subject, uri=uri, action=needed.label), warnings

    async def revoke(
        self, session: AsyncSession, caller: User, uri: str, grantee: str
    ) -> GrantEntry:
        """Take back what ``grantee`` was given on exactly ``uri`` (not beneath it). The
        caller must manage ``uri``, or be the grantee giving it up."""
        subject = parse_grantee(grantee)
        parse_grant_uri(uri)
        if subject != caller.subject:
            await self._require_manage(caller, uri)
        action = self._acl.index.has_grant(subject, uri)
        if uri.startswith("role://"):
            role = role_from_uri(uri)
            member = role in await self._acl.roles_of(subject)
            if not member and action is None:
                raise NotFound(f"{grantee!r} is not a member of {uri}")
            await self._acl.remove_role(subject, role)
            await self._acl.revoke(subject, uri)
            return GrantEntry(subject=subject, uri=uri, action=(action or Action.READ).label)
        if action is None:
            raise NotFound(f"{grantee!r} holds no grant on {uri}")
        await self._acl.revoke(subject, uri)
        return GrantEntry(subject=subject, uri=uri, action=action.label)

    async def permissions(
        self, session: AsyncSession, caller: User, grantee: str | None = None
    ) -> builtins.list[GrantEntry]:
        """What a user or role may do: its own grants and its roles', by URI. Another user's
        are for those who manage users; a role's, for those who manage the role."""
        subject = await self._readable_subject(session, caller, grantee)
        entries = []
        for holder in sorted(self._acl.subjects_of(subject)):
            for uri, action in await self._acl.grants_of(holder):
                entries.append(GrantEntry(subject=holder, uri=uri, action=action.label))
        entries.sort(key=lambda entry: (entry.uri, entry.subject))
        return entries[:MAX_LISTED_GRANTS]

    async def shared(
        self, session: AsyncSession, caller: User, grantee: str | None = None
    ) -> builtins.list[GrantEntry]:
        """What a user shared: the grants others hold on URIs the user manages (the members of
        orgs and projects are listed with them, not here)."""
        subject = await self._readable_subject(session, caller, grantee)
        own = self._acl.subjects_of(subject)
        index = self._acl.index
        entries = []
        for holder, uri, action in index.all_grants():
            if holder in own or (holder.startswith("role:") and is_built_in(holder)):
                continue
            if uri != ALL_URIS and index.check(subject, uri, Action.MANAGE):
                entries.append(GrantEntry(subject=holder, uri=uri, action=action.label))
                if len(entries) >= MAX_LISTED_GRANTS:
                    break
        return entries

    async def _readable_subject(
        self, session: AsyncSession, caller: User, grantee: str | None
    ) -> str:
        if grantee is None:
            return caller.subject
        subject = parse_grantee(grantee)
        if subject == caller.subject:
            return subject
        if subject.startswith("role:"):
            allowed = await self._acl.check(caller.subject, role_uri(subject), Action.MANAGE)
            allowed = allowed or subject in self._acl.subjects_of(caller.subject)
        else:
            allowed = await self._acl.check(caller.subject, USERS_URI, Action.MANAGE)
        if not allowed:
            raise NotFound(f"{grantee!r} not found")
        await self._require_subject(session, subject)
        return subject

    async def _require_manage(self, caller: User, uri: str) -> None:
        index = self._acl.index
        if uri == ALL_URIS:  # only those who hold "*" themselves: platform admins
            allowed = any(
                index.has_grant(held, ALL_URIS) is Action.MANAGE
                for held in index.subjects_of(caller.subject)
            )
        else:
            allowed = index.check(caller.subject, uri, Action.MANAGE)
        if not allowed:
            raise Forbidden(
                f"you may not share {uri}: sharing needs manage permission on it or on a parent",
                details={"uri": uri},
            )

    async def _require_subject(self, session: AsyncSession, subject: str) -> None:
        """NotFound unless ``subject`` is a user (not deleted) or a role that exists."""
        if subject.startswith("user:"):
            name = subject.removeprefix("user:")
            found = await session.scalar(
                select(UserRow.id).where(UserRow.name == name, UserRow.disabled.is_(False))
            )
            if found is None:
                raise NotFound(f"user {name!r} not found", fields={"subject": "no such user"})
            return
        if not await self._role_exists(session, subject):
            raise NotFound(
                f"role {subject.removeprefix('role:')!r} not found",
                fields={"subject": "no such role"},
            )

    async def _role_exists(self, session: AsyncSession, role: str) -> bool:
        if role in _PLATFORM_ROLES:
            return True
        name = role.removeprefix("role:")
        kind, _, rest = name.partition("/")
        parts = rest.split("/")
        if kind == "user":
            return await session.get(CustomRoleRow, name) is not None
        if kind == "org" and len(parts) == 2:
            return await self._org_exists(session, parts[0])
        if kind == "project" and len(parts) == 3:
            return await self._project_exists(session, parts[0], parts[1])
        if kind == "cluster" and len(parts) == 2:
            return await self._cluster_exists(session, parts[0])
        return False

    # -- does a URI name something? --

    async def _warnings(self, session: AsyncSession, uri: str) -> builtins.list[str]:
        if uri == ALL_URIS or await self._exists(session, uri):
            return []
        return [f"{uri} names nothing that exists yet: the grant takes effect if it appears"]

    async def _exists(self, session: AsyncSession, uri: str) -> bool:
        scheme, segments = parse_grant_uri(uri) or ("", ())
        if not segments:
            return True  # a scheme root: every resource of the kind
        if scheme == "role":
            return await self._role_exists(session, role_from_uri(uri))
        if scheme == "org":
            return len(segments) == 1 and await self._org_exists(session, segments[0])
        if scheme == "project":
            if len(segments) == 1:
                return await self._org_exists(session, segments[0])
            return len(segments) == 2 and await self._project_exists(session, *segments)
        if scheme == "cluster":
            return len(segments) == 1 and await self._cluster_exists(session, segments[0])
        if scheme == "user":
            return (
                await session.scalar(select(UserRow.id).where(UserRow.name == "/".join(segments)))
                is not None
            )
        if scheme not in PROJECT_SCHEMES:
            return False
        cluster, *place = segments
        if not await self._cluster_exists(session, cluster):
            return False
        if len(place) >= 1 and not await self._org_on_cluster(session, place[0], cluster):
            return False
        if len(place) >= 2 and not await self._project_exists(session, place[0], place[1]):
            return False
        if scheme == "job" and len(place) >= 3:
            return await session.scalar(select(JobRow.id).where(JobRow.uri == uri)) is not None
        # Paths inside a project's storage, buckets and disks live on the cluster.
        return True

    async def _org_exists(self, session: AsyncSession, org: str) -> bool:
        found = await session.scalar(
            select(OrgRow.id).where(OrgRow.name == org, OrgRow.deleted_at.is_(None))
        )
        return found is not None

    async def _project_exists(self, session: AsyncSession, org: str, project: str) -> bool:
        found = await session.scalar(
            select(ProjectRow.id)
            .join(OrgRow, OrgRow.id == ProjectRow.org_id)
            .where(
                OrgRow.name == org,
                OrgRow.deleted_at.is_(None),
                ProjectRow.name == project,
                ProjectRow.deleted_at.is_(None),
            )
        )
        return found is not None

    async def _cluster_exists(self, session: AsyncSession, cluster: str) -> bool:
        found = await session.scalar(select(ClusterRow.id).where(ClusterRow.name == cluster))
        return found is not None

    async def _org_on_cluster(self, session: AsyncSession, org: str, cluster: str) -> bool:
        found = await session.scalar(
            select(OrgRow.id)
            .join(OrgClusterRow, OrgClusterRow.org_id == OrgRow.id)
            .join(ClusterRow, ClusterRow.id == OrgClusterRow.cluster_id)
            .where(OrgRow.name == org, ClusterRow.name == cluster, OrgRow.deleted_at.is_(None))
        )
        return found is not None

    # -- roles --

    def role_name(self, caller: User, name: str) -> str:
        """A custom role's subject: ``team`` is the caller's own (``role:user/alice/team``);
        ``user/bob/team`` (or ``role://user/bob/team``) names one in full."""
        name = name.removeprefix("role://").removeprefix("role:")
        if name.startswith("user/"):
            owner, _, rest = name.removeprefix("user/").partition("/")
            return custom_role(owner, rest)
        if name == "admin" or name.startswith(("org/", "project/", "cluster/")):
            raise BadInput(
                f"{name!r} is a built-in role: it comes with its org, project or cluster",
                fields={"name": "built in"},
            )
        return custom_role(caller.name, name)

    async def create_role(self, session: AsyncSession, caller: User, name: str) -> Role:
        """A new role of the caller's own (an admin may make one for anybody); the caller
        manages it."""
        subject = self.role_name(caller, name)
        owner = subject.removeprefix("role:user/").split("/", 1)[0]
        if owner != caller.name and not caller.is_admin:
            raise Forbidden(f"roles under user/{owner}/ are {owner}'s to make")
        if "/" in owner or caller.name.count("/"):
            raise Forbidden("service accounts do not make roles")
        owner_id = await session.scalar(select(UserRow.id).where(UserRow.name == owner))
        if owner_id is None:
            raise NotFound(f"user {owner!r} not found")
        session.add(CustomRoleRow(name=subject.removeprefix("role:"), owner_id=owner_id))
        try:
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            raise Conflict(
                f"role {subject.removeprefix('role:')!r} exists", fields={"name": "taken"}
            ) from exc
        await self._acl.add_rules([(user_subject(owner), role_uri(subject), Action.MANAGE)], [])
        return role_from_subject(subject)

    async def delete_role(self, session: AsyncSession, caller: User, name: str) -> Role:
        """Delete a custom role: its members lose it, and what it was granted goes."""
        subject = self.role_name(caller, name)
        row = await session.get(CustomRoleRow, subject.removeprefix("role:"))
        if row is None or not await self._acl.check(caller.subject, role_uri(subject), Action.READ):
            raise NotFound(f"role {subject.removeprefix('role:')!r} not found")
        await self._acl.require(caller.subject, role_uri(subject), Action.MANAGE)
        await session.delete(row)
        await session.commit()
        await self._acl.remove_subjects([subject])
        return role_from_subject(subject)

    async def role_members(
        self, session: AsyncSession, caller: User, role: str
    ) -> builtins.list[GrantEntry]:
        """Who holds a role directly: each member with ``read`` (a member) or ``manage`` (a
        member who may change its members). For those who manage the role; its other members
        get FORBIDDEN, anybody else NOT_FOUND."""
        subject = parse_grantee(role if role.startswith("role") else f"role:{role}")
        if not subject.startswith("role:") or not await self._role_exists(session, subject):
            raise NotFound(f"role {role!r} not found")
        uri = role_uri(subject)
        if not await self._acl.check(caller.subject, uri, Action.MANAGE):
            if subject in self._acl.subjects_of(caller.subject):
                raise Forbidden(f"only those who manage {uri} may list its members")
            raise NotFound(f"role {role!r} not found")
        index = self._acl.index
        return [
            GrantEntry(
                subject=member,
                uri=uri,
                action=(index.has_grant(member, uri) or Action.READ).label,
            )
            for member in self._acl.members_of(subject)
        ]

    async def roles(
        self, session: AsyncSession, caller: User, grantee: str | None = None
    ) -> builtins.list[Role]:
        """The roles a user or role holds, directly or through other roles."""
        subject = await self._readable_subject(session, caller, grantee)
        held = self._acl.subjects_of(subject) - {subject}
        return [role_from_subject(role) for role in sorted(held)]
