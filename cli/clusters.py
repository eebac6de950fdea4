"""``glia admin add-preset|update-preset|rm-preset|set-cluster-life-span``: a cluster's
presets and settings (the server checks the caller is one of the cluster's admins)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cli.options import GliaCommand, OutputFormat, flag, output_option, with_examples

if TYPE_CHECKING:
    from sdk import GliaClient

T = TypeVar("T")

CLUSTER = typer.Option(
    None, "--cluster", metavar="CLUSTER", help="The cluster (default: the context's)."
)
PRESET = typer.Argument(..., metavar="PRESET", help="The preset's name.")


def register(admin_app: typer.Typer) -> None:
    for name, command in COMMANDS.items():
        admin_app.command(name, cls=GliaCommand)(command)


def _call(action: Callable[[GliaClient], Awaitable[T]], waiting: str) -> T:
    from cli.session import call_client

    return call_client(action, waiting=waiting)


async def _cluster_name(client: GliaClient, cluster: str | None) -> str:
    """The cluster named, else the context's, else the server's default."""
    from cli.session import current_config

    if cluster:
        return cluster
    if current_config().cluster:
        return str(current_config().cluster)
    clusters = await client.clusters.list()
    if not clusters:
        from sdk import NotFound

        raise NotFound("the server has no cluster")
    return clusters[0].name


def _show_preset(preset: Any, output: OutputFormat) -> None:
    from cli import formatting

    if output is not OutputFormat.TABLE:
        formatting.print_data(preset, output)
        return
    formatting.print_presets([preset])


def add_preset(
    name: str = PRESET,
    cpu: float = typer.Option(
        ..., "--cpu", metavar="CORES", help="CPU cores (0.5 is half a core)."
    ),
    memory: str = typer.Option(
        ..., "--memory", metavar="SIZE", help="Memory: 512M, 4G (MiB, GiB)."
    ),
    gpu: int = typer.Option(0, "--gpu", metavar="N", help="Whole GPUs."),
    gpu_model: str | None = typer.Option(
        None, "--gpu-model", metavar="MODEL", help="The GPUs' model (A100)."
    ),
    shm: str | None = typer.Option(
        None, "--shm", metavar="SIZE", help="Shared memory (/dev/shm): 1G."
    ),
    pids_limit: int = typer.Option(
        1024, "--pids-limit", metavar="N", help="Processes and threads."
    ),
    credits_per_hour: float = typer.Option(
        0.0, "--credits-per-hour", metavar="CREDITS", help="Price per hour."
    ),
    preemptible: bool = flag("--preemptible", help="Its jobs may be suspended for others."),
    no_scheduler: bool = flag(
        "--no-scheduler", help="Its jobs do not wait for room: they fail when they do not fit."
    ),
    cluster: str | None = CLUSTER,
    output: OutputFormat = output_option(),
) -> None:
    """Add a preset to a cluster."""

    async def add(client: GliaClient) -> Any:
        return await client.clusters.add_preset(
            await _cluster_name(client, cluster),
            name,
            cpu=cpu,
            memory_mb=_mib(memory, "--memory"),
            gpu=gpu,
            gpu_model=gpu_model,
            shm_mb=_mib(shm, "--shm") if shm else None,
            pids_limit=pids_limit,
            credits_per_hour=credits_per_hour,
            preemptible=preemptible,
            scheduler_enabled=not no_scheduler,
        )

    _show_preset(_call(add, "Adding the preset"), output)


def update_preset(
    name: str = PRESET,
    cpu: float | None = typer.Option(None, "--cpu", metavar="CORES", help="CPU cores."),
    memory: str | None = typer.Option(None, "--memory", metavar="SIZE", help="Memory: 512M, 4G."),
    gpu: int | None = typer.Option(None, "--gpu", metavar="N", help="Whole GPUs."),
    gpu_model: str | None = typer.Option(
        None, "--gpu-model", metavar="MODEL", help="The GPUs' model."
    ),
    shm: str | None = typer.Option(
        None, "--shm", metavar="SIZE", help="Shared memory (/dev/shm): 1G."
    ),
    pids_limit: int | None = typer.Option(
        None, "--pids-limit", metavar="N", help="Processes and threads."
    ),
    credits_per_hour: float | None = typer.Option(
        None, "--credits-per-hour", metavar="CREDITS", help="Price per hour."
    ),
    preemptible: bool | None = typer.Option(
        None, "--preemptible/--not-preemptible", help="Whether its jobs may be suspended."
    ),
    scheduler: bool | None = typer.Option(
        None, "--scheduler/--no-scheduler", help="Whether its jobs wait for room."
    ),
    cluster: str | None = CLUSTER,
    output: OutputFormat = output_option(),
) -> None:
    """Change a cluster's preset: the options given, the rest as it is. Jobs submitted
    before keep the resources they had."""
    given = {
        "cpu": cpu,
        "memory_mb": None if memory is None else _mib(memory, "--memory"),
        "gpu": gpu,
        "gpu_model": gpu_model,
        "shm_mb": None if shm is None else _mib(shm, "--shm"),
        "pids_limit": pids_limit,
        "credits_per_hour": credits_per_hour,
        "preemptible": preemptible,
        "scheduler_enabled": scheduler,
    }
    changes = {key: value for key, value in given.items() if value is not None}

    async def update(client: GliaClient) -> Any:
        name_of_cluster = await _cluster_name(client, cluster)
        return await client.clusters.update_preset(name_of_cluster, name, **changes)

    _show_preset(_call(update, "Changing the preset"), output)


def rm_preset(
    name: str = PRESET, cluster: str | None = CLUSTER, output: OutputFormat = output_option()
) -> None:
    """Remove a preset from a cluster; its jobs keep running, new ones cannot ask for it."""

    async def remove(client: GliaClient) -> Any:
        return await client.clusters.remove_preset(await _cluster_name(client, cluster), name)

    _show_preset(_call(remove, "Removing the preset"), output)


def set_cluster_life_span(
    life_span: str = typer.Argument(
        ..., metavar="DURATION", help="2h, 1d30m; 'none' for no limit."
    ),
    cluster: str | None = CLUSTER,
) -> None:
    """Set the life span of a cluster's jobs that ask for none (glia run --life-span)."""
    from cli import formatting
    from sdk import format_duration, parse_duration

    seconds = None if life_span == "none" else parse_duration(life_span).total_seconds()

    async def update(client: GliaClient) -> Any:
        name = await _cluster_name(client, cluster)
        return await client.clusters.update_settings(name, default_life_span_s=seconds)

    updated = _call(update, "Changing the cluster")
    span = updated.default_life_span_s
    shown = format_duration(timedelta(seconds=span)) if span is not None else "no limit"
    formatting.print_fields([("Cluster", updated.name), ("Default life span", shown)])


def _mib(text: str, option: str) -> int:
    """``512M`` → 512, ``4G`` → 4096, ``1.5G`` → 1536, a bare number is MiB."""
    from cli.options import parse_size

    return parse_size(text, option, unit=1024**2) // 1024**2


with_examples(
    "glia admin add-preset gpu-a100 --cpu 8 --memory 64G --gpu 1 --gpu-model A100",
    "glia admin add-preset cpu-tiny --cpu 0.25 --memory 256M --credits-per-hour 0.1",
)(add_preset)
with_examples(
    "glia admin update-preset cpu-small --memory 2G",
    "glia admin update-preset gpu-1 --no-scheduler",
)(update_preset)
with_examples("glia admin rm-preset cpu-tiny")(rm_preset)
with_examples("glia admin set-cluster-life-span 1d", "glia admin set-cluster-life-span none")(
    set_cluster_life_span
)

COMMANDS: dict[str, Callable[..., None]] = {
    "add-preset": add_preset,
    "update-preset": update_preset,
    "rm-preset": rm_preset,
    "set-cluster-life-span": set_cluster_life_span,
}
