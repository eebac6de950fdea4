"""Quotas and credits: the caller's own, and what admins set (`glia.quotas`)."""

from __future__ import annotations

import builtins

from glia.model import parse_input
from glia.quotas import CreditsInput, Quota, QuotaInput, QuotaTarget
from sdk import documents
from sdk.resource import Resource


class QuotasResource(Resource):
    async def mine(
        self, *, org: str | None = None, cluster: str | None = None
    ) -> builtins.list[Quota]:
        """The four levels a job of the caller's in ``org`` (their own by default) on
        ``cluster`` (the default one) counts in, with their limits and the seats held."""
        data = await self._client.execute(documents.MY_QUOTAS, {"org": org, "cluster": cluster})
        return [Quota.model_validate(q) for q in data["myQuotas"]]

    async def get(
        self, *, org: str | None = None, cluster: str | None = None, user: str | None = None
    ) -> Quota:
        """One level's limits and use (for those who may set them)."""
        target = parse_input(QuotaTarget, {"org": org, "cluster": cluster, "user": user})
        data = await self._client.execute(documents.QUOTA, {"target": target.to_wire()})
        return Quota.model_validate(data["quota"])

    async def set(
        self,
        *,
        org: str | None = None,
        cluster: str | None = None,
        user: str | None = None,
        max_running_jobs: int | None = None,
        unlimited_running_jobs: bool = False,
        credits: float | None = None,
        unlimited_credits: bool = False,
    ) -> Quota:
        """Set a level's maximum of running jobs, credit balance, or both; the level is
        named by org; org and cluster; org and user; or cluster and user."""
        new = parse_input(
            QuotaInput,
            {
                "org": org,
                "cluster": cluster,
                "user": user,
                "max_running_jobs": max_running_jobs,
                "unlimited_running_jobs": unlimited_running_jobs,
                "credits": credits,
                "unlimited_credits": unlimited_credits,
            },
        )
        data = await self._client.execute(documents.SET_QUOTA, {"input": new.to_wire()})
        return Quota.model_validate(data["setQuota"]["quota"])

    async def add_credits(
        self,
        amount: float,
        *,
        org: str | None = None,
        cluster: str | None = None,
        user: str | None = None,
    ) -> Quota:
        """Add ``amount`` credits to a level's balance (negative: take them)."""
        new = parse_input(
            CreditsInput, {"org": org, "cluster": cluster, "user": user, "amount": amount}
        )
        data = await self._client.execute(documents.ADD_CREDITS, {"input": new.to_wire()})
        return Quota.model_validate(data["addCredits"]["quota"])
