"""``glia admin add-cluster|update-cluster|rm-cluster|ls-clusters``: the cluster life cycle
(the server checks the caller is a platform admin); ``glia admin add-preset|update-preset|
rm-preset|set-cluster-life-span``: a cluster's presets and settings (the cluster's admins).

A remote cluster's gateway secret is printed once, by add-cluster, for its operator to give
to ``glia gateway serve`` (``GLIA_GATEWAY_SECRET``); nothing shows it again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cli.options import (
    GliaCommand,
    OutputFormat,
    cluster_option,
    flag,
    output_option,
    with_examples,
)

if TYPE_CHECKING:
    from sdk import GliaClient

T = TypeVar("T")

CLUSTER = cluster_option()
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


def _preset_spec(text: str) -> Any:
    """``NAME:CPU:MEMORY[:GPU]`` (``cpu-small:0.5:1G``) as a `PresetSpec`."""
    from sdk import BadInput, PresetSpec

    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise BadInput(f"--preset {text!r}: write NAME:CPU:MEMORY[:GPU], as cpu-small:0.5:1G")
    try:
        return PresetSpec(
            name=parts[0],
            cpu=float(parts[1]),
            memory_mb=_mib(parts[2], "--preset"),
            gpu=int(parts[3]) if len(parts) == 4 else 0,
        )
    except ValueError as exc:
        raise BadInput(f"--preset {text!r}: {exc}") from None


def _show_cluster(cluster: Any, output: OutputFormat) -> None:
    from cli import formatting

    if output is not OutputFormat.TABLE:
        formatting.print_data(cluster, output)
        return
    formatting.print_cluster_config(cluster)


CLUSTER_NAME = typer.Argument(..., metavar="CLUSTER", help="The cluster's name.")
STORAGE_URL = typer.Option(
    None, "--storage-url", metavar="URL", help="Its storage's endpoint (http(s) URL)."
)
REGISTRY_URL = typer.Option(
    None, "--registry-url", metavar="URL", help="Its image registry's endpoint (http(s) URL)."
)
RUNTIME_HELP = "What runs its jobs: local, kubernetes."
LIFE_SPAN = typer.Option(
    None,
    "--life-span",
    metavar="DURATION",
    help="Life span of its jobs that ask for none: 2h, 1d ('none' for no limit).",
)


def _life_span_s(text: str | None) -> float | None:
    from sdk import parse_duration

    if text is None or text == "none":
        return None
    return parse_duration(text).total_seconds()


def add_cluster(
    name: str = CLUSTER_NAME,
    gateway: str = typer.Option(
        "local",
        "--gateway",
        metavar="URL|local",
        help="local (a gateway inside the control plane, its own data dir) or the URL of the "
        "cluster's glia gateway serve.",
    ),
    runtime: str = typer.Option("local", "--runtime", metavar="RUNTIME", help=RUNTIME_HELP),
    storage_url: str | None = STORAGE_URL,
    registry_url: str | None = REGISTRY_URL,
    life_span: str | None = LIFE_SPAN,
    preset: list[str] = typer.Option(
        [],
        "--preset",
        metavar="NAME:CPU:MEMORY[:GPU]",
        help="A preset (repeat for more; the first is the default). None: three sized to "
        "its capacity.",
    ),
    output: OutputFormat = output_option(),
) -> None:
    """Register a cluster and open its gateway. For a remote gateway, its shared secret is
    printed once: give it to the cluster's glia gateway serve as GLIA_GATEWAY_SECRET."""
    from cli import formatting

    presets = [_preset_spec(text) for text in preset]

    async def add(client: GliaClient) -> Any:
        return await client.clusters.register(
            name,
            gateway=gateway,
            runtime=runtime.lower(),
            storage_url=storage_url,
            registry_url=registry_url,
            default_life_span_s=_life_span_s(life_span),
            presets=presets,
        )

    registered = _call(add, "Registering the cluster")
    if output is not OutputFormat.TABLE:
        formatting.print_data(registered, output)
        return
    formatting.print_cluster_config(registered.cluster)
    if registered.gateway_secret:
        formatting.print_fields([("Gateway secret", registered.gateway_secret)])
        formatting.notice(
            "The gateway secret is shown only once: start the cluster's gateway with "
            "GLIA_GATEWAY_SECRET set to it."
        )


def update_cluster(
    name: str = CLUSTER_NAME,
    runtime: str | None = typer.Option(None, "--runtime", metavar="RUNTIME", help=RUNTIME_HELP),
    storage_url: str | None = STORAGE_URL,
    registry_url: str | None = REGISTRY_URL,
    life_span: str | None = LIFE_SPAN,
    output: OutputFormat = output_option(),
) -> None:
    """Change a cluster's config: the options given, the rest as it is ('' clears a URL).
    Its presets change with add-preset and update-preset, for jobs submitted after."""
    given: dict[str, Any] = {
        "runtime": runtime.lower() if runtime else None,
        "storage_url": storage_url,
        "registry_url": registry_url,
    }
    changes = {key: (value or None) for key, value in given.items() if value is not None}
    if life_span is not None:
        changes["default_life_span_s"] = _life_span_s(life_span)

    async def update(client: GliaClient) -> Any:
        return await client.clusters.update(name, **changes)

    _show_cluster(_call(update, "Changing the cluster"), output)


def rm_cluster(
    name: str = CLUSTER_NAME,
    yes: bool = flag("--yes", help="Do not ask: its unfinished jobs are cancelled."),
    output: OutputFormat = output_option(),
) -> None:
    """Decommission a cluster: its unfinished jobs are cancelled first (and listed), then
    it is removed with its jobs' records."""
    from cli import formatting

    if not yes and not typer.confirm(
        f"Cancel every unfinished job of cluster {name} and remove it?", err=True
    ):
        raise typer.Exit(1)

    async def remove(client: GliaClient) -> Any:
        return await client.clusters.decommission(name)

    removed = _call(remove, "Decommissioning the cluster")
    if output is not OutputFormat.TABLE:
        formatting.print_data(removed, output)
        return
    stopped = removed.stopped_jobs
    formatting.notice(
        f"Cluster {name} removed; {len(stopped)} unfinished job(s) cancelled"
        + (":" if stopped else ".")
    )
    for job_id in stopped:
        formatting.notice(f"  {job_id}")


def ls_clusters(output: OutputFormat = output_option()) -> None:
    """List the registered clusters with their status, last heartbeat and capacity."""
    from cli import formatting

    async def configs(client: GliaClient) -> Any:
        return await client.clusters.configs()

    found = _call(configs, "Listing clusters")
    if output is not OutputFormat.TABLE:
        formatting.print_data(found, output)
    else:
        formatting.print_cluster_configs(found)


with_examples(
    "glia admin add-cluster lab",
    "glia admin add-cluster gpu-farm --gateway https://gpu-farm.example.com:8443 "
    "--preset gpu-1:8:64G:1",
)(add_cluster)
with_examples(
    "glia admin update-cluster gpu-farm --registry-url https://registry.example.com",
    "glia admin update-cluster lab --life-span 1d",
)(update_cluster)
with_examples("glia admin rm-cluster lab --yes")(rm_cluster)
with_examples("glia admin ls-clusters", "glia admin ls-clusters -o json")(ls_clusters)

COMMANDS: dict[str, Callable[..., None]] = {
    "add-cluster": add_cluster,
    "update-cluster": update_cluster,
    "rm-cluster": rm_cluster,
    "ls-clusters": ls_clusters,
    "add-preset": add_preset,
    "update-preset": update_preset,
    "rm-preset": rm_preset,
    "set-cluster-life-span": set_cluster_life_span,
}
