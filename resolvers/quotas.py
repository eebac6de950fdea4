from __future__ import annotations

from typing import Annotated, cast

import strawberry

from glia import quotas as kernel
from graph.context import Info
from graph.types.base import model_from_input
from graph.types.quotas import (
    AddCreditsInput,
    Quota,
    QuotaPayload,
    QuotaTargetInput,
    SetQuotaInput,
)


@strawberry.type
class QuotasQuery:
    @strawberry.field(
        description="The caller's quotas where their jobs would run: the four levels a job "
        "of theirs in the org on the cluster counts in (org, org cluster, org user, cluster "
        "user), each with its limits (null: none) and the seats held now"
    )
    async def my_quotas(
        self,
        info: Info,
        org: Annotated[
            str | None, strawberry.argument(description="The org; null for the caller's own")
        ] = None,
        cluster: Annotated[
            str | None, strawberry.argument(description="The cluster; null for the default")
        ] = None,
    ) -> list[Quota]:
        ctx = info.context
        found = await ctx.platform.quotas.mine(ctx.session, await ctx.user(), org, cluster)
        return cast(list[Quota], found)

    @strawberry.field(
        description="One level's limits and use (those who may set them: the platform's "
        "admins; an org's admins for its members; a cluster's admins for its orgs and users)"
    )
    async def quota(
        self,
        info: Info,
        target: Annotated[QuotaTargetInput, strawberry.argument(description="The level")],
    ) -> Quota:
        ctx = info.context
        found = await ctx.platform.quotas.get(
            ctx.session, await ctx.user(), model_from_input(kernel.QuotaTarget, target)
        )
        return cast(Quota, found)


@strawberry.type
class QuotasMutation:
    @strawberry.mutation(
        description="Set a level's maximum of running jobs, credit balance, or both (see "
        "`quota` for who may)"
    )
    async def set_quota(
        self, info: Info, input: Annotated[SetQuotaInput, strawberry.argument(description="It")]
    ) -> QuotaPayload:
        ctx = info.context
        quota = await ctx.platform.quotas.set(
            ctx.session, await ctx.user(), model_from_input(kernel.QuotaInput, input)
        )
        return QuotaPayload(quota=cast(Quota, quota))

    @strawberry.mutation(
        description="Add credits to a level's balance, or take some with a negative amount "
        "(see `quota` for who may)"
    )
    async def add_credits(
        self,
        info: Info,
        input: Annotated[AddCreditsInput, strawberry.argument(description="How many, where")],
    ) -> QuotaPayload:
        ctx = info.context
        quota = await ctx.platform.quotas.add_credits(
            ctx.session, await ctx.user(), model_from_input(kernel.CreditsInput, input)
        )
        return QuotaPayload(quota=cast(Quota, quota))
