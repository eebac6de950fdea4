"""A local directory as `glia run` ships it: the files a workdir sync mirrors into storage.

`scan` walks a directory and lists its files (relative path, size, modification time,
executable bit) as `SyncFile`s, leaving out what its ignore files exclude:

- ``.gitignore`` and ``.gliaignore`` files, gitignore-style (pathspec's ``GitIgnoreSpec``),
  each applying to the directory it is in and below, as git reads them; a ``.gliaignore``
  excludes what git keeps (data, checkpoints) without touching the repository's rules;
- ``.git`` itself, always;
- links to directories (not followed: they may lead anywhere); links to files are sent as
  the files they point to.

Over ``max_bytes`` in all, `WorkdirTooLarge` names the biggest files; past `MAX_FILES` files
it is BAD_USER_INPUT too. The walk stops early (after a directory) once it holds more than
`MAX_FILES` files or ten times ``max_bytes``: then the figures are a lower bound. The sync
itself is ``client.storage.sync``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from glia.errors import BadInput
from glia.storage import SyncFile, check_name

IGNORE_FILES = (".gitignore", ".gliaignore")
ALWAYS_LEFT_OUT = frozenset({".git"})
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
# The most files one sync may send (the server's limit too: its list must fit the API's
# 1 MiB request body).
MAX_FILES = 5_000
# How many of the biggest files an over-the-cap error names.
BIGGEST_NAMED = 5


class WorkdirTooLarge(BadInput):
    """The files to sync hold more than the cap: ``biggest`` are the largest (path, size)."""

    def __init__(
        self, root: Path, total: int, max_bytes: int, biggest: Sequence[tuple[str, int]]
    ) -> None:
        self.root = root
        self.total = total
        self.max_bytes = max_bytes
        self.biggest = tuple(biggest)
        named = ", ".join(f"{path} ({format_size(size)})" for path, size in self.biggest)
        super().__init__(
            f"{root} holds at least {format_size(total)} to sync, over the limit of "
            f"{format_size(max_bytes)}; the biggest files: {named}. Leave them out with "
            f"lines in {root / '.gliaignore'} (gitignore patterns, e.g. '{_pattern(biggest)}')",
            fields={"workdir": "too large"},
        )


def _pattern(biggest: Sequence[tuple[str, int]]) -> str:
    return biggest[0][0] if biggest else "*.bin"


def format_size(size: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


@dataclass(frozen=True)
class _Rules:
    """The ignore files of one directory, for the paths under it."""

    prefix: str  # the directory, relative to the root, with a trailing "/" ("" at the root)
    spec: object  # pathspec.GitIgnoreSpec

    def ignores(self, relative: str, is_dir: bool) -> bool:
        inner = relative[len(self.prefix) :] + ("/" if is_dir else "")
        return bool(self.spec.match_file(inner))  # type: ignore[attr-defined]


def _rules_of(directory: str, prefix: str) -> _Rules | None:
    import pathspec

    lines: list[str] = []
    for name in IGNORE_FILES:
        try:
            with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as file:
                lines += file.read().splitlines()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
    if not lines:
        return None
    return _Rules(prefix, pathspec.GitIgnoreSpec.from_lines(lines))


def scan(
    root: str | os.PathLike[str], *, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> list[SyncFile]:
    """The files of ``root`` a sync sends, by path (blocking: call it in a thread).

    `BadInput` when ``root`` is not a directory or a kept name cannot be a storage name;
    `WorkdirTooLarge` when they hold more than ``max_bytes`` (None: no limit).
    """
    base = Path(root)
    if not base.is_dir():
        raise BadInput(f"{base} is not a directory", fields={"workdir": "not a directory"})
    found: list[SyncFile] = []
    total = 0
    # (host directory, its path relative to the root with a trailing "/", the rules above it)
    pending: list[tuple[str, str, tuple[_Rules, ...]]] = [(str(base), "", ())]
    while pending:
        directory, prefix, inherited = pending.pop()
        own = _rules_of(directory, prefix)
        rules = (*inherited, own) if own is not None else inherited
        try:
            entries = list(os.scandir(directory))
        except PermissionError as exc:
            raise BadInput(
                f"cannot read {directory}: {exc.strerror}; leave it out in .gliaignore",
                fields={"workdir": "unreadable"},
            ) from None
        for entry in entries:
            relative = prefix + entry.name
            if entry.name in ALWAYS_LEFT_OUT and entry.is_dir(follow_symlinks=False):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if any(rule.ignores(relative, is_dir) for rule in rules):
                continue
            if is_dir:
                _check(entry.name, relative)
                pending.append((entry.path, relative + "/", rules))
                continue
            try:
                info = entry.stat()  # a link to a file: the file
            except OSError:
                continue  # a dangling link
            if not stat.S_ISREG(info.st_mode):
                continue  # links to directories, sockets, FIFOs
            _check(entry.name, relative)
            found.append(
                SyncFile(
                    path=relative,
                    size=info.st_size,
                    mtime=info.st_mtime_ns / 1e9,
                    executable=bool(info.st_mode & stat.S_IXUSR),
                )
            )
            total += info.st_size
        # Bounded: `glia run` typed in a home directory must not walk all of it.
        if len(found) > MAX_FILES or (max_bytes is not None and total > 10 * max_bytes):
            break
    if max_bytes is not None and total > max_bytes:
        biggest = sorted(found, key=lambda file: file.size, reverse=True)[:BIGGEST_NAMED]
        raise WorkdirTooLarge(base, total, max_bytes, [(f.path, f.size) for f in biggest])
    if len(found) > MAX_FILES:
        raise BadInput(
            f"{base} holds more than {MAX_FILES} files to sync: leave some out in "
            f"{base / '.gliaignore'}, or run from the directory that holds the code",
            fields={"workdir": "too many files"},
        )
    found.sort(key=lambda file: file.path)
    return found


def _check(name: str, relative: str) -> None:
    try:
        check_name(name)
    except BadInput:
        raise BadInput(
            f"{relative!r} cannot be stored (a control character, or too long a name): "
            "leave it out in .gliaignore",
            fields={"workdir": "a name storage refuses"},
        ) from None
