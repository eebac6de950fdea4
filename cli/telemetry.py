"""``glia top``: what running jobs use, live."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from cli.jobs import complete_job
from cli.options import GliaCommand, with_examples

if TYPE_CHECKING:
    from glia.jobs import Job
    from glia.telemetry import TelemetrySample
    from sdk import GliaClient

# Without JOB: the caller's running jobs are listed again this often, and at most this many
# (the newest) are followed, one subscription each: within the server's 50 a connection.
RELIST_S = 5.0
MAX_JOBS = 40
# Samples waiting to be shown; past it the newest are dropped (the next ones come in a second).
MAX_WAITING = 1000
# The table is redrawn at most this often.
REDRAW_S = 0.5


def register(app: typer.Typer) -> None:
    app.command("top", cls=GliaCommand)(top)


def top(
    job: str | None = typer.Argument(
        None,
        metavar="[JOB]",
        help="Job id, unique id prefix or name; without it, your running jobs (the newest 40).",
        autocompletion=complete_job,
    ),
    output: str | None = typer.Option(
        None,
        "-o",
        "--output",
        metavar="table|json",
        help="table: a live table; json: each sample as a line of JSON (the API's field names).",
        show_default="table on a terminal, json when piped",
    ),
) -> None:
    """Show what running jobs use (CPU, memory, GPUs), about once a second, until Ctrl-C or,
    for one JOB, until it ends. CPU is in percent of one core (200% is two busy cores)."""
    from cli.errors import EX_INTERRUPTED
    from cli.session import current_config, open_client, run_async
    from sdk import BadInput

    as_json = (output or ("table" if sys.stdout.isatty() else "json")).lower()
    if as_json not in ("table", "json"):
        raise BadInput(f"--output: table or json, not {output!r}", fields={"output": "unknown"})
    context = current_config()

    async def show() -> None:
        async with open_client(context) as client:
            if as_json == "json":
                await _follow(client, job, context.username, _print_json)
                return
            await _live_table(client, job, context.username)

    try:
        run_async(show())
    except KeyboardInterrupt:
        raise typer.Exit(EX_INTERRUPTED) from None


with_examples("glia top", "glia top train", "glia top job-0a1b2c3d -o json | head -5")(top)


def _print_json(job: Job, sample: TelemetrySample) -> None:
    sys.stdout.write(json.dumps(sample.to_wire()) + "\n")
    sys.stdout.flush()


async def _follow(
    client: GliaClient,
    ref: str | None,
    username: str | None,
    shown: Callable[[Job, TelemetrySample], None],
    ended: Callable[[Job], None] | None = None,
) -> None:
    """Hand each sample of the job (or of the user's running jobs) to ``shown``; returns when
    the one job ends (never without JOB). A failure of any follower is raised here."""
    from sdk import JobStatus

    # (job, sample) for a sample, (job, None) when its telemetry ended, an error to raise.
    waiting: asyncio.Queue[tuple[Job, TelemetrySample | None] | BaseException] = asyncio.Queue(
        MAX_WAITING
    )
    followed: dict[str, asyncio.Task[None]] = {}

    def put(item: tuple[Job, TelemetrySample | None] | BaseException, *, drop: bool) -> None:
        if drop and waiting.full():
            return  # a slow terminal loses samples, never the end of a job or an error
        if waiting.full():
            waiting.get_nowait()
        waiting.put_nowait(item)

    async def follow(job: Job) -> None:
        try:
            async with contextlib.aclosing(client.telemetry.follow(job.id)) as samples:
                async for sample in samples:
                    put((job, sample), drop=True)
        except Exception as exc:
            put(exc, drop=False)
        else:
            put((job, None), drop=False)

    async def relist() -> None:
        try:
            while True:
                page = await client.jobs.list([JobStatus.RUNNING], owner=username, first=MAX_JOBS)
                for job in page.items:
                    if job.id not in followed:
                        followed[job.id] = asyncio.create_task(follow(job))
                await asyncio.sleep(RELIST_S)
        except Exception as exc:
            put(exc, drop=False)

    listing: asyncio.Task[None] | None = None
    if ref is not None:
        one = await client.jobs.get(ref)
        followed[one.id] = asyncio.create_task(follow(one))
    else:
        listing = asyncio.create_task(relist())
    try:
        while True:
            item = await waiting.get()
            if isinstance(item, BaseException):
                raise item
            job, sample = item
            if sample is not None:
                shown(job, sample)
                continue
            followed.pop(job.id, None)
            if ended is not None:
                ended(job)
            if ref is not None:
                return
    finally:
        tasks = [*followed.values(), *([listing] if listing else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _live_table(client: GliaClient, ref: str | None, username: str | None) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    rows: dict[str, tuple[Job, TelemetrySample]] = {}

    def table() -> Table:
        grid = Table(box=None, header_style="bold")
        for column in ("JOB", "NAME", "CPU", "MEMORY", "GPU", "GPU MEMORY"):
            justify: Any = "left" if column in ("JOB", "NAME") else "right"
            grid.add_column(column, justify=justify, no_wrap=True)
        for job, sample in sorted(rows.values(), key=lambda row: row[0].id):
            gpus = sample.gpus
            gpu = f"{sum(g.utilization_percent for g in gpus) / len(gpus):.0f}%" if gpus else "-"
            gpu_memory = _bytes(sum(g.memory_bytes for g in gpus)) if gpus else "-"
            grid.add_row(
                job.id,
                job.name or "",
                f"{sample.cpu_percent:.1f}%",
                _bytes(sample.memory_bytes),
                gpu,
                gpu_memory,
            )
        if not rows:
            grid.caption = "waiting for samples of running jobs…"
        return grid

    with Live(table(), console=Console(), auto_refresh=False) as live:
        loop = asyncio.get_running_loop()
        drawn_at = 0.0

        def shown(job: Job, sample: TelemetrySample) -> None:
            nonlocal drawn_at
            rows[job.id] = (job, sample)
            if loop.time() - drawn_at >= REDRAW_S:
                drawn_at = loop.time()
                live.update(table(), refresh=True)

        def ended(job: Job) -> None:
            rows.pop(job.id, None)
            live.update(table(), refresh=True)

        await _follow(client, ref, username, shown, ended)


def _bytes(count: int) -> str:
    """``512.0 MiB``, ``1.5 GiB``: memory as people read it."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
