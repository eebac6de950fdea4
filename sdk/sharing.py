"""Sharing and service accounts: ``client.acl`` and ``client.service_accounts``."""

from __future__ import annotations

import builtins

from glia.acl import Action
from glia.tenancy import GrantEntry, ProjectRole, Role, ServiceAccount
from sdk import documents
from sdk.orgs import role_name
from sdk.resource import Resource


class AclResource(Resource):
    async def grant(
        self, uri: str, subject: str, action: Action | str
    ) -> tuple[GrantEntry, builtins.list[str]]:
        """Let a user (``bob``) or a role (``role://user/alice/team``) do ``action`` (list,
        read, write or manage) on ``uri`` and beneath it; on a role's URI, make them a member.
        Returns the grant and the server's warnings (a URI that names nothing yet)."""
        label = Action.parse(action).label
        variables = {"input": {"uri": uri, "subject": subject, "action": label}}
        data = await self._client.execute(documents.GRANT, variables)
        payload = data["grant"]
        return GrantEntry.model_validate(payload["grant"]), builtins.list(payload["warnings"])

    async def revoke(self, uri: str, subject: str) -> GrantEntry:
        """Take back what a user or role holds on exactly ``uri``; returns what it was."""
        variables = {"input": {"uri": uri, "subject": subject}}
        data = await self._client.execute(documents.REVOKE, variables)
        return GrantEntry.model_validate(data["revoke"]["grant"])

    async def permissions(self, subject: str | None = None) -> builtins.list[GrantEntry]:
        """What a user or role (the caller when None) may do, by URI."""
        data = await self._client.execute(documents.PERMISSIONS, {"subject": subject})
        return [GrantEntry.model_validate(grant) for grant in data["permissions"]]

    async def shared(self, subject: str | None = None) -> builtins.list[GrantEntry]:
        """What a user (the caller when None) has shared: grants others hold on what the
        user manages."""
        data = await self._client.execute(documents.SHARED, {"subject": subject})
        return [GrantEntry.model_validate(grant) for grant in data["shared"]]

    async def roles(self, subject: str | None = None) -> builtins.list[Role]:
        """The roles a user or role (the caller when None) holds, directly or not."""
        data = await self._client.execute(documents.ROLES, {"subject": subject})
        return [Role.model_validate(role) for role in data["roles"]]

    async def role_members(self, role: str) -> builtins.list[GrantEntry]:
        """Who holds a role directly (``read``: a member, ``manage``: may change its members);
        ``role`` is ``role://user/alice/team`` or ``user/alice/team``."""
        data = await self._client.execute(documents.ROLE_MEMBERS, {"role": role})
        return [GrantEntry.model_validate(grant) for grant in data["roleMembers"]]

    async def create_role(self, name: str) -> Role:
        """A role of the caller's own: ``team`` is ``role://user/CALLER/team``."""
        data = await self._client.execute(documents.CREATE_ROLE, {"input": {"name": name}})
        return Role.model_validate(data["createRole"]["role"])

    async def delete_role(self, name: str) -> Role:
        """Delete a role the caller manages; its members lose it."""
        data = await self._client.execute(documents.DELETE_ROLE, {"input": {"name": name}})
        return Role.model_validate(data["deleteRole"]["role"])


class ServiceAccountsResource(Resource):
    async def create(
        self,
        name: str,
        *,
        project: str | None = None,
        org: str | None = None,
        role: ProjectRole | str | None = None,
    ) -> tuple[ServiceAccount, str]:
        """A new service account and its token, which the server shows this once. With a
        project (in ``org``, the caller's personal org when None), it becomes a member of it
        with ``role`` (the project's default role when None)."""
        variables = {
            "input": {
                "name": name,
                "org": org,
                "project": project,
                "role": None if role is None else role_name(ProjectRole, role),
            }
        }
        data = await self._client.execute(documents.CREATE_SERVICE_ACCOUNT, variables)
        payload = data["createServiceAccount"]
        return ServiceAccount.model_validate(payload["serviceAccount"]), str(payload["token"])

    async def list(self) -> builtins.list[ServiceAccount]:
        """The caller's service accounts (every one, for admins), by name."""
        data = await self._client.execute(documents.SERVICE_ACCOUNTS)
        return [ServiceAccount.model_validate(account) for account in data["serviceAccounts"]]

    async def get(self, name: str) -> ServiceAccount:
        """One of the caller's service accounts: ``ci`` or ``alice/ci``."""
        data = await self._client.execute(documents.SERVICE_ACCOUNT, {"name": name})
        return ServiceAccount.model_validate(data["serviceAccount"])

    async def delete(self, name: str) -> ServiceAccount:
        """Delete a service account: its tokens stop working at once."""
        variables = {"input": {"name": name}}
        data = await self._client.execute(documents.DELETE_SERVICE_ACCOUNT, variables)
        return ServiceAccount.model_validate(data["deleteServiceAccount"]["serviceAccount"])
