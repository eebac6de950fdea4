from __future__ import annotations

from typing import Annotated, cast

import strawberry

from graph.context import Info
from graph.types.pages import AFTER, BEFORE, FIRST, LAST, Connection, page_request
from graph.types.secrets import (
    DeleteSecretInput,
    DeleteSecretPayload,
    RotateSecretsKeyPayload,
    Secret,
    SecretsRotation,
)


@strawberry.type
class SecretsQuery:
    @strawberry.field(
        description="A project's secrets by key, for its readers: keys and times, never "
        "values (set one with `PUT Secret.url`, the value as the body)"
    )
    async def secrets(
        self,
        info: Info,
        cluster: Annotated[
            str | None, strawberry.argument(description="The cluster; null for the default one")
        ] = None,
        org: Annotated[
            str | None,
            strawberry.argument(
                description="The project's org; null for the caller's personal org"
            ),
        ] = None,
        project: Annotated[
            str | None,
            strawberry.argument(description="The project; null for the caller's personal project"),
        ] = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        last: Annotated[int | None, LAST] = None,
        before: Annotated[str | None, BEFORE] = None,
    ) -> Connection[Secret]:
        ctx = info.context
        found = await ctx.platform.secrets.list(
            ctx.session,
            await ctx.user(),
            page_request(first, after, last, before),
            cluster=cluster,
            org=org,
            project=project,
        )
        return Connection[Secret].of(found)


@strawberry.type
class SecretsMutation:
    @strawberry.mutation(description="Delete a secret (the project's writers)")
    async def delete_secret(
        self,
        info: Info,
        input: Annotated[DeleteSecretInput, strawberry.argument(description="Which")],
    ) -> DeleteSecretPayload:
        ctx = info.context
        deleted = await ctx.platform.secrets.delete(ctx.session, await ctx.user(), input.uri)
        return DeleteSecretPayload(secret=cast(Secret, deleted))

    @strawberry.mutation(
        description="Re-encrypt every secret and imported bucket credential under the "
        "current key of GLIA_SECRETS_KEYS (platform admins)"
    )
    async def rotate_secrets_key(self, info: Info) -> RotateSecretsKeyPayload:
        ctx = info.context
        rotation = await ctx.platform.secrets.rotate_key(ctx.session, await ctx.user())
        return RotateSecretsKeyPayload(rotation=cast(SecretsRotation, rotation))
