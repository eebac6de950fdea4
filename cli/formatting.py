"""Everything the CLI prints goes through here: tables, ages, short ids, JSON and YAML."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.options import OutputFormat
from sdk import (
    BadInput,
    ClusterConfig,
    GrantEntry,
    Job,
    JobStatus,
    LogLine,
    LogStream,
    LogText,
    Member,
    Model,
    Org,
    Preset,
    Project,
    Quota,
    QuotaLevel,
    Role,
    ServiceAccount,
    User,
)

_STATUS_STYLES = {
    JobStatus.PENDING: "yellow",
    JobStatus.RUNNING: "cyan",
    JobStatus.SUSPENDED: "magenta",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "dim",
}

# A job id (`job-<uuid>`) is shown as at least "job-" and this many characters of its uuid.
JOB_ID_PREFIX = "job-"
SHORT_ID_CHARS = 8


def output_width() -> int | None:
    """The width to fit: the terminal's, or ``COLUMNS`` when set; None (no limit) when
    piped, so scripts and grep get whole commands."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return Console(file=sys.stdout).width
    return None


def stdout_console(min_width: int = 0) -> Console:
    """A console on the current stdout, at least ``min_width`` wide.

    Built per call, not at import: tests and pipes swap sys.stdout after import.
    """
    width = output_width() or 1000
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=max(width, min_width))


def notice(message: str) -> None:
    """A plain line for the user on stderr (stdout stays for data and job output)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def to_wire(value: Any) -> Any:
    """The API's JSON form of what the CLI prints: camelCase field names, enums by their
    GraphQL names (``RUNNING``), ISO times; mappings, lists and dataclasses recursively."""
    if isinstance(value, Model):
        return value.to_wire()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Mapping):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def print_data(value: Any, output: OutputFormat) -> None:
    """``value`` as JSON or YAML on stdout, in the API's form (`to_wire`)."""
    data = to_wire(value)
    if output is OutputFormat.YAML:
        import yaml  # only -o yaml needs it

        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(data, indent=2) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """The largest whole unit since ``moment``: ``"45s"``, ``"3m"``, ``"2h"``, ``"5d"``."""
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each id's shortest prefix that no other of ``ids`` shares, like git and docker show
    them: at least ``job-`` and 8 characters, never ending on a ``-``.

    >>> short_ids(["job-0a1b2c3d-1111", "job-0a1b2c3d-2222", "job-ffff0000-3333"])
    {'job-0a1b2c3d-1111': 'job-0a1b2c3d-1', 'job-0a1b2c3d-2222': 'job-0a1b2c3d-2', \
'job-ffff0000-3333': 'job-ffff0000'}
    """
    unique = sorted(set(ids))
    shortest = len(JOB_ID_PREFIX) + SHORT_ID_CHARS
    shown: dict[str, str] = {}
    for index, job_id in enumerate(unique):
        # In sorted order, the ids sharing the longest prefix with this one are its neighbours.
        shared = max(
            (_common(job_id, unique[i]) for i in (index - 1, index + 1) if 0 <= i < len(unique)),
            default=0,
        )
        length = max(shortest, shared + 1)
        while length < len(job_id) and job_id[length - 1] == "-":
            length += 1
        shown[job_id] = job_id[:length]
    return shown


def _common(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def _status(status: JobStatus) -> str:
    return f"[{_STATUS_STYLES[status]}]{status.value}[/]"


def _text(value: object) -> str:
    """Server-provided text, escaped so rich never reads it as markup."""
    return "-" if value is None or value == "" else escape(str(value))


def one_line(text: str) -> str:
    """A command or description on one line: newlines and tabs as spaces."""
    return " ".join(text.split())


@dataclasses.dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Job, Mapping[str, str], datetime], str]
    # The narrowest it may be cut to when the table is too wide; None: never cut.
    min_width: int | None = None


JOB_COLUMNS: dict[str, Column] = {
    "id": Column("ID", lambda job, short, now: short.get(job.id, job.id)),
    "name": Column("NAME", lambda job, short, now: job.name or "-", min_width=8),
    "status": Column("STATUS", lambda job, short, now: job.status.value),
    "preset": Column("PRESET", lambda job, short, now: job.preset or "-"),
    "queue": Column("QUEUE", lambda job, short, now: str(job.queue_position or "-")),
    "age": Column("AGE", lambda job, short, now: age(job.created_at, now)),
    "command": Column(
        "COMMAND", lambda job, short, now: one_line(" ".join(job.command)), min_width=12
    ),
    "owner": Column("OWNER", lambda job, short, now: job.owner.name),
    "cluster": Column("CLUSTER", lambda job, short, now: job.cluster_name),
    "project": Column("PROJECT", lambda job, short, now: f"{job.org}/{job.project}"),
    "reason": Column("REASON", lambda job, short, now: job.reason.value if job.reason else "-"),
    "exit": Column(
        "EXIT", lambda job, short, now: "-" if job.exit_code is None else str(job.exit_code)
    ),
    "tags": Column("TAGS", lambda job, short, now: ",".join(job.tags) or "-", min_width=8),
    "created": Column("CREATED", lambda job, short, now: _time(job.created_at)),
    "workdir": Column(
        "WORKDIR",
        lambda job, short, now: job.working_dir or job.storage_workdir or "-",
        min_width=8,
    ),
    "description": Column(
        "DESCRIPTION", lambda job, short, now: one_line(job.description or "") or "-", min_width=8
    ),
}
DEFAULT_JOB_COLUMNS = ("id", "name", "status", "preset", "age", "command")
WIDE_JOB_COLUMNS = (
    "id", "name", "status", "reason", "queue", "exit", "preset", "owner", "cluster", "project",
    "created", "tags", "workdir", "command",
)  # fmt: skip


def parse_columns(spec: str) -> list[str]:
    """The columns a ``--format`` names: ``"id status command"``, ``"id,status"`` or
    ``"{id} {status}"``; raises BadInput naming the unknown ones and the known ones."""
    names = [part.lower() for part in re.split(r"[\s,{}]+", spec) if part]
    unknown = [name for name in names if name not in JOB_COLUMNS]
    if unknown or not names:
        known = ", ".join(JOB_COLUMNS)
        what = f"unknown column {', '.join(map(repr, unknown))}" if unknown else "no column"
        raise BadInput(f"--format: {what}; columns: {known}")
    return names


def print_jobs(
    jobs: Sequence[Job],
    columns: Sequence[str] = DEFAULT_JOB_COLUMNS,
    *,
    full_ids: bool = False,
    fit: bool = True,
    now: datetime | None = None,
) -> None:
    """A table of jobs with the given columns; ids shortened unless ``full_ids``, and the
    cuttable columns (command, name) cut to the terminal's width when ``fit``."""
    table, width = jobs_table(jobs, columns, full_ids=full_ids, fit=fit, now=now)
    # Wider than a very narrow terminal rather than cutting ids: the terminal wraps the line.
    stdout_console(min_width=width).print(table)


def jobs_table(
    jobs: Sequence[Job],
    columns: Sequence[str] = DEFAULT_JOB_COLUMNS,
    *,
    full_ids: bool = False,
    fit: bool = True,
    now: datetime | None = None,
) -> tuple[Table, int]:
    """What `print_jobs` prints (also redrawn by `glia ps --watch`), and its width."""
    now = now or datetime.now(UTC)
    short = {} if full_ids else short_ids(job.id for job in jobs)
    chosen = [JOB_COLUMNS[name] for name in columns]
    headers = [column.header for column in chosen]
    rows = [[column.value(job, short, now) for column in chosen] for job in jobs]
    width = output_width() if fit else None
    shrinkable = {
        index: column.min_width for index, column in enumerate(chosen) if column.min_width
    }
    widths = _fit_widths(headers, rows, width, shrinkable)
    table = Table(box=None, pad_edge=False)
    for header, column_width in zip(headers, widths, strict=True):
        table.add_column(header, width=column_width, no_wrap=True, overflow="ellipsis")
    status_index = columns.index("status") if "status" in columns else None
    for job, row in zip(jobs, rows, strict=True):
        cells = [escape(cell) for cell in row]
        if status_index is not None:
            cells[status_index] = _status(job.status)
        table.add_row(*cells)
    return table, sum(widths) + 2 * (len(widths) - 1)


def _fit_widths(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    total: int | None,
    shrinkable: Mapping[int, int],
) -> list[int]:
    """Natural column widths, shrinking the ``shrinkable`` ones (index → minimum) to fit
    ``total`` (None: no limit).

    Rich's own shrinking can drop whole columns or cut presets on a narrow terminal; ids,
    statuses and presets must stay whole.
    """
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    if total is None:
        return widths
    excess = sum(widths) + 2 * (len(widths) - 1) - total
    # The last shrinkable column (the command) gives way first.
    for index in sorted(shrinkable, reverse=True):
        if excess <= 0:
            break
        cut = min(excess, max(0, widths[index] - shrinkable[index]))
        widths[index] -= cut
        excess -= cut
    return widths


def print_job(job: Job) -> None:
    """One job's fields, then its status history."""
    fields = Table(box=None, show_header=False, pad_edge=False)
    fields.add_column(style="bold")
    fields.add_column()
    resources = job.resources
    rows: list[tuple[str, str]] = [
        ("ID", job.id),
        ("Name", _text(job.name)),
        ("Status", _status(job.status)),
        ("Reason", _text(job.reason)),
        ("Description", _text(job.status_description)),
        ("Exit code", _text(job.exit_code)),
        ("Queue", _text(f"place {job.queue_position}" if job.queue_position else None)),
        ("Priority", job.priority.value),
        ("Restarts", f"{job.restart_count} ({job.restart_policy.value})"),
        (
            "Credits",
            f"{job.credits_spent:.2f} spent at {job.credits_per_hour:g}/h"
            + (", preemptible" if job.preemptible else ""),
        ),
        ("Owner", _text(job.owner.name)),
        ("Cluster", _text(job.cluster_name)),
        ("Project", f"{job.org}/{job.project}"),
        ("Preset", _text(job.preset)),
        (
            "Resources",
            f"cpu {resources.cpu:g}, memory {resources.memory_mb} MiB, gpu {resources.gpu}",
        ),
        ("Command", _text(" ".join(job.command))),
        (
            "Working dir",
            _text(job.working_dir or job.storage_workdir or "(a scratch directory)"),
        ),
        ("Tags", _text(", ".join(job.tags))),
        ("URI", _text(job.uri)),
        ("URL", _text(_url(job))),
        ("Created", _time(job.created_at)),
        ("Started", _time(job.started_at)),
        ("Finished", _time(job.finished_at)),
    ]
    for label, value in rows:
        fields.add_row(label, value)
    history = Table(title="Status history", title_justify="left", box=None, pad_edge=False)
    for column in ("STATUS", "REASON", "DESCRIPTION", "EXIT CODE", "AT"):
        history.add_column(column)
    for item in job.history:
        history.add_row(
            _status(item.status),
            _text(item.reason),
            _text(item.description),
            _text(item.exit_code),
            _time(item.at),
        )
    console = stdout_console()
    console.print(fields)
    console.print()
    console.print(history)


def _url(job: Job) -> str | None:
    """An exposed job's URL, saying who may reach it."""
    if job.http_url is None:
        return None
    return job.http_url + ("" if job.http_auth else " (anyone may reach it)")


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(sep=" ", timespec="seconds")


# Control characters but tab and newline: C0, DEL and C1. A job's escape sequences could move
# the cursor, retitle the window or write to the clipboard of whoever reads its output.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character but tab and newline shown as ``\\xNN``.

    >>> terminal_safe("\x1b[31mred\x1b[0m")
    '\\x1b[31mred\\x1b[0m'
    """
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def print_log_line(line: LogLine, *, timestamps: bool = False, raw: bool = False) -> None:
    """A log line (no markup) on stdout or stderr, flushed so it shows as it comes. On a
    terminal, escape sequences are shown as text unless ``raw``; the platform's own lines
    (output dropped, log removed) go to stderr."""
    stream = sys.stdout if line.stream is LogStream.STDOUT else sys.stderr
    prefix = f"{line.time.isoformat()} " if timestamps else ""
    text = line.text if raw or not stream.isatty() else terminal_safe(line.text)
    stream.write(prefix + text + ("" if text.endswith("\n") else "\n"))
    stream.flush()


def print_log_text(chunk: LogText, *, raw: bool = False) -> None:
    """Lines of one stream, as `print_log_line` prints each of them without a time."""
    stream = sys.stdout if chunk.stream is LogStream.STDOUT else sys.stderr
    stream.write(chunk.text if raw or not stream.isatty() else terminal_safe(chunk.text))
    stream.flush()


def write_bytes(data: bytes, *, raw: bool = False) -> None:
    """Job output as it was printed, to stdout; on a terminal, escape sequences are shown as
    text unless ``raw``."""
    if raw or not sys.stdout.isatty():
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(terminal_safe(data.decode(errors="replace")))
        sys.stdout.flush()


def print_presets(presets: Iterable[Preset]) -> None:
    """The presets, with how many more jobs of each fit now (AVAILABLE) where known."""
    table = Table(box=None, pad_edge=False)
    for column in ("PRESET", "CPU", "MEMORY", "GPU", "CREDITS/H", "AVAILABLE"):
        table.add_column(column)
    for preset in presets:
        resources = preset.resources
        gpu = str(resources.gpu)
        if resources.gpu and resources.gpu_model:
            gpu += f" x {resources.gpu_model}"
        flags = [
            word
            for word, on in (
                ("preemptible", preset.preemptible),
                ("no queue", not preset.scheduler_enabled),
            )
            if on
        ]
        table.add_row(
            preset.name + (f" ({', '.join(flags)})" if flags else ""),
            f"{resources.cpu:g}",
            memory(resources.memory_mb),
            gpu,
            f"{preset.credits_per_hour:g}",
            "?" if preset.available is None else str(preset.available),
        )
    stdout_console().print(table)


def print_cluster_configs(clusters: Iterable[ClusterConfig]) -> None:
    """Each registered cluster's life-cycle status, gateway, last heartbeat and capacity."""
    print_table(
        ("CLUSTER", "STATUS", "GATEWAY", "RUNTIME", "HEARTBEAT", "CAPACITY", "FREE", "REASON"),
        (
            (
                c.name,
                c.status.value,
                c.gateway,
                c.runtime.value,
                f"{age(c.health.last_heartbeat_at)} ago" if c.health.last_heartbeat_at else "never",
                _resources(c.health.capacity),
                _resources(c.health.free),
                one_line(c.status_reason or ""),
            )
            for c in clusters
        ),
    )


def print_cluster_config(cluster: ClusterConfig) -> None:
    health = cluster.health
    print_fields(
        [
            ("Cluster", cluster.name),
            ("Status", cluster.status.value),
            ("Reason", cluster.status_reason or "-"),
            ("Gateway", cluster.gateway),
            ("Runtime", cluster.runtime.value),
            ("Storage", cluster.storage_url or "its gateway's"),
            ("Registry", cluster.registry_url or "-"),
            ("Heartbeat", _time(health.last_heartbeat_at) if health.last_heartbeat_at else "never"),
            ("Capacity", _resources(health.capacity)),
            ("Free", _resources(health.free)),
            ("Presets", ", ".join(p.name for p in cluster.presets) or "-"),
        ]
    )


def _resources(resources: Any) -> str:
    if resources is None:
        return "-"
    text = f"{resources.cpu:g} CPU, {memory(resources.memory_mb)}"
    return text + (f", {resources.gpu} GPU" if resources.gpu else "")


def _level(quota: Quota) -> str:
    return {
        QuotaLevel.ORG: f"org {quota.org}",
        QuotaLevel.ORG_CLUSTER: f"org {quota.org} on {quota.cluster}",
        QuotaLevel.ORG_USER: f"{quota.user} in org {quota.org}",
        QuotaLevel.CLUSTER_USER: f"{quota.user} on {quota.cluster}",
    }[quota.level]


def print_quotas(quotas: Iterable[Quota]) -> None:
    """Each level's running jobs against its maximum, and its credit balance."""
    print_table(
        ("QUOTA", "RUNNING JOBS", "CREDITS"),
        (
            (
                _level(q),
                f"{q.running_jobs} of {q.max_running_jobs}"
                if q.max_running_jobs is not None
                else f"{q.running_jobs} (no limit)",
                "no limit" if q.credits is None else f"{q.credits:,.2f}",
            )
            for q in quotas
        ),
    )


def memory(mib: int) -> str:
    """``512 MiB``, ``2 GiB``, ``1.5 GiB``."""
    if mib >= 1024:
        return f"{mib / 1024:g} GiB" if mib % 128 == 0 else f"{mib / 1024:.1f} GiB"
    return f"{mib} MiB"


def print_fields(rows: Iterable[tuple[str, object]]) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, _text(value))
    stdout_console().print(table)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    table = Table(box=None, pad_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in rows:
        table.add_row(*(_text(cell) for cell in row))
    stdout_console().print(table)


def print_users(users: Iterable[User]) -> None:
    print_table(
        ("NAME", "ROLE", "EMAIL", "CREATED"),
        ((u.name, u.role.value, u.email, _time(u.created_at)) for u in users),
    )


def print_user(user: User) -> None:
    print_fields(
        [
            ("ID", user.id),
            ("Name", user.name),
            ("Email", user.email),
            ("Role", user.role.value),
            ("Created", _time(user.created_at)),
        ]
    )


def _role(role: object) -> str:
    return "-" if role is None else str(getattr(role, "value", role))


def print_orgs(orgs: Iterable[Org]) -> None:
    rows = (
        (o.name, _role(o.role), ", ".join(o.clusters) or "-", "yes" if o.personal else "")
        for o in orgs
    )
    print_table(("NAME", "YOUR ROLE", "CLUSTERS", "PERSONAL"), rows)


def print_projects(projects: Iterable[Project]) -> None:
    print_table(
        ("ORG", "NAME", "YOUR ROLE", "DEFAULT ROLE", "CREATED"),
        (
            (p.org, p.name, _role(p.role), p.default_role.value, _time(p.created_at))
            for p in projects
        ),
    )


def print_project(project: Project) -> None:
    print_fields(
        [
            ("Org", project.org),
            ("Name", project.name),
            ("Default role", project.default_role.value),
            ("Your role", _role(project.role)),
            ("Created", _time(project.created_at)),
        ]
    )


def print_members(members: Iterable[Member]) -> None:
    print_table(("USER", "ROLE"), ((m.user, m.role) for m in members))


def print_grants(grants: Iterable[GrantEntry]) -> None:
    print_table(("URI", "ACTION", "SUBJECT"), ((g.uri, g.action, g.subject) for g in grants))


def print_roles(roles: Iterable[Role]) -> None:
    print_table(
        ("NAME", "URI", "BUILT IN"), ((r.name, r.uri, "yes" if r.built_in else "") for r in roles)
    )


def print_service_accounts(accounts: Iterable[ServiceAccount]) -> None:
    print_table(
        ("NAME", "OWNER", "PROJECT", "CREATED"),
        (
            (a.name, a.owner, f"{a.org}/{a.project}" if a.project else "-", _time(a.created_at))
            for a in accounts
        ),
    )


def print_service_account(account: ServiceAccount) -> None:
    print_fields(
        [
            ("Name", account.name),
            ("Owner", account.owner),
            ("Project", f"{account.org}/{account.project}" if account.project else None),
            ("Subject", f"user:{account.name}"),
            ("Created", _time(account.created_at)),
        ]
    )
