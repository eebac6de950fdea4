"""``glia run``, ``ps``, ``status``, ``logs`` and ``kill``."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path

import typer

from cli import formatting
from cli.errors import EX_INTERRUPTED, error_line, exit_code_for
from cli.formatting import OutputFormat
from cli.session import current_config, open_client, run_async
from sdk import (
    UNFINISHED_STATUSES,
    BadInput,
    CliConfig,
    GliaError,
    Job,
    JobStatus,
    parse_duration,
    parse_since,
)

OUTPUT = typer.Option(OutputFormat.TABLE, "-o", "--output", help="Output format.")
RAW = typer.Option(
    False, "--raw", help="Pass the job's escape sequences to the terminal instead of showing them."
)


def register(app: typer.Typer) -> None:
    # Everything after the command's first argument belongs to the job, options included:
    # `glia run python -c "..."` works without `--`.
    app.command("run", context_settings={"allow_interspersed_args": False})(run)
    app.command("ps")(ps)
    app.command("status")(status)
    app.command("logs")(logs)
    app.command("kill")(kill)


def parse_env(pairs: Iterable[str], env_file: Path | None = None) -> dict[str, str]:
    """``KEY=VALUE`` pairs over the lines of an env file (``#`` comments, blank lines).

    Raises BadInput naming the bad entry.
    """
    env: dict[str, str] = {}
    if env_file is not None:
        try:
            lines = env_file.read_text().splitlines()
        except OSError as exc:
            raise BadInput(f"cannot read env file {env_file}: {exc.strerror}") from exc
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                key, value = _env_pair(line, f"{env_file}:{number}")
                env[key] = value
    for pair in pairs:
        key, value = _env_pair(pair, "-e")
        env[key] = value
    return env


def _env_pair(text: str, where: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
        raise BadInput(f"invalid environment variable {text!r} ({where}): expected KEY=VALUE")
    return key, value


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_since(text, datetime.now(UTC))
    except ValueError as exc:
        raise BadInput(str(exc)) from exc


def job_exit_code(job: Job) -> int:
    """The job's own exit code when it has one, else 0 for succeeded and 1 otherwise."""
    if job.exit_code is not None:
        return job.exit_code if 0 <= job.exit_code <= 255 else 1
    return 0 if job.status is JobStatus.SUCCEEDED else 1


def _ending(job: Job) -> str:
    """One line on why a job did not succeed: 'job-…: failed (OOMKilled, exit code 137): …'."""
    details = ", ".join(
        part
        for part in (job.reason, None if job.exit_code is None else f"exit code {job.exit_code}")
        if part
    )
    line = f"{job.id}: {job.status.value}" + (f" ({details})" if details else "")
    return line + (f": {job.status_description}" if job.status_description else "")


def run(
    command: list[str] = typer.Argument(..., help="The command to run, with its arguments."),
    preset: str | None = typer.Option(None, "--preset", help="Resource preset."),
    env: list[str] = typer.Option([], "-e", "--env", help="KEY=VALUE (repeatable)."),
    env_file: Path | None = typer.Option(None, "--env-file", help="KEY=VALUE lines."),
    working_dir: str | None = typer.Option(
        None, "-w", "--workdir", help="Working directory [default: a scratch directory of the job]"
    ),
    name: str | None = typer.Option(None, "--name", help="Job name."),
    tags: list[str] = typer.Option([], "--tag", help="Tag (repeatable)."),
    description: str | None = typer.Option(None, "-d", "--description"),
    life_span: str | None = typer.Option(None, "--life-span", help="e.g. 1h30m, 2d, 45s."),
    cluster: str | None = typer.Option(None, "--cluster", help="[default: configured]"),
    detach: bool = typer.Option(False, "--detach", help="Print the job id and return."),
    output: OutputFormat = OUTPUT,
    raw: bool = RAW,
) -> None:
    """Run a job and stream its output; exits with the job's exit code.

    Ctrl-C detaches: the job keeps running.
    """
    variables = parse_env(env, env_file)
    try:
        life_span_s = parse_duration(life_span).total_seconds() if life_span else None
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    config = current_config()
    submitted: list[str] = []  # the job id, known to the Ctrl-C handler once submitted

    async def submit_and_follow() -> int:
        async with open_client(config) as client:
            job = await client.jobs.submit(
                command,
                cluster=cluster or config.cluster,
                preset=preset,
                env=variables,
                working_dir=working_dir,
                name=name,
                tags=tags,
                description=description,
                life_span_s=life_span_s,
            )
            submitted.append(job.id)
            if detach:
                if output is OutputFormat.JSON:
                    formatting.print_json(job)
                else:
                    typer.echo(job.id)
                return 0
            formatting.notice(job.id)
            async with contextlib.aclosing(client.jobs.log_text(job.id, follow=True)) as chunks:
                async for chunk in chunks:
                    formatting.print_log_text(chunk, raw=raw)
            job = await client.jobs.get(job.id)
            if not job.status.is_finished:  # the log stream ended first: wait for the end
                async with contextlib.aclosing(client.jobs.watch_status(job.id)) as updates:
                    async for update in updates:
                        job = update
            if job.status is not JobStatus.SUCCEEDED:
                formatting.notice(_ending(job))
            return job_exit_code(job)

    try:
        code = run_async(submit_and_follow())
    except KeyboardInterrupt:
        if submitted:
            formatting.notice(f"detached; the job keeps running: glia kill {submitted[0]}")
        raise typer.Exit(EX_INTERRUPTED) from None
    raise typer.Exit(code)


def ps(
    statuses: list[JobStatus] = typer.Option(
        [], "-s", "--status", help="Status (repeatable) [default: pending, running, suspended]"
    ),
    name: str | None = typer.Option(None, "-n", "--name"),
    tags: list[str] = typer.Option([], "-t", "--tag", help="Jobs with all these tags."),
    all_: bool = typer.Option(False, "-a", "--all", help="Include finished jobs."),
    since: str | None = typer.Option(None, "--since", help="Duration (2h) or ISO time."),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many jobs."),
    output: OutputFormat = OUTPUT,
) -> None:
    """List your jobs, newest first."""
    wanted: Collection[JobStatus] | None = statuses or (None if all_ else UNFINISHED_STATUSES)
    created_after = _since(since)
    config = current_config()

    async def collect() -> list[Job]:
        jobs: list[Job] = []
        async with open_client(config) as client:
            async with contextlib.aclosing(
                client.jobs.iter_all(wanted, name, tags, created_after, page_size=min(limit, 100))
            ) as found:
                async for job in found:
                    jobs.append(job)
                    if len(jobs) >= limit:
                        break
        return jobs

    jobs = run_async(collect())
    if output is OutputFormat.JSON:
        formatting.print_json(jobs)
    else:
        formatting.print_jobs(jobs)


def status(
    job: str = typer.Argument(..., help="Job id or name."), output: OutputFormat = OUTPUT
) -> None:
    """Show a job and its status history."""
    found = run_async(_get(current_config(), job))
    if output is OutputFormat.JSON:
        formatting.print_json(found)
    else:
        formatting.print_job(found)


async def _get(config: CliConfig, id_or_name: str) -> Job:
    async with open_client(config) as client:
        return await client.jobs.get(id_or_name)


def logs(
    job: str = typer.Argument(..., help="Job id or name."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Wait for new lines."),
    since: str | None = typer.Option(None, "--since", help="Duration (10m) or ISO time."),
    timestamps: bool = typer.Option(False, "--timestamps", help="Prefix each line's time."),
    raw: bool = RAW,
) -> None:
    """Print a job's output; with -f keep following it until the job ends.

    Without -f, --since or --timestamps it downloads the output as the job printed it.
    """
    start = _since(since)
    config = current_config()

    async def stream() -> None:
        async with open_client(config) as client:
            if not (follow or start or timestamps):
                async with contextlib.aclosing(client.jobs.read_log(job)) as chunks:
                    async for chunk in chunks:
                        formatting.write_bytes(chunk, raw=raw)
                return
            if not timestamps:
                async with contextlib.aclosing(client.jobs.log_text(job, start, follow)) as texts:
                    async for text in texts:
                        formatting.print_log_text(text, raw=raw)
                return
            async with contextlib.aclosing(client.jobs.logs(job, start, follow)) as lines:
                async for line in lines:
                    formatting.print_log_line(line, timestamps=timestamps, raw=raw)

    try:
        run_async(stream())
    except KeyboardInterrupt:
        raise typer.Exit(EX_INTERRUPTED) from None


def kill(jobs: list[str] = typer.Argument(..., help="Job ids or names.")) -> None:
    """Kill jobs; goes on after a failure and exits non-zero if any failed."""
    config = current_config()

    async def kill_each() -> int:
        worst = 0
        async with open_client(config) as client:
            for id_or_name in jobs:
                try:
                    job = await client.jobs.kill(id_or_name)
                except GliaError as exc:
                    formatting.notice(f"{id_or_name}: {error_line(exc)}")
                    worst = worst or exit_code_for(exc)
                else:
                    typer.echo(f"{job.id} {job.status.value}")
        return worst

    raise typer.Exit(run_async(kill_each()))
