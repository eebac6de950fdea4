"""Secrets: ``client.secrets``.

Keys and times go through GraphQL; a value goes one way only, over the byte route
``PUT /api/secrets/CLUSTER/ORG/PROJECT/KEY`` (bytes, up to 1 MiB). Nothing reads it back.

    async with GliaClient(url, token) as client:
        await client.secrets.put("secret://default/alice/alice/TOKEN", b"s3cr3t")
        [secret.key for secret in await client.secrets.list()]
"""

from __future__ import annotations

import builtins
from urllib.parse import quote

from glia.secrets import Secret, SecretsRotation, parse_secret_uri
from sdk import documents
from sdk.resource import Resource


class SecretsResource(Resource):
    async def list(
        self, *, cluster: str | None = None, org: str | None = None, project: str | None = None
    ) -> builtins.list[Secret]:
        """A project's secrets by key (the caller's personal project when neither org nor
        project is given; the default cluster when no cluster is)."""
        variables = {"cluster": cluster, "org": org, "project": project}
        return await self._all_pages(documents.SECRETS, "secrets", Secret, variables)

    def url(self, uri: str) -> str:
        """The byte route that sets a secret: ``<server>/api/secrets/C/O/P/KEY``."""
        ref = parse_secret_uri(uri)
        parts = (ref.cluster, ref.org, ref.project, ref.key)
        return f"{self._client.url}/api/secrets/" + "/".join(quote(p, safe="") for p in parts)

    async def put(self, uri: str, value: bytes) -> tuple[Secret, bool]:
        """Set a secret's value (``secret://CLUSTER/ORG/PROJECT/KEY``): the secret, and
        whether it is new (else its value was replaced)."""
        from sdk.client import _byte_route_error, _http_errors

        http = self._client._http
        if http is None:
            raise RuntimeError("use GliaClient as 'async with GliaClient(...) as client'")
        url = self.url(uri)
        with _http_errors(self._client.url):
            response = await http.put(
                url,
                content=value,
                headers={
                    **self._client._headers(),
                    "Content-Type": "application/octet-stream",
                },
                timeout=self._client.timeout,
            )
        if response.status_code >= 400:
            raise _byte_route_error(response.status_code, response.content)
        return Secret.model_validate(response.json()), response.status_code == 201

    async def delete(self, uri: str) -> Secret:
        """Delete a secret; returns it as it was."""
        data = await self._client.execute(documents.DELETE_SECRET, {"input": {"uri": uri}})
        return Secret.model_validate(data["deleteSecret"]["secret"])

    async def rotate_key(self) -> SecretsRotation:
        """Re-seal every stored secret (and imported bucket credential) under the server's
        current key (platform admins)."""
        data = await self._client.execute(documents.ROTATE_SECRETS_KEY)
        return SecretsRotation.model_validate(data["rotateSecretsKey"]["rotation"])
