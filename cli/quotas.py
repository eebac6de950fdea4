"""``glia admin set-quota|add-credits|quota``: running-jobs quotas and credit balances at the
four levels of the tenancy (the server checks who may: see `glia.quotas`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from cli.options import GliaCommand, OutputFormat, output_option, with_examples

if TYPE_CHECKING:
    from sdk import GliaClient, Quota

ORG = typer.Option(
    None, "--org", metavar="ORG", help="The org (levels org, org cluster, org user)."
)
CLUSTER = typer.Option(
    None, "--cluster", metavar="CLUSTER", help="The cluster (levels org cluster, cluster user)."
)
USER = typer.Option(
    None, "--user", metavar="USER", help="The user (levels org user, cluster user)."
)
UNLIMITED = "unlimited"


def register(admin_app: typer.Typer) -> None:
    for name, command in COMMANDS.items():
        admin_app.command(name, cls=GliaCommand)(command)


def _show(quota: Quota, output: OutputFormat) -> None:
    from cli import formatting

    if output is not OutputFormat.TABLE:
        formatting.print_data(quota, output)
        return
    formatting.print_quotas([quota])


def _limit(text: str | None, option: str, parse: Callable[[str], Any]) -> tuple[Any, bool]:
    """``--running-jobs 10`` → (10, False); ``unlimited`` → (None, True); unset → (None, False)."""
    from sdk import BadInput

    if text is None:
        return None, False
    if text.strip().lower() in (UNLIMITED, "none"):
        return None, True
    try:
        return parse(text), False
    except ValueError:
        raise BadInput(f"{option}: {text!r} is neither a number nor {UNLIMITED!r}") from None


def set_quota(
    org: str | None = ORG,
    cluster: str | None = CLUSTER,
    user: str | None = USER,
    running_jobs: str | None = typer.Option(
        None,
        "--running-jobs",
        metavar="N|unlimited",
        help="The most jobs that may hold a seat at once (waiting, running or suspended).",
    ),
    credits: str | None = typer.Option(
        None, "--credits", metavar="CREDITS|unlimited", help="The credit balance to set."
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Set a level's maximum of running jobs, its credit balance, or both. The level is
    named by --org; --org and --cluster; --org and --user; or --cluster and --user. What
    is not given keeps its value."""
    from cli.session import call_client

    jobs, no_job_limit = _limit(running_jobs, "--running-jobs", int)
    balance, no_credit_limit = _limit(credits, "--credits", float)

    async def change(client: GliaClient) -> Quota:
        return await client.quotas.set(
            org=org,
            cluster=cluster,
            user=user,
            max_running_jobs=jobs,
            unlimited_running_jobs=no_job_limit,
            credits=balance,
            unlimited_credits=no_credit_limit,
        )

    _show(call_client(change, waiting="Setting the quota"), output)


def add_credits(
    amount: float = typer.Argument(
        ..., metavar="AMOUNT", help="Credits to add (negative: to take away)."
    ),
    org: str | None = ORG,
    cluster: str | None = CLUSTER,
    user: str | None = USER,
    output: OutputFormat = output_option(),
) -> None:
    """Add credits to a level's balance (a level without a credit limit gets one)."""
    from cli.session import call_client

    async def add(client: GliaClient) -> Quota:
        return await client.quotas.add_credits(amount, org=org, cluster=cluster, user=user)

    _show(call_client(add, waiting="Adding credits"), output)


def show_quota(
    org: str | None = ORG,
    cluster: str | None = CLUSTER,
    user: str | None = USER,
    output: OutputFormat = output_option(),
) -> None:
    """Show one level's limits and the seats held (for those who may set them)."""
    from cli.session import call_client

    async def get(client: GliaClient) -> Quota:
        return await client.quotas.get(org=org, cluster=cluster, user=user)

    _show(call_client(get, waiting="Asking the server"), output)


with_examples(
    "glia admin set-quota --org lab --running-jobs 20 --credits 1000",
    "glia admin set-quota --org lab --user alice --running-jobs 4",
    "glia admin set-quota --cluster default --user bob --credits unlimited",
)(set_quota)
with_examples(
    "glia admin add-credits 500 --org lab", "glia admin add-credits -- -50 --org lab --user bob"
)(add_credits)
with_examples("glia admin quota --org lab --cluster default")(show_quota)

COMMANDS: dict[str, Callable[..., None]] = {
    "set-quota": set_quota,
    "add-credits": add_credits,
    "quota": show_quota,
}
