"""Paths inside a project's tree, reached through directory file descriptors.

A job or a user who can write in a tree can swap a directory for a symlink at any moment,
so a path checked first (``realpath``) and used after may lead elsewhere by then. Here no path
string is ever handed to the kernel whole: each name is opened under the fd of the directory
before it with ``O_NOFOLLOW | O_DIRECTORY``, and a symlink met on the way is read
(``readlink`` under that fd) and resolved here, name by name, refusing one that leads out of
the tree. What the kernel is finally asked to do (open, mkdir, rename, unlink, scandir) names
one entry of a directory fd that was reached this way: a link swapped in meanwhile makes it
fail (``ELOOP``, ``ENOTDIR``) instead of following the link.

Every function here blocks: call them in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import itertools
import os
import secrets
import stat
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

from glia.errors import BadInput, NotFound
from glia.storage import PARTIAL_PREFIX, PARTIAL_SUFFIX

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# As Linux's own limit on links followed in one lookup.
MAX_LINKS = 40


def outside() -> BadInput:
    return BadInput(
        "the path leads outside the project's storage (a symlink?)",
        fields={"path": "outside the project's tree"},
    )


def changed() -> BadInput:
    return BadInput(
        "a directory on the path was replaced by a link while it was used",
        fields={"path": "changed while in use"},
    )


def open_directory(name: str, dir_fd: int) -> int:
    """``name`` under ``dir_fd``, opened as a directory without following a link: a link
    (swapped in after a check) is BAD_USER_INPUT; anything else not a directory is
    NotADirectoryError."""
    try:
        return os.open(name, DIRECTORY_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise changed() from None
        if exc.errno == errno.ENOTDIR:
            # O_NOFOLLOW with O_DIRECTORY answers ENOTDIR for a link: say which it was.
            with contextlib.suppress(OSError):
                if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    raise changed() from None
        raise


@dataclass
class Resolved:
    """Where a path leads: ``directory`` (an fd, owned by this object) and ``name`` in it,
    ``None`` for the tree itself; ``chain`` holds (st_dev, st_ino) of each directory from the
    tree down to ``directory``."""

    directory: int
    name: str | None
    chain: tuple[tuple[int, int], ...]

    def close(self) -> None:
        if self.directory >= 0:
            os.close(self.directory)
            self.directory = -1

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def lstat(self) -> os.stat_result | None:
        """The entry itself (a link not followed); ``None`` when nothing is there."""
        try:
            if self.name is None:
                return os.fstat(self.directory)
            return os.stat(self.name, dir_fd=self.directory, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def open_directory(self) -> int:
        """A new fd of the entry, a directory; NotADirectoryError when it is something else."""
        if self.name is None:
            return os.dup(self.directory)
        return open_directory(self.name, self.directory)


def _key(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def resolve(
    tree: int,
    tree_path: str,
    names: Sequence[str],
    *,
    follow_last: bool = True,
    make_parents: bool = False,
) -> Resolved:
    """Walk ``names`` from the tree's fd ``tree`` (whose real path is ``tree_path``).

    Symlinks on the way, and the last name's with ``follow_last``, are resolved here and must
    stay in the tree (BAD_USER_INPUT otherwise); with ``make_parents`` missing directories
    before the last name are made (0700), else they are NOT_FOUND. The last name need not
    exist. The caller closes the result.
    """
    pending = list(names)
    stack = [os.dup(tree)]
    chain = [_key(os.fstat(tree))]
    links = 0
    try:
        while pending:
            name = pending.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                # Only a link's target says '..': above the tree is outside it.
                if len(stack) == 1:
                    raise outside()
                os.close(stack.pop())
                chain.pop()
                continue
            last = not any(n not in ("", ".") for n in pending)
            if last and not follow_last:
                return Resolved(stack.pop(), name, tuple(chain))
            try:
                info = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    return Resolved(stack.pop(), name, tuple(chain))
                if not make_parents:
                    raise NotFound(f"{'/'.join(names)} does not exist") from None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=stack[-1])
                info = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise BadInput("too many symlinks on the path", fields={"path": "link loop"})
                target = os.readlink(name, dir_fd=stack[-1])
                if target.startswith("/"):
                    if target != tree_path and not target.startswith(tree_path + "/"):
                        raise outside()
                    while len(stack) > 1:
                        os.close(stack.pop())
                        chain.pop()
                    target = target[len(tree_path) :]
                pending = target.split("/") + pending
                continue
            if last:
                return Resolved(stack.pop(), name, tuple(chain))
            if not stat.S_ISDIR(info.st_mode):
                raise BadInput(
                    f"{'/'.join(names)}: {name!r} is not a directory",
                    fields={"path": "not a directory"},
                )
            try:
                fd = open_directory(name, stack[-1])
            except NotADirectoryError:
                raise changed() from None
            stack.append(fd)
            chain.append(_key(os.fstat(fd)))
        return Resolved(stack.pop(), None, tuple(chain))
    finally:
        for fd in stack:
            os.close(fd)


def scan(directory: int) -> Iterator[os.DirEntry[str]]:
    """The entries of a directory fd, which is left open and where it was.

    The directory is opened again (``.`` below it) for the listing: a dup would share its
    read position with every other dup of it, such as another request's listing of the same
    directory at the same time. scandir lists (and closes) a dup of the fd it is given, not
    that fd, which is closed here."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=directory)
    try:
        with os.scandir(fd) as entries:
            yield from entries
    finally:
        os.close(fd)


def walk(directory: int) -> Iterator[tuple[int, os.DirEntry[str]]]:
    """Every entry under a directory fd, depth first, each with the fd of its directory;
    directories are entered by fd without following links (a link is an entry, never
    entered)."""
    pending = [os.dup(directory)]
    try:
        while pending:
            current = pending.pop()
            try:
                for entry in scan(current):
                    yield current, entry
                    if entry.is_dir(follow_symlinks=False):
                        with contextlib.suppress(FileNotFoundError, NotADirectoryError, BadInput):
                            pending.append(open_directory(entry.name, current))
            finally:
                os.close(current)
    finally:
        for fd in pending:
            os.close(fd)


def files(directory: int) -> Generator[tuple[str, ...]]:
    """The path below a directory fd of every regular file under it, as the walk finds them;
    links are not entered, nor given (a link to a file is not a file of the tree)."""
    pending: list[tuple[int, tuple[str, ...]]] = [(os.dup(directory), ())]
    try:
        while pending:
            current, relative = pending.pop()
            try:
                for entry in scan(current):
                    if entry.is_file(follow_symlinks=False):
                        yield (*relative, entry.name)
                    elif entry.is_dir(follow_symlinks=False):
                        with contextlib.suppress(FileNotFoundError, NotADirectoryError, BadInput):
                            inner = open_directory(entry.name, current)
                            pending.append((inner, (*relative, entry.name)))
            finally:
                os.close(current)
    finally:
        for fd, _ in pending:
            os.close(fd)


def glob(directory: int, parts: Sequence[str]) -> Iterator[tuple[tuple[str, ...], os.stat_result]]:
    """The entries under a directory fd whose path relative to it matches ``parts`` (each an
    `fnmatch` pattern of one name, ``**`` any number of directories), as the walk finds
    them; links are matched, never entered. The same entry may come more than once."""
    try:
        yield from _glob(directory, (), tuple(parts))
    except RecursionError:
        raise BadInput("the tree is too deep to match", fields={"pattern": "too deep"}) from None


def _glob(
    directory: int, relative: tuple[str, ...], parts: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], os.stat_result]]:
    part, rest = parts[0], parts[1:]
    if part == "**" and rest:
        yield from _glob(directory, relative, rest)
    for entry in scan(directory):
        here = (*relative, entry.name)
        if not rest and (part == "**" or fnmatch.fnmatchcase(entry.name, part)):
            with contextlib.suppress(FileNotFoundError):
                yield here, entry.stat(follow_symlinks=False)
        if not entry.is_dir(follow_symlinks=False):
            continue
        if part == "**":
            following = parts
        elif rest and fnmatch.fnmatchcase(entry.name, part):
            following = rest
        else:
            continue
        try:
            inner = open_directory(entry.name, directory)
        except (FileNotFoundError, NotADirectoryError, BadInput):
            continue
        try:
            yield from _glob(inner, here, following)
        finally:
            os.close(inner)


def count_entries(directory: int) -> int:
    return sum(1 for _ in walk(directory))


def copy_file(source_dir: int, name: str, target_dir: int, target: str) -> None:
    """A regular file, a symlink (as a link) or nothing else, from one directory fd to
    another; a file goes through a hidden temporary name and a rename (atomic)."""
    info = os.stat(name, dir_fd=source_dir, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        # Links are copied as links: one that points outside stays unusable here.
        os.symlink(os.readlink(name, dir_fd=source_dir), target, dir_fd=target_dir)
        return
    if not stat.S_ISREG(info.st_mode):
        return
    temporary = temporary_name()
    source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_dir)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        out = os.open(temporary, flags, 0o600, dir_fd=target_dir)
        try:
            copy_bytes(source, out, info.st_size)
            os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(out)
        os.replace(temporary, target, src_dir_fd=target_dir, dst_dir_fd=target_dir)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=target_dir)
        raise
    finally:
        os.close(source)


_TOKEN = secrets.token_hex(8)
_COUNTER = itertools.count()


def temporary_name() -> str:
    """A hidden name to write a file under before its rename (left out of listings), unique
    in this process and, by its random part, among processes (one urandom per process, not
    per file: an archive writes thousands)."""
    return f"{PARTIAL_PREFIX}{_TOKEN}-{os.getpid()}-{next(_COUNTER)}{PARTIAL_SUFFIX}"


def copy_bytes(source: int, target: int, size: int) -> None:
    """``size`` bytes from one fd to another in the kernel (copy_file_range, sendfile), or
    read and written when neither is there."""
    position = 0
    while position < size:
        try:
            done = os.copy_file_range(source, target, size - position)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            done = -1
        if done < 0:
            block = os.pread(source, 8 * 1024 * 1024, position)
            if not block:
                return
            view = memoryview(block)
            while view:
                view = view[os.write(target, view) :]
            done = len(block)
        if done == 0:
            return
        position += done


def copy_tree(source: int, target: int, refuse: tuple[int, int] | None = None) -> None:
    """What directory fd ``source`` holds, into directory fd ``target``; no link followed."""
    for entry in scan(source):
        if entry.is_dir(follow_symlinks=False):
            inner = open_directory(entry.name, source)
            try:
                if refuse is not None and _key(os.fstat(inner)) == refuse:
                    continue
                os.mkdir(entry.name, 0o700, dir_fd=target)
                made = open_directory(entry.name, target)
                try:
                    copy_tree(inner, made, refuse)
                finally:
                    os.close(made)
            finally:
                os.close(inner)
        else:
            copy_file(source, entry.name, target, entry.name)


def remove_tree(directory: int, name: str) -> None:
    """``name`` under a directory fd and everything in it; links are removed, not followed."""
    import shutil

    shutil.rmtree(name, dir_fd=directory)
