"""``glia run``, ``ps``, ``status``, ``logs`` and ``kill``.

Only typer is imported at the top (``glia --help`` builds every command's signature); the SDK
and the formatting are imported in the command bodies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.options import (
    JOB_STATUSES,
    GliaCommand,
    OutputFormat,
    choices_help,
    cluster_option,
    complete_from,
    flag,
    output_option,
    with_examples,
)

if TYPE_CHECKING:
    from datetime import datetime

    from sdk import GliaClient, Job
    from sdk.config import Context

# How many of a job's last output lines `glia status` shows when it failed at once, and how
# soon after its start a failure counts as "at once".
TAIL_LINES = 10
QUICK_FAILURE_S = 10.0
# The job list that completion reads; it gives up quietly when the server is slower.
COMPLETION_TIMEOUT_S = 2.0
# How long Ctrl-C waits for `glia ps --watch`'s subscription to end.
WATCH_STOP_S = 2.0
# `glia ps --watch` reads the listing again at most this often when jobs change, and at
# least this often when none seems to.
WATCH_REFRESH_S = 0.5
WATCH_RELIST_S = 30.0
# What `glia run` syncs at most of the directory it is typed in (--max-sync-size), and
# where it keeps such directories in the project's storage.
DEFAULT_SYNC_LIMIT = "100M"
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
WORKDIRS = ".glia/workdirs"


def complete_job(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Job ids and names that start with ``incomplete``, from the server; nothing on error
    (completion must never print a traceback into the shell)."""
    try:
        import asyncio

        return asyncio.run(
            asyncio.wait_for(_job_completions(ctx, incomplete), COMPLETION_TIMEOUT_S)
        )
    except Exception:
        return []


async def _job_completions(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    from cli.session import open_client
    from sdk import UNFINISHED_STATUSES, load_config

    config = load_config()
    name = ctx.find_root().params.get("context")
    context = config.context(name) if name else config.current
    found: list[tuple[str, str]] = []
    async with open_client(context) as client:
        page = await client.jobs.list(None if ctx.params.get("all_") else None, first=100)
        jobs = list(page.items)
    unfinished = [j for j in jobs if j.status in UNFINISHED_STATUSES]
    # Unfinished jobs first: they are what kill and logs -f are for.
    for job in [*unfinished, *(j for j in jobs if j.status not in UNFINISHED_STATUSES)]:
        summary = f"{job.status.value}: {' '.join(job.command)}"[:60]
        if job.id.startswith(incomplete):
            found.append((job.id, summary))
        if job.name and job.name.startswith(incomplete):
            found.append((job.name, summary))
    return found


JOB = typer.Argument(
    ..., metavar="JOB", help="Job id, unique id prefix or name.", autocompletion=complete_job
)
RAW = flag("--raw", help="Pass the job's escape sequences to the terminal instead of showing them.")

# `glia job …`: what is done to one job beyond run, status, logs and kill. Each command is a
# function of its own, registered in `register`.
job_app = typer.Typer(
    name="job",
    help="Work with one job: glia job generate-run-command JOB.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    # Everything after the command's first argument belongs to the job, options included:
    # `glia run python -c "..."` works without `--`.
    app.command("run", cls=GliaCommand, context_settings={"allow_interspersed_args": False})(run)
    app.command("ps", cls=GliaCommand)(ps)
    app.command("status", cls=GliaCommand)(status)
    app.command("logs", cls=GliaCommand)(logs)
    app.command("kill", cls=GliaCommand)(kill)
    app.add_typer(job_app, name="job")
    job_app.command("bump-life-span", cls=GliaCommand)(bump_life_span)
    job_app.command("generate-run-command", cls=GliaCommand)(generate_run_command)


def parse_env(pairs: Iterable[str], env_file: Path | None = None) -> dict[str, str]:
    """``KEY=VALUE`` pairs over the lines of an env file (``#`` comments, blank lines).

    Raises BadInput naming the bad entry.
    """
    from sdk import BadInput

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
    from sdk import BadInput

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
        raise BadInput(f"invalid environment variable {text!r} ({where}): expected KEY=VALUE")
    return key, value


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from datetime import UTC, datetime

    from sdk import BadInput, parse_since

    try:
        return parse_since(text, datetime.now(UTC))
    except ValueError as exc:
        raise BadInput(str(exc)) from exc


def job_exit_code(job: Job) -> int:
    """The job's own exit code when it has one, else 0 for succeeded and 1 otherwise."""
    from sdk import JobStatus

    if job.exit_code is not None:
        return job.exit_code if 0 <= job.exit_code <= 255 else 1
    return 0 if job.status is JobStatus.SUCCEEDED else 1


def ending(job: Job) -> str:
    """One line on why a job did not succeed: 'job-…: failed (OOMKilled, exit code 137): …'.

    The description is left out where it only says again what the reason and exit code say
    ("exited with code 3").
    """
    exit_part = None if job.exit_code is None else f"exit code {job.exit_code}"
    details = ", ".join(part for part in (job.reason, exit_part) if part)
    line = f"{job.id}: {job.status.value}" + (f" ({details})" if details else "")
    description = (job.status_description or "").strip()
    if description and not _repeats(description, job):
        line += f": {description}"
    return line


def _repeats(description: str, job: Job) -> bool:
    words = description.lower().rstrip(".")
    said = {job.status.value, (job.reason or "").lower()}
    if job.exit_code is not None:
        said |= {
            f"exit code {job.exit_code}",
            f"exited with code {job.exit_code}",
            f"exited with exit code {job.exit_code}",
            f"the command exited with code {job.exit_code}",
        }
    return words in said


def run(
    command: list[str] = typer.Argument(
        ..., metavar="COMMAND [ARG]...", help="The command to run, with its arguments."
    ),
    preset: str | None = typer.Option(
        None,
        "--preset",
        metavar="PRESET",
        help="Resource preset (glia config show lists them).",
        show_default="the cluster's first",
    ),
    env: list[str] = typer.Option(
        [], "-e", "--env", metavar="KEY=VALUE", help="An environment variable (repeatable)."
    ),
    env_file: Path | None = typer.Option(
        None, "--env-file", metavar="FILE", help="A file of KEY=VALUE lines."
    ),
    volume: list[str] = typer.Option(
        [],
        "-v",
        "--volume",
        metavar="KIND:REF:PATH[:ro]",
        help="Mount storage, a disk or a secret at PATH (repeatable): storage:data:/var/data:ro, "
        "disk:NAME:/mnt/d, secret:KEY:/etc/key. -e NAME=secret:KEY sets a variable from a "
        "secret.",
    ),
    working_dir: str | None = typer.Option(
        None,
        "-w",
        "--workdir",
        metavar="DIR",
        help="Directory the job starts in instead, no sync: a path on the cluster's machine, "
        "or a storage:path the job may write.",
        show_default="this directory, synced to storage",
    ),
    no_sync: bool = flag(
        "--no-sync",
        help="Do not ship this directory: the job starts in a scratch directory of its own.",
    ),
    max_sync_size: str = typer.Option(
        DEFAULT_SYNC_LIMIT,
        "--max-sync-size",
        metavar="SIZE",
        help="The most this directory may hold to be synced (after .gitignore and "
        ".gliaignore): 500M, 2G.",
    ),
    name: str | None = typer.Option(
        None, "--name", metavar="NAME", help="Job name (lowercase letters, digits, '-')."
    ),
    tags: list[str] = typer.Option([], "--tag", metavar="TAG", help="A tag (repeatable)."),
    description: str | None = typer.Option(
        None, "-d", "--description", metavar="TEXT", help="What the job is for."
    ),
    life_span: str | None = typer.Option(
        None,
        "--life-span",
        metavar="DURATION",
        help="Stop the job after this long: 1h30m, 2d, 45s.",
        show_default="the cluster's default",
    ),
    priority: str = typer.Option(
        "normal",
        "--priority",
        metavar="low|normal|high",
        help="Which waiting jobs start first when room frees (then the earlier submitted).",
    ),
    schedule_timeout: str | None = typer.Option(
        None,
        "--schedule-timeout",
        metavar="DURATION",
        help="Fail the job (SchedulingTimeout) if it could not start within this: 10m, 1h.",
        show_default="wait as long as it takes",
    ),
    wait_for_seat: bool = flag(
        "--wait-for-seat",
        help="Over a running-jobs quota, wait pending for a seat instead of failing.",
    ),
    restart: str = typer.Option(
        "never",
        "--restart",
        metavar="never|on-failure|always",
        help="Start the command again when it ends: on a failure, or always.",
    ),
    cluster: str | None = cluster_option("Cluster to run on."),
    org: str | None = typer.Option(
        None, "--org", metavar="ORG", help="Org of the project.", show_default="the context's"
    ),
    project: str | None = typer.Option(
        None,
        "--project",
        metavar="PROJECT",
        help="Project to run in (you must be one of its writers).",
        show_default="the context's, else your personal project",
    ),
    share: list[str] = typer.Option(
        [],
        "--share",
        metavar="USER",
        help="Let this user read the job and its output (repeatable).",
    ),
    http_port: int | None = typer.Option(
        None,
        "--http-port",
        metavar="PORT",
        min=1,
        max=65535,
        help="The port the job serves HTTP on: it gets a URL (glia status shows it).",
    ),
    no_http_auth: bool = flag(
        "--no-http-auth", help="Let anyone reach the job's URL, not only who may read the job."
    ),
    tty: bool = flag(
        "-t",
        "--tty",
        help="Run the job under a terminal the cluster holds; glia attach feeds its input.",
    ),
    pass_config: bool = flag(
        "--pass-config",
        help="Give the job the API's URL and a token of yours while it runs (GLIA_API_URL, "
        "GLIA_TOKEN), so it can use glia and the SDK.",
    ),
    port_forward: list[str] = typer.Option(
        [],
        "--port-forward",
        metavar="LOCAL:REMOTE",
        help="While the output is followed, carry local port LOCAL to the job's port REMOTE "
        "once it runs (repeatable; see glia port-forward).",
    ),
    detach: bool = flag("--detach", help="Print the job id and return once it is submitted."),
    output: OutputFormat = output_option(),
    raw: bool = RAW,
) -> None:
    """Run a job and stream its output; exits with the job's exit code.

    Ctrl-C detaches: the job keeps running. With -o json or yaml, the job's output goes to
    stderr and the finished job is printed on stdout.
    """
    import asyncio

    from cli import formatting
    from cli.errors import EX_INTERRUPTED
    from cli.exec import forward_when_running, parse_ports
    from cli.session import (
        current_config,
        open_client,
        personal_name,
        run_async,
        spinner,
        working_project,
    )
    from glia.volumes import SECRET_PREFIX, parse_volume
    from sdk import BadInput, JobStatus, parse_duration

    variables = parse_env(env, env_file)
    forwards = parse_ports(port_forward)
    if forwards and detach:
        raise BadInput("--port-forward needs the job followed: leave out --detach")
    secret_env = {
        key: value.removeprefix(SECRET_PREFIX)
        for key, value in variables.items()
        if value.startswith(SECRET_PREFIX)
    }
    variables = {key: value for key, value in variables.items() if key not in secret_env}
    volumes = [parse_volume(text) for text in volume]
    sync_limit = parse_size(max_sync_size)
    if no_sync and working_dir is not None:
        raise BadInput("--no-sync and --workdir: give one (--workdir never syncs)")
    try:
        life_span_s = parse_duration(life_span).total_seconds() if life_span else None
        timeout_s = parse_duration(schedule_timeout).total_seconds() if schedule_timeout else None
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    context = current_config()
    run_org, run_project = working_project(context, org=org, project=project)
    submitted: list[str] = []  # the job id, known to the Ctrl-C handler once submitted
    structured = output is not OutputFormat.TABLE

    run_cluster = cluster or context.cluster
    in_storage = working_dir is not None and working_dir.startswith("storage:")
    syncing = working_dir is None and not no_sync
    host_dir = None if in_storage else working_dir

    async def submit_and_follow() -> int:
        nonlocal run_cluster
        # Where the workdir's storage is: the job's project (the server places a job whose
        # project is not named in the caller's personal one, a service account's own).
        store_org, store_project = run_org, run_project
        async with open_client(context) as client:
            storage_dir = None
            if (in_storage or syncing) and run_cluster is None:
                # The cluster the server would choose: its first (the storage is there).
                clusters = await client.clusters.list()
                run_cluster = clusters[0].name if clusters else None
            if (in_storage or syncing) and run_project is None and not personal_name(context):
                # A service account runs in the project it was made for: its only one.
                projects = await client.projects.list()
                if len(projects) == 1:
                    store_org, store_project = projects[0].org, projects[0].name
            if in_storage and working_dir is not None:
                storage_dir = _storage_uri(
                    context, working_dir, run_cluster, store_org, store_project
                )
            if syncing:
                here = Path.cwd()
                storage_dir = _storage_uri(
                    context, workdir_path(here), run_cluster, store_org, store_project, syncing=True
                )
                await sync_workdir(client, here, storage_dir, sync_limit)
            async with spinner("Submitting the job"):
                job = await client.jobs.submit(
                    command,
                    cluster=run_cluster,
                    org=run_org,
                    project=run_project,
                    share=share,
                    preset=preset,
                    env=variables,
                    working_dir=host_dir,
                    storage_workdir=storage_dir,
                    name=name,
                    tags=tags,
                    description=description,
                    life_span_s=life_span_s,
                    priority=priority,
                    schedule_timeout_s=timeout_s,
                    restart_policy=restart,
                    http_port=http_port,
                    http_auth=not no_http_auth,
                    pass_config=pass_config,
                    tty=tty,
                    wait_for_seat=wait_for_seat,
                    volumes=volumes,
                    secret_env=secret_env,
                )
            submitted.append(job.id)
            if detach:
                if structured:
                    formatting.print_data(job, output)
                else:
                    typer.echo(job.id)
                return 0
            formatting.notice(job.id)
            tunnel = (
                asyncio.ensure_future(forward_when_running(client, job.id, forwards))
                if forwards
                else None
            )
            try:
                return await follow(client, job)
            finally:
                if tunnel is not None:
                    tunnel.cancel()
                    await asyncio.gather(tunnel, return_exceptions=True)

    async def follow(client: GliaClient, job: Job) -> int:
        async with spinner(f"Waiting for {job.id} to start") as waiting:
            chunks = client.jobs.log_text(job.id, follow=True)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    waiting.stop()
                    if structured:
                        formatting.notice(chunk.text.rstrip("\n"))
                    else:
                        formatting.print_log_text(chunk, raw=raw)
            job = await client.jobs.get(job.id)
            if not job.status.is_finished:  # the log stream ended first: wait for the end
                updates = client.jobs.watch_status(job.id)
                async with contextlib.aclosing(updates):
                    async for update in updates:
                        job = update
        if structured:
            formatting.print_data(job, output)
        if job.status is not JobStatus.SUCCEEDED:
            formatting.notice(ending(job))
        return job_exit_code(job)

    try:
        code = run_async(submit_and_follow())
    except KeyboardInterrupt:
        if submitted:
            formatting.notice(f"detached; the job keeps running: glia kill {submitted[0]}")
        raise typer.Exit(EX_INTERRUPTED) from None
    raise typer.Exit(code)


with_examples(
    "glia run -- python -c 'print(1)'",
    "glia run --name train -e EPOCHS=3 -- python train.py",
    "glia run --no-sync -- nvidia-smi",
    "glia run -w storage:datasets/v1 -- ls",
    "glia run --detach --preset cpu-large --life-span 2h -- ./train.sh",
    "glia run --project vision --share bob -- python eval.py",
    "glia run -o json -- true | jq .status",
)(run)


def parse_size(text: str) -> int:
    """``500M`` -> 524288000: a whole number of bytes, or of K, M, G or T (powers of 1024;
    ``MB``, ``MiB`` and lowercase read the same)."""
    from sdk import BadInput

    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = cleaned.rstrip("KMGT"), cleaned[len(cleaned.rstrip("KMGT")) :]
    if not number.isdigit() or unit not in _SIZE_UNITS:
        raise BadInput(f"invalid size {text!r}: expected a number of bytes, or 500M, 2G")
    return int(number) * _SIZE_UNITS[unit]


def workdir_path(directory: Path) -> str:
    """Where in a project's storage ``glia run`` syncs ``directory`` of this machine:
    ``.glia/workdirs/NAME-HASH``, NAME its own name (cleaned), HASH of the host's name and the
    directory's absolute path, so that two directories of one name stay apart and a
    directory always syncs into the same place."""
    import hashlib
    import re
    import socket

    absolute = directory.resolve()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", absolute.name).strip("-.")[:40] or "root"
    digest = hashlib.sha256(f"{socket.gethostname()}:{absolute}".encode()).hexdigest()[:8]
    return f"{WORKDIRS}/{name}-{digest}"


def _storage_uri(
    context: Context,
    text: str,
    cluster: str | None,
    org: str | None,
    project: str | None,
    *,
    syncing: bool = False,
) -> str:
    """``storage:…`` (or a path in the project's storage, ``syncing``) as a storage URI on
    the job's cluster, in the job's project unless it names another."""
    from cli.session import personal_name
    from sdk import BadInput
    from sdk.storage import resolve_uri

    if org is None and project is None:
        org = project = personal_name(context)
    if syncing and project is None:
        raise BadInput(
            "cannot tell which project's storage to sync this directory into: give --project, "
            "or --no-sync"
        )
    return resolve_uri(
        f"storage:{text}" if syncing else text, cluster=cluster, org=org, project=project
    )


async def sync_workdir(client: GliaClient, directory: Path, uri: str, limit: int) -> None:
    """Mirror ``directory`` into ``uri`` before the job is submitted; says what it sent."""
    from cli import formatting
    from cli.session import spinner
    from sdk.workdir import format_size

    async with spinner(f"Syncing {directory}"):
        result = await client.storage.sync(directory, uri, max_bytes=limit)
    if result.uploaded or result.removed:
        formatting.notice(
            f"synced {directory}: {result.uploaded} of {result.files} files sent "
            f"({format_size(result.uploaded_bytes)}), {result.removed} removed"
        )


def failed_at_once(job: Job) -> bool:
    """Whether the job failed within `QUICK_FAILURE_S` of its start (or never started): then
    the reason is most likely in its last lines of output."""
    from sdk import JobStatus

    if job.status is not JobStatus.FAILED or job.finished_at is None:
        return False
    started = job.started_at or job.created_at
    return (job.finished_at - started).total_seconds() <= QUICK_FAILURE_S


async def print_tail(client: GliaClient, job_id: str, lines: int = TAIL_LINES) -> None:
    """The job's last ``lines`` lines of output, indented, after its status; where its
    cluster cannot give them (its gateway is away, its output is gone), a line saying so:
    the status asked for was printed, and the command succeeds."""
    from cli import formatting
    from sdk import GliaError

    data = bytearray()
    chunks = client.jobs.read_log(job_id)
    try:
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                data += chunk
                if len(data) > 64 * 1024:  # only the end matters
                    del data[: len(data) - 64 * 1024]
    except GliaError as error:
        formatting.notice(f"(its output cannot be shown: {error.message})")
        return
    tail = data.decode(errors="replace").splitlines()[-lines:]
    if tail:
        console = formatting.stdout_console()
        console.print()
        console.print(f"Last {len(tail)} lines of its output (glia logs {job_id}):", markup=False)
        for line in tail:
            console.print("  " + formatting.terminal_safe(line), markup=False, highlight=False)


def ps(
    statuses: list[str] = typer.Option(
        [],
        "-s",
        "--status",
        metavar="STATUS",
        help=f"Only jobs in this status (repeatable): {choices_help(JOB_STATUSES)}.",
        show_default="pending, running and suspended",
        autocompletion=complete_from(JOB_STATUSES),
    ),
    name: str | None = typer.Option(None, "-n", "--name", metavar="NAME", help="Only this name."),
    tags: list[str] = typer.Option(
        [], "-t", "--tag", metavar="TAG", help="Only jobs with all these tags (repeatable)."
    ),
    description: str | None = typer.Option(
        None,
        "-d",
        "--description",
        metavar="TEXT",
        help="Only jobs whose description contains TEXT, ignoring case.",
    ),
    all_: bool = flag("-a", "--all", help="Include finished jobs."),
    since: str | None = typer.Option(
        None, "--since", metavar="WHEN", help="Only jobs created since: 2h, 30m, an ISO time."
    ),
    limit: int = typer.Option(1000, "--limit", metavar="N", help="At most N jobs."),
    columns: str | None = typer.Option(
        None,
        "--format",
        metavar="COLUMNS",
        help="Columns to show, by name: 'id status command' or '{id} {status}'. Known: "
        "id, name, status, preset, age, command, owner, cluster, project, reason, exit, tags, "
        "created, workdir, description.",
        show_default="id name status preset age command",
    ),
    wide: bool = flag(
        "--wide", help="Every column, whole ids, nothing cut to the terminal's width."
    ),
    org: str | None = typer.Option(
        None, "--org", metavar="ORG", help="Only jobs of this org.", show_default="the context's"
    ),
    project: str | None = typer.Option(
        None,
        "--project",
        metavar="PROJECT",
        help="Only jobs of this project.",
        show_default="the context's, else your personal project",
    ),
    all_projects: bool = flag(
        "-A",
        "--all-projects",
        help="Jobs of every project you may read, shared with you ones included.",
    ),
    watch: bool = flag(
        "-w", "--watch", help="Keep the table up to date as jobs change, until Ctrl-C."
    ),
    output: OutputFormat = output_option(),
) -> None:
    """List the jobs of the current project, newest first (glia config switch-project
    changes it; --all-projects lists every job you may read).

    Ids are shown as their shortest unique prefix (at least job- and 8 characters); any
    command takes such a prefix. On a terminal, the name and command are cut to fit.
    """
    from cli import formatting
    from cli.session import current_config, listed_project, open_client, run_async
    from sdk import UNFINISHED_STATUSES, BadInput

    if all_projects and (org or project):
        raise BadInput("--all-projects lists every project: leave out --org and --project")
    if limit < 1:
        raise BadInput(f"--limit: must be at least 1, not {limit}")
    if watch and output is not OutputFormat.TABLE:
        raise BadInput("--watch redraws a table: leave out --output")
    wanted = [_parse_status(s) for s in statuses] or (None if all_ else UNFINISHED_STATUSES)
    chosen = formatting.parse_columns(columns) if columns else None
    created_after = _since(since)
    context = current_config()
    in_org, in_project = (
        (None, None) if all_projects else listed_project(context, org=org, project=project)
    )

    async def collect(client: GliaClient) -> list[Job]:
        jobs: list[Job] = []
        found = client.jobs.iter_all(
            wanted,
            name,
            tags,
            created_after,
            page_size=min(limit, 100),
            org=in_org,
            project=in_project,
            description=description,
        )
        async with contextlib.aclosing(found):
            async for job in found:
                jobs.append(job)
                if len(jobs) >= limit:
                    break
        return jobs

    async def listed() -> list[Job]:
        async with open_client(context) as client:
            return await collect(client)

    if wide:
        shown: tuple[str, ...] = tuple(chosen or formatting.WIDE_JOB_COLUMNS)
    else:
        shown = formatting.DEFAULT_JOB_COLUMNS
        if all_projects:  # where each job lives is news then
            shown = (*shown[:2], "project", *shown[2:])
        shown = tuple(chosen or shown)
    if watch:
        from cli.errors import EX_INTERRUPTED

        try:
            run_async(_watch_jobs(context, collect, shown, wide=wide))
        except KeyboardInterrupt:
            raise typer.Exit(EX_INTERRUPTED) from None
        return
    jobs = run_async(listed(), waiting="Listing jobs")
    if output is not OutputFormat.TABLE:
        formatting.print_data(jobs, output)
    else:
        formatting.print_jobs(jobs, shown, full_ids=wide, fit=not wide)


async def _watch_jobs(
    context: Any,
    collect: Callable[[GliaClient], Awaitable[list[Job]]],
    columns: tuple[str, ...],
    *,
    wide: bool,
) -> None:
    """`glia ps --watch`: the listing redrawn in place whenever a job changes (printed again
    below the last one where stdout is no terminal).

    The server filters the listing (in SQL): each change announced on `jobChanges` marks it
    stale and it is read again, at most every `WATCH_REFRESH_S` and at least every
    `WATCH_RELIST_S` (a change lost with a dropped connection shows late, not never).
    """
    import asyncio

    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from cli import formatting
    from cli.session import open_client
    from sdk import ConnectionFailed

    def render(jobs: list[Job]) -> Group:
        table, _ = formatting.jobs_table(jobs, columns, full_ids=wide, fit=not wide)
        count = f"{len(jobs)} job{'' if len(jobs) == 1 else 's'}"
        return Group(table, Text(f"{count}; Ctrl-C to stop", style="dim"))

    console = formatting.stdout_console()
    async with open_client(context) as client:
        stale = asyncio.Event()

        async def follow() -> None:
            async with contextlib.aclosing(client.jobs.watch_changes()) as changes:
                async for _ in changes:
                    stale.set()

        # Subscribed before the first read: a change meanwhile marks that read stale.
        follower = asyncio.create_task(follow())
        try:
            first = render(await collect(client))
            if not console.is_terminal:
                console.print(first)
            live = Live(first, console=console, auto_refresh=False)
            with live if console.is_terminal else contextlib.nullcontext():
                while True:
                    waiting = asyncio.create_task(stale.wait())
                    await asyncio.wait(
                        {waiting, follower},
                        timeout=WATCH_RELIST_S,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    waiting.cancel()
                    if follower.done():
                        follower.result()  # the subscription failed: say why
                        raise ConnectionFailed("the server ended the stream of job changes")
                    stale.clear()
                    shown = render(await collect(client))
                    if console.is_terminal:
                        live.update(shown, refresh=True)
                    else:
                        console.print(shown)
                    await asyncio.sleep(WATCH_REFRESH_S)
        finally:
            # Ctrl-C may land while the subscription still connects: give it a moment to
            # end, never a hang (the client's close is bounded too).
            follower.cancel()
            await asyncio.wait({follower}, timeout=WATCH_STOP_S)


with_examples(
    "glia ps",
    "glia ps -a --since 1d",
    "glia ps --all-projects",
    "glia ps --org acme --project vision",
    "glia ps -s failed --format 'id name exit reason'",
    "glia ps -a -t sweep -d 'learning rate'",
    "glia ps --watch",
    "glia ps -o json | jq -r '.[].id'",
)(ps)


def _parse_status(text: str) -> Any:
    from sdk import BadInput, JobStatus

    try:
        return JobStatus(text.lower())
    except ValueError:
        raise BadInput(
            f"--status: unknown status {text!r}; one of {choices_help(JOB_STATUSES)}"
        ) from None


def status(job: str = JOB, output: OutputFormat = output_option()) -> None:
    """Show a job and its status history."""
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    table = output is OutputFormat.TABLE

    async def get() -> Job:
        async with open_client(current_config()) as client:
            found = await client.jobs.get(job)
            if table:
                formatting.print_job(found)
                if failed_at_once(found):
                    await print_tail(client, found.id)
            return found

    found = run_async(get(), waiting=f"Getting {job}")
    if not table:
        formatting.print_data(found, output)


with_examples("glia status train", "glia status job-0a1b2c3d -o yaml")(status)


def logs(
    job: str = JOB,
    follow: bool = flag("-f", "--follow", help="Keep following the output until the job ends."),
    since: str | None = typer.Option(
        None, "--since", metavar="WHEN", help="Only lines since: 10m, 2h, an ISO time."
    ),
    timestamps: bool = flag("--timestamps", help="Prefix each line with its time (UTC)."),
    tail: int | None = typer.Option(
        None, "--tail", "-n", metavar="N", min=0, help="Only the last N lines (then on, with -f)."
    ),
    raw: bool = RAW,
) -> None:
    """Print a job's output; with -f keep following it until the job ends.

    Without -f, --since, --tail or --timestamps it downloads the output as the job printed
    it. A follow whose connection breaks (the server restarts) goes on where it stopped,
    without losing or repeating a line.
    """
    from cli import formatting
    from cli.errors import EX_INTERRUPTED
    from cli.session import current_config, open_client, run_async

    if tail is not None and since is not None:
        raise typer.BadParameter("--tail and --since both say where to start: give one")
    start = _since(since)
    context = current_config()

    async def stream() -> None:
        async with open_client(context) as client:
            if not (follow or start or timestamps or tail is not None):
                async with contextlib.aclosing(client.jobs.read_log(job)) as chunks:
                    async for chunk in chunks:
                        formatting.write_bytes(chunk, raw=raw)
                return
            if not timestamps:
                texts = client.jobs.log_text(job, start, follow, tail=tail)
                async with contextlib.aclosing(texts):
                    async for text in texts:
                        formatting.print_log_text(text, raw=raw)
                return
            lines = client.jobs.logs(job, start, follow, tail=tail)
            async with contextlib.aclosing(lines):
                async for line in lines:
                    formatting.print_log_line(line, timestamps=timestamps, raw=raw)

    try:
        run_async(stream())
    except KeyboardInterrupt:
        raise typer.Exit(EX_INTERRUPTED) from None


with_examples(
    "glia logs train",
    "glia logs -f --since 10m job-0a1b2c3d",
    "glia logs --tail 20 -f train",
)(logs)


def kill(
    jobs: list[str] = typer.Argument(
        ...,
        metavar="JOB...",
        help="Job ids, unique id prefixes or names.",
        autocompletion=complete_job,
    ),
) -> None:
    """Kill jobs and wait for them to stop; goes on after a failure and exits non-zero if any
    failed. A job that had already finished is left as it is."""
    from cli import formatting
    from cli.errors import candidates_lines, error_line, exit_code_for
    from cli.session import current_config, open_client, run_async, spinner
    from sdk import GliaError

    context = current_config()

    async def kill_each() -> int:
        worst = 0
        async with open_client(context) as client:
            for ref in jobs:
                try:
                    job = await client.jobs.get(ref)
                    if job.status.is_finished:
                        formatting.notice(f"{job.id}: had already finished ({job.status.value})")
                        continue
                    async with spinner(f"Stopping {job.id}"):
                        job = await client.jobs.kill(job.id)
                except GliaError as exc:
                    formatting.notice(f"{ref}: {error_line(exc)}")
                    for line in candidates_lines(exc):
                        formatting.notice(line)
                    worst = worst or exit_code_for(exc)
                else:
                    typer.echo(f"{job.id} {job.status.value}")
        return worst

    raise typer.Exit(run_async(kill_each()))


with_examples("glia kill train", "glia kill job-0a1b2c3d job-9f8e")(kill)


@with_examples(
    "glia job generate-run-command train",
    'eval "$(glia job generate-run-command job-3f2a)"  # run it again',
)
def generate_run_command(job: str = JOB) -> None:
    """Print the glia run command that would submit this job again, shell-quoted.

    Environment variables whose values you may not read are left out (a note on stderr says
    which).
    """
    from cli import formatting
    from cli.session import current_config, open_client, run_async

    context = current_config()

    async def fetch() -> Job:
        async with open_client(context) as client:
            return await client.jobs.get(job)

    found = run_async(fetch(), waiting="Reading the job")
    command, hidden = run_command(found)
    if hidden:
        formatting.notice("left out (you may not read their values): " + ", ".join(sorted(hidden)))
    typer.echo(command)


def run_command(job: Job) -> tuple[str, list[str]]:
    """The ``glia run`` that submits ``job`` again, and the variables left out for want of
    their values: ``glia run --name train … -e 'GREETING=hello world' -- python train.py``.
    """
    import shlex
    from datetime import timedelta

    from sdk import format_duration

    args = ["glia", "run"]
    if job.name:
        args += ["--name", job.name]
    args += ["--cluster", job.cluster_name, "--org", job.org, "--project", job.project]
    args += ["--preset", job.preset]
    hidden = []
    for key, value in sorted(job.env.items()):
        if value is None:
            hidden.append(key)
        else:
            args += ["-e", f"{key}={value}"]
    # A plain `glia run` syncs the directory it is typed in: the job's own workdir is named
    # instead (its synced copy, as the job had it), or --no-sync for a scratch directory.
    if job.working_dir:
        args += ["--workdir", job.working_dir]
    elif job.storage_workdir:
        args += ["--workdir", job.storage_workdir]
    else:
        args.append("--no-sync")
    from glia.volumes import SECRET_PREFIX, format_volume

    for mounted in job.volumes:
        args += ["-v", format_volume(mounted)]
    for var in job.secret_env:
        args += ["-e", f"{var.name}={SECRET_PREFIX}{var.key}"]
    for tag in job.tags:
        args += ["--tag", tag]
    if job.description:
        args += ["--description", job.description]
    if job.life_span_s is not None:
        args += ["--life-span", format_duration(timedelta(seconds=job.life_span_s))]
    if job.http_port is not None:
        args += ["--http-port", str(job.http_port)]
        if not job.http_auth:
            args.append("--no-http-auth")
    if job.pass_config:
        args.append("--pass-config")
    if job.tty:
        args.append("--tty")
    # The first argument that is no option starts the job's command; `--` keeps a command
    # that starts with '-' from being read as an option of glia run.
    args += ["--", *job.command]
    return shlex.join(args), hidden


@with_examples("glia job bump-life-span train 2h", "glia job bump-life-span job-3f2a 30m")
def bump_life_span(
    job: str = JOB,
    duration: str = typer.Argument(..., metavar="DURATION", help="How much longer: 2h, 30m."),
    output: OutputFormat = output_option(),
) -> None:
    """Let a job run longer: add DURATION to its life span (its cluster stops it that much
    later)."""
    from datetime import timedelta

    from cli import formatting
    from cli.session import current_config, open_client, run_async
    from sdk import BadInput, format_duration, parse_duration

    try:
        seconds = parse_duration(duration).total_seconds()
    except ValueError as exc:
        raise BadInput(str(exc)) from exc

    async def bump() -> Any:
        async with open_client(current_config()) as client:
            return await client.jobs.bump_life_span(job, seconds)

    bumped = run_async(bump(), waiting="Extending the life span")
    if output is not OutputFormat.TABLE:
        formatting.print_data(bumped, output)
        return
    span = format_duration(timedelta(seconds=bumped.life_span_s or 0))
    typer.echo(f"{bumped.id} life span {span}")
