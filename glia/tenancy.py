"""Who works where: orgs, projects, their members' roles, cluster users and service accounts.

An org has members (admin / manager / user) and projects; a project has members (admin /
manager / writer / reader) and is where jobs and, later, files, buckets and disks live, under
``SCHEME://CLUSTER/ORG/PROJECT/…`` on each cluster its org may use. Every user has a personal
org named after them, holding a personal project of the same name, so one user alone never
has to create either: ``job://default/alice/alice/job-…``. Org names and user names are one
namespace.

Membership is not stored beside the ACL: it *is* the ACL. Each org, project and cluster has
built-in roles (``role:project/acme/vision/writer``, …); a member holds one of them, and the
roles hold the grants that membership means (`project_role_grants` and its siblings). So one
model answers every check, and a grant shared by hand and a membership are looked at the same
way. The control plane keeps the roles' grants in step with the orgs, projects and clusters
(`control_plane.services.tenancy`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime

from pydantic import field_validator

from glia.acl import Action, format_uri, role_subject
from glia.errors import BadInput
from glia.model import DescribedEnum, Model

# Org and project names: what user names are (an org may be named after a user, and is).
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
# A custom role's own name, beneath its owner: `team`, `team/leads`.
ROLE_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}(/[a-z][a-z0-9_-]{0,62}){0,3}")

# The resource kinds that live in a project, on each cluster of its org.
PROJECT_SCHEMES = ("job", "storage", "blob", "disk", "secret")


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it can name an org or a project; else `BadInput` naming ``what``."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BadInput(
            f"invalid {what} {name!r}: lowercase letters, digits, '-' and '_', starting with a "
            "letter, at most 63 characters",
            fields={what: "invalid"},
        )
    return name


class OrgRole(DescribedEnum):
    """What a member may do in an org (each role includes the ones below it)."""

    ADMIN = "admin", "Manages the org, its members and every project in it"
    MANAGER = "manager", "Adds and removes the org's members and creates its projects"
    USER = "user", "Belongs to the org, and may use the clusters it may use"


class ProjectRole(DescribedEnum):
    """What a member may do in a project (each role includes the ones below it)."""

    ADMIN = "admin", "Manages the project, deletes it and names its admins"
    MANAGER = "manager", "Manages the project's members and every resource in it"
    WRITER = "writer", "Runs jobs and writes data in the project"
    READER = "reader", "Reads the project's jobs and data"


class ClusterRole(DescribedEnum):
    """What a user may do on a cluster (each role includes the ones below it)."""

    ADMIN = "admin", "Manages the cluster and every resource on it"
    MANAGER = "manager", "Manages the cluster's users"
    USER = "user", "Runs jobs on the cluster"


# Lowest first: each role holds the one before it.
ORG_ROLES = (OrgRole.USER, OrgRole.MANAGER, OrgRole.ADMIN)
PROJECT_ROLES = (ProjectRole.READER, ProjectRole.WRITER, ProjectRole.MANAGER, ProjectRole.ADMIN)
CLUSTER_ROLES = (ClusterRole.USER, ClusterRole.MANAGER, ClusterRole.ADMIN)


# -- URIs and role subjects -----------------------------------------------------------------


def org_uri(org: str) -> str:
    """``org://ORG``: reading it is seeing the org; writing, managing its members."""
    return f"org://{org}"


def project_uri(org: str, project: str) -> str:
    """``project://ORG/PROJECT``: the project itself (its settings and members)."""
    return f"project://{org}/{project}"


def cluster_uri(cluster: str) -> str:
    """``cluster://CLUSTER``: reading it is being allowed to run on it."""
    return f"cluster://{cluster}"


def project_resources_uri(scheme: str, cluster: str, org: str, project: str) -> str:
    """Where a project's resources of one kind live on one cluster: ``job://c/acme/vision``."""
    return format_uri(scheme, (cluster, org, project))


def org_role(org: str, role: OrgRole) -> str:
    """``role:org/acme/admin``"""
    return role_subject(f"org/{org}/{role.value}")


def project_role(org: str, project: str, role: ProjectRole) -> str:
    """``role:project/acme/vision/writer``"""
    return role_subject(f"project/{org}/{project}/{role.value}")


def cluster_role(cluster: str, role: ClusterRole) -> str:
    """``role:cluster/default/user``"""
    return role_subject(f"cluster/{cluster}/{role.value}")


def custom_role(owner: str, name: str) -> str:
    """A role a user made: ``role:user/alice/team``."""
    if not ROLE_NAME_RE.fullmatch(name):
        raise BadInput(
            f"invalid role name {name!r}: lowercase words of letters, digits, '-' and '_' "
            "joined by '/', at most 4",
            fields={"name": "invalid"},
        )
    return role_subject(f"user/{owner}/{name}")


def role_uri(subject: str) -> str:
    """The resource URI of a role subject: ``role:user/alice/team`` -> ``role://user/alice/team``.
    Granting on it makes the grantee a member of the role."""
    kind, _, name = subject.partition(":")
    if kind != "role" or not name:
        raise BadInput(f"{subject!r} is not a role", fields={"role": "not a role"})
    return f"role://{name}"


def role_from_uri(uri: str) -> str:
    """``role://user/alice/team`` -> ``role:user/alice/team``."""
    scheme, _, name = uri.partition("://")
    if scheme != "role" or not name:
        raise BadInput(f"{uri!r} is not a role URI", fields={"uri": "not a role URI"})
    return role_subject(name)


# -- what each role means ------------------------------------------------------------------

Grant = tuple[str, str, Action]  # (subject, uri, action)
Link = tuple[str, str]  # (member, role)


def org_role_rules(org: str, clusters: Iterable[str]) -> tuple[list[Grant], list[Link]]:
    """The grants and role links an org's built-in roles hold, on the clusters it may use."""
    user, manager, admin = (org_role(org, role) for role in ORG_ROLES)
    grants: list[Grant] = [
        (user, org_uri(org), Action.READ),
        (manager, org_uri(org), Action.WRITE),
        (admin, org_uri(org), Action.MANAGE),
        # Admins manage every project of the org, its roles, and everything in it.
        (admin, f"project://{org}", Action.MANAGE),
        (admin, f"role://org/{org}", Action.MANAGE),
        (admin, f"role://project/{org}", Action.MANAGE),
    ]
    links: list[Link] = [(manager, user), (admin, manager)]
    for cluster in clusters:
        links.append((user, cluster_role(cluster, ClusterRole.USER)))
        grants += [
            (admin, format_uri(scheme, (cluster, org)), Action.MANAGE) for scheme in PROJECT_SCHEMES
        ]
    return grants, links


_PROJECT_ACTIONS = {
    ProjectRole.READER: Action.READ,
    ProjectRole.WRITER: Action.WRITE,
    ProjectRole.MANAGER: Action.MANAGE,
    ProjectRole.ADMIN: Action.MANAGE,
}


def project_role_rules(
    org: str, project: str, clusters: Iterable[str]
) -> tuple[list[Grant], list[Link]]:
    """The grants and role links a project's built-in roles hold, on its org's clusters."""
    reader, writer, manager, admin = (project_role(org, project, r) for r in PROJECT_ROLES)
    grants: list[Grant] = [
        (reader, project_uri(org, project), Action.READ),
        (manager, project_uri(org, project), Action.WRITE),
        (admin, project_uri(org, project), Action.MANAGE),
        (manager, f"role://project/{org}/{project}", Action.MANAGE),
    ]
    links: list[Link] = [(writer, reader), (manager, writer), (admin, manager)]
    for cluster in clusters:
        for role in (ProjectRole.READER, ProjectRole.WRITER, ProjectRole.MANAGER):
            subject = project_role(org, project, role)
            grants += [
                (subject, project_resources_uri(s, cluster, org, project), _PROJECT_ACTIONS[role])
                for s in PROJECT_SCHEMES
            ]
    return grants, links


def cluster_role_rules(cluster: str) -> tuple[list[Grant], list[Link]]:
    """The grants and role links a cluster's built-in roles hold."""
    user, manager, admin = (cluster_role(cluster, role) for role in CLUSTER_ROLES)
    grants: list[Grant] = [
        (user, cluster_uri(cluster), Action.READ),
        (manager, cluster_uri(cluster), Action.WRITE),
        (admin, cluster_uri(cluster), Action.MANAGE),
        (manager, f"role://cluster/{cluster}", Action.MANAGE),
    ]
    grants += [(admin, f"{scheme}://{cluster}", Action.MANAGE) for scheme in PROJECT_SCHEMES]
    return grants, [(manager, user), (admin, manager)]


def member_role(roles: Iterable[str], prefix: str) -> str | None:
    """The highest built-in role under ``prefix`` (``role:org/acme/``) among ``roles``."""
    found = [role.removeprefix(prefix) for role in roles if role.startswith(prefix)]
    return found[0] if found else None


def flatten(*parts: tuple[list[Grant], list[Link]]) -> tuple[list[Grant], list[Link]]:
    grants: list[Grant] = []
    links: list[Link] = []
    for part_grants, part_links in parts:
        grants += part_grants
        links += part_links
    return grants, links


def iter_roles(org: str, projects: Iterable[str]) -> Iterator[str]:
    """Every built-in role subject of an org and its projects."""
    for role in ORG_ROLES:
        yield org_role(org, role)
    for project in projects:
        for project_role_ in PROJECT_ROLES:
            yield project_role(org, project, project_role_)


# -- values --------------------------------------------------------------------------------


class Org(Model):
    """A group of users and projects, and the clusters they may run on."""

    name: str
    """The org's name; a user's personal org has the user's name."""
    personal: bool = False
    """Whether it is a user's personal org (it cannot be deleted, nor lose its owner)."""
    clusters: tuple[str, ...] = ()
    """The clusters the org's members may run on."""
    created_at: datetime
    """When it was created (UTC)."""
    role: OrgRole | None = None
    """The caller's role in it; null for none (a platform admin looking at it)."""


class Project(Model):
    """Where jobs and data live: a part of an org with members of its own."""

    org: str
    """The org it belongs to."""
    name: str
    """The project's name, unique in its org."""
    default_role: ProjectRole = ProjectRole.WRITER
    """The role a new member gets when none is given."""
    created_at: datetime
    """When it was created (UTC)."""
    role: ProjectRole | None = None
    """The caller's role in it; null for none (an org or platform admin looking at it)."""


class Member(Model):
    """A user (or service account) holding a role in an org, a project or a cluster."""

    user: str
    """The user's name."""
    role: str
    """The role: admin, manager, user, writer or reader."""


class NewOrg(Model):
    """An org to create (platform admins only)."""

    name: str
    """Lowercase letters, digits, '-' and '_', starting with a letter; not a user's name."""
    clusters: tuple[str, ...] = ()
    """The clusters its members may run on (none given: the default cluster)."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"invalid org name {name!r}")
        return name


class NewProject(Model):
    """A project to create in an org (its managers and admins)."""

    org: str
    """The org it goes in."""
    name: str
    """Lowercase letters, digits, '-' and '_', starting with a letter; unique in the org."""
    default_role: ProjectRole = ProjectRole.WRITER
    """The role a new member gets when none is given."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"invalid project name {name!r}")
        return name


class GrantEntry(Model):
    """Permission to do an action (and every lower one) on a URI and everything beneath it."""

    subject: str
    """Who holds it: `user:alice` or `role:project/acme/vision/writer`."""
    uri: str
    """The resource URI, or `*` for every resource."""
    action: str
    """list, read, write or manage."""


class Role(Model):
    """A role: a subject that users and other roles hold, and that grants are given to."""

    name: str
    """The role's name: `user/alice/team`, `project/acme/vision/writer`, `admin`."""
    uri: str
    """Its resource URI, `role://NAME`: granting on it makes the grantee a member."""
    built_in: bool = False
    """Whether it comes with an org, a project or a cluster (and goes with it)."""


class ServiceAccount(Model):
    """A non-person that signs in with a token and acts with the permissions it was given."""

    name: str
    """Its full name, `OWNER/NAME`: as a subject of grants, `user:OWNER/NAME`."""
    owner: str
    """The user who created it (and who may delete it)."""
    org: str | None = None
    """The org of the project it was made for, if any."""
    project: str | None = None
    """The project it was made for, and is a member of; null for none."""
    created_at: datetime
    """When it was created (UTC)."""


SERVICE_ACCOUNT_NAME_RE = NAME_RE
