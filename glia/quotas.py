"""Quotas and credits: how many jobs may run at once, and what there is to pay for them.

A quota is set at one of four levels of the tenancy (`glia.tenancy`), each named by the
fields of a `QuotaTarget`:

- ``org``: every job of an org, on every cluster (org);
- ``org cluster``: an org's jobs on one cluster (org, cluster);
- ``org user``: one member's jobs in an org, on every cluster (org, user);
- ``cluster user``: one user's jobs on one cluster, in every org (cluster, user).

A job counts at each of the four levels it falls in; every level that has a limit must
allow it, so the tightest one applies. A level holds a maximum of running jobs and a credit
balance, each unlimited when unset. Credits are spent while jobs run (their preset's price
per hour × run time) from every limited balance of the levels the job falls in.

A job holds a *seat* from its acceptance to its end, whether it waits for capacity, runs or
is suspended: "running jobs" is the count of seats. A job submitted with ``waitForSeat``
over the quota is kept without a seat (pending, QuotaExhausted) until one frees.
"""

from __future__ import annotations

import math
from typing import Self

from pydantic import field_validator, model_validator

from glia.errors import BadInput
from glia.model import DescribedEnum, Model

# Credits are stored in millionths, so that sums stay exact.
MICRO = 1_000_000
MAX_CREDITS = 1e12
MAX_RUNNING_JOBS = 1_000_000


class QuotaLevel(DescribedEnum):
    """Where in the tenancy a quota applies."""

    ORG = "org", "Every job of an org, on every cluster"
    ORG_CLUSTER = "org-cluster", "An org's jobs on one cluster"
    ORG_USER = "org-user", "One member's jobs in an org, on every cluster"
    CLUSTER_USER = "cluster-user", "One user's jobs on one cluster, in every org"


class QuotaTarget(Model):
    """The level a quota applies to, named by its fields: org; org and cluster; org and
    user; or cluster and user."""

    org: str | None = None
    """The org (levels org, org cluster, org user)."""
    cluster: str | None = None
    """The cluster (levels org cluster, cluster user)."""
    user: str | None = None
    """The user's name (levels org user, cluster user)."""

    @property
    def level(self) -> QuotaLevel:
        named = (self.org is not None, self.cluster is not None, self.user is not None)
        level = _LEVELS.get(named)
        if level is None:
            raise BadInput(
                "name a quota's level by org; org and cluster; org and user; or cluster and user",
                fields={"target": "not one of the four levels"},
            )
        return level

    @property
    def key(self) -> str:
        """The level's unique key in the store; `quota_keys` gives a job's four."""
        _ = self.level  # refuses a target that names no level
        return quota_key(self.org, self.cluster, self.user)

    def describe(self) -> str:
        level = self.level
        if level is QuotaLevel.ORG:
            return f"org {self.org}"
        if level is QuotaLevel.ORG_CLUSTER:
            return f"org {self.org} on cluster {self.cluster}"
        if level is QuotaLevel.ORG_USER:
            return f"{self.user} in org {self.org}"
        return f"{self.user} on cluster {self.cluster}"


_LEVELS = {
    (True, False, False): QuotaLevel.ORG,
    (True, True, False): QuotaLevel.ORG_CLUSTER,
    (True, False, True): QuotaLevel.ORG_USER,
    (False, True, True): QuotaLevel.CLUSTER_USER,
}


def quota_key(org: str | None, cluster: str | None, user: str | None) -> str:
    # Names never hold "/" (glia.tenancy.check_name), so the key is unambiguous.
    return f"{org or ''}/{cluster or ''}/{user or ''}"


def job_targets(org: str, cluster: str, user: str) -> list[QuotaTarget]:
    """The four levels a job of ``user`` in ``org`` on ``cluster`` counts in, the widest
    first."""
    return [
        QuotaTarget(org=org),
        QuotaTarget(org=org, cluster=cluster),
        QuotaTarget(org=org, user=user),
        QuotaTarget(cluster=cluster, user=user),
    ]


class Quota(Model):
    """A level's limits, and what its jobs use of them now."""

    level: QuotaLevel
    """Where it applies."""
    org: str | None = None
    """The org (levels org, org cluster, org user)."""
    cluster: str | None = None
    """The cluster (levels org cluster, cluster user)."""
    user: str | None = None
    """The user (levels org user, cluster user)."""
    max_running_jobs: int | None = None
    """At most this many jobs hold a seat at once (waiting, running or suspended); null for
    no limit."""
    running_jobs: int = 0
    """The jobs that hold a seat now."""
    credits: float | None = None
    """The credit balance; null for no limit. Running jobs spend it; at zero their
    submissions fail and their jobs are cancelled."""


class QuotaInput(Model):
    """What `setQuota` changes at one level: the maximum of running jobs, the credit
    balance, or both; what is left out keeps its value."""

    org: str | None = None
    """The org (levels org, org cluster, org user)."""
    cluster: str | None = None
    """The cluster (levels org cluster, cluster user)."""
    user: str | None = None
    """The user (levels org user, cluster user)."""
    max_running_jobs: int | None = None
    """The most jobs that may hold a seat at once; left out: unchanged."""
    unlimited_running_jobs: bool = False
    """True: no limit of running jobs (instead of ``maxRunningJobs``)."""
    credits: float | None = None
    """The balance to set; left out: unchanged."""
    unlimited_credits: bool = False
    """True: no credit limit (instead of ``credits``)."""

    @field_validator("max_running_jobs")
    @classmethod
    def _running(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= MAX_RUNNING_JOBS:
            raise ValueError(f"a maximum of running jobs is 0 to {MAX_RUNNING_JOBS:,}")
        return value

    @field_validator("credits")
    @classmethod
    def _credits(cls, value: float | None) -> float | None:
        if value is not None and (math.isnan(value) or not -MAX_CREDITS <= value <= MAX_CREDITS):
            raise ValueError(f"credits are a number within ±{MAX_CREDITS:g}")
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        if self.unlimited_running_jobs and self.max_running_jobs is not None:
            raise ValueError("give maxRunningJobs or unlimitedRunningJobs, not both")
        if self.unlimited_credits and self.credits is not None:
            raise ValueError("give credits or unlimitedCredits, not both")
        if not (
            self.unlimited_running_jobs
            or self.max_running_jobs is not None
            or self.unlimited_credits
            or self.credits is not None
        ):
            raise ValueError("nothing to set: give a maximum of running jobs or credits")
        return self

    @property
    def target(self) -> QuotaTarget:
        return QuotaTarget(org=self.org, cluster=self.cluster, user=self.user)


class CreditsInput(Model):
    """Credits to add to (or, negative, take from) a level's balance."""

    org: str | None = None
    """The org (levels org, org cluster, org user)."""
    cluster: str | None = None
    """The cluster (levels org cluster, cluster user)."""
    user: str | None = None
    """The user (levels org user, cluster user)."""
    amount: float
    """How many credits."""

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: float) -> float:
        if math.isnan(value) or value == 0 or not -MAX_CREDITS <= value <= MAX_CREDITS:
            raise ValueError(f"an amount of credits is non-zero, within ±{MAX_CREDITS:g}")
        return value

    @property
    def target(self) -> QuotaTarget:
        return QuotaTarget(org=self.org, cluster=self.cluster, user=self.user)


def to_micro(credits: float) -> int:
    return round(credits * MICRO)


def from_micro(micro: int) -> float:
    return micro / MICRO


def cost_micro(credits_per_hour: float, seconds: float) -> int:
    """What ``seconds`` of a job priced ``credits_per_hour`` costs, in millionths (negative
    seconds: a refund)."""
    return round(credits_per_hour * MICRO * seconds / 3600)
