"""Everything the CLI prints goes through here: rich tables, ages, and JSON output."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sdk import Job, JobStatus, LogLine, LogStream, LogText, Model, Preset


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"


_STATUS_STYLES = {
    JobStatus.PENDING: "yellow",
    JobStatus.RUNNING: "cyan",
    JobStatus.SUSPENDED: "magenta",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "dim",
}


def stdout_console(min_width: int = 0) -> Console:
    """A console on the current stdout, at least ``min_width`` wide.

    Built per call, not at import: tests and pipes swap sys.stdout after import. When piped,
    lines are not cut to 80 columns: scripts and grep get whole ids and commands.
    """
    width = Console(file=sys.stdout).width if sys.stdout.isatty() else 1000
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=max(width, min_width))


def notice(message: str) -> None:
    """A plain line for the user on stderr (stdout stays for data and job output)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def to_jsonable(value: Any) -> Any:
    """Models and dataclasses to dicts, datetimes to ISO strings, enums to their values,
    tuples to lists."""
    if isinstance(value, Model):
        return to_jsonable(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2) + "\n")
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


def _status(status: JobStatus) -> str:
    return f"[{_STATUS_STYLES[status]}]{status.value}[/]"


def _text(value: object) -> str:
    """Server-provided text, escaped so rich never reads it as markup."""
    return "-" if value is None or value == "" else escape(str(value))


def print_jobs(jobs: Iterable[Job], now: datetime | None = None) -> None:
    headers = ("ID", "NAME", "STATUS", "PRESET", "AGE", "COMMAND")
    rows = [
        (
            job.id,
            job.name or "-",
            job.status.value,
            job.preset or "-",
            age(job.created_at, now),
            " ".join(job.command),
        )
        for job in jobs
    ]
    widths = _fit_widths(headers, rows, stdout_console().width, shrinkable={1: 8, 3: 8, 5: 12})
    table = Table(box=None, pad_edge=False)
    for header, width in zip(headers, widths, strict=True):
        table.add_column(header, width=width, no_wrap=True, overflow="ellipsis")
    for row in rows:
        cells = [escape(cell) for cell in row]
        cells[2] = _status(JobStatus(row[2]))
        table.add_row(*cells)
    # Wider than a very narrow terminal rather than cutting ids: the terminal wraps the line.
    stdout_console(min_width=sum(widths) + 2 * (len(widths) - 1)).print(table)


def _fit_widths(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    total: int,
    shrinkable: Mapping[int, int],
) -> list[int]:
    """Natural column widths, shrinking the ``shrinkable`` ones (index → minimum) to fit.

    Rich's own shrinking can drop whole columns on a narrow terminal; ids must stay whole.
    """
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
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
    rows: list[tuple[str, str]] = [
        ("ID", job.id),
        ("Name", _text(job.name)),
        ("Status", _status(job.status)),
        ("Reason", _text(job.reason)),
        ("Description", _text(job.status_description)),
        ("Exit code", _text(job.exit_code)),
        ("Owner", _text(job.owner.name)),
        ("Cluster", _text(job.cluster_name)),
        ("Preset", _text(job.preset)),
        (
            "Resources",
            f"cpu {job.resources.cpu:g}, memory {job.resources.memory_mb} MB, "
            f"gpu {job.resources.gpu}",
        ),
        ("Command", _text(" ".join(job.command))),
        ("Working dir", _text(job.working_dir)),
        ("Tags", _text(", ".join(job.tags))),
        ("URI", _text(job.uri)),
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
    table = Table(box=None, pad_edge=False)
    for column in ("PRESET", "CPU", "MEMORY MB", "GPU"):
        table.add_column(column)
    for preset in presets:
        resources = preset.resources
        table.add_row(
            preset.name, f"{resources.cpu:g}", str(resources.memory_mb), str(resources.gpu)
        )
    stdout_console().print(table)


def print_fields(rows: Iterable[tuple[str, object]]) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, _text(value))
    stdout_console().print(table)
