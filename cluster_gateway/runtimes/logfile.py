"""A job's output on disk: the plain bytes in segments, an index of when and where each part
came from, and a cap on how much is kept.

The output is one stream of bytes, whole lines, stdout and stderr interleaved in the order the
supervisor read them; a final line without a newline gets one, and a line longer than
``MAX_LINE`` is cut into pieces of that size, each a line of its own. An *offset* counts bytes
in that stream from the job's first byte. It is stored in segments ``k = 0, 1, ...``: the
bytes in ``output.<k>.log`` (served as they are for byte ranges, ``LocalRuntime.read_log``)
and their index in ``output.<k>.idx``, a sequence of fixed-size records, one per run of lines
read together from one stream::

    offset (u64)  time (u64, µs since the epoch)  length (u32)  stream (u8)  3 bytes of padding

all little-endian: the run is ``length`` bytes at ``offset``, which is ``offset - base`` in the
segment's log, ``base`` being the offset of the segment's first record. A record is written
before the bytes it describes, so a reader never meets bytes without their record; a record
whose bytes are not all there yet is being written, and waits for the next read. Times never
decrease (a clock stepping back repeats the last time), so ``since`` is found by bisection.

The cap (``LogWriter(limit=...)``): a segment is closed when the next run would take it past
``limit / SEGMENTS`` bytes, and once the segments hold more than ``limit`` bytes the oldest are
deleted whole, index first. Readers then get a marker line, `dropped_line` (``[glia: N bytes
of older output were dropped]``): `LogReader` yields it as a line of stream ``SYSTEM`` where
the output it skips begins (to a follower that fell behind the deletions too, for what it
missed), and `Snapshot`, the bytes of ``read_log``, starts with it, so the lines and the bytes
still match. Positions in those bytes move when more is dropped: a read resumed by offset on a
running job past its cap may skip or repeat a little.

A reader that finds the log truncated (an index or log file shorter than it has read) or
removed (the job forgotten) under it yields one ``SYSTEM`` line saying so and ends: what is
left cannot be placed.

Standard library only: the supervisor writes these files (see ``jobdir.py`` on why).
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

MAX_LINE = 64 * 1024
STDOUT = 0
STDERR = 1
SYSTEM = 2  # said by the runtime about the output itself; never in the files
RECORD = struct.Struct("<QQIB3x")
# A log at its cap holds about this many segments: the last 1/SEGMENTS is what is dropped at once.
SEGMENTS = 8
MIN_SEGMENT = 16 * 1024
FILE_MODE = 0o600
TRUNCATED_LINE = b"[glia: the log was truncated while it was read; the rest is not shown]"
REMOVED_LINE = b"[glia: the log was removed while it was read]"
# Index records read at once by a reader.
_RECORDS_PER_READ = 256
_PREFIX = "output."


def log_name(segment: int) -> str:
    return f"{_PREFIX}{segment}.log"


def index_name(segment: int) -> str:
    return f"{_PREFIX}{segment}.idx"


def dropped_line(count: int) -> bytes:
    """The marker line where ``count`` bytes of older output were dropped."""
    return f"[glia: {count} bytes of older output were dropped]".encode()


def split_lines(buf: bytes, final: bool) -> tuple[list[bytes], bytes]:
    """Whole lines of ``buf`` (at most MAX_LINE bytes each) and the unfinished rest; with
    ``final``, the rest is a line too.

    >>> split_lines(b"a\\nb\\npart", False)
    ([b'a', b'b'], b'part')
    """
    *lines, rest = buf.split(b"\n")
    out: list[bytes] = []
    for line in lines:
        while len(line) > MAX_LINE:
            out.append(line[:MAX_LINE])
            line = line[MAX_LINE:]
        out.append(line)
    while len(rest) >= MAX_LINE:
        out.append(rest[:MAX_LINE])
        rest = rest[MAX_LINE:]
    if final and rest:
        out.append(rest)
        rest = b""
    return out, rest


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LogWriter:
    """The supervisor's end: appends runs of lines with their index records, keeping about
    ``limit`` bytes (see the module docstring)."""

    def __init__(self, job_dir: str, limit: int) -> None:
        self._dir = job_dir
        self._limit = limit
        self._segment_limit = max(MIN_SEGMENT, limit // SEGMENTS)
        self._segments: list[list[int]] = []  # [k, bytes] of the segments kept, oldest first
        self._kept = 0
        self._offset = 0  # of the next byte
        self._last_us = 0
        self._index = self._log = -1
        self._open(0)

    def _open(self, segment: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._index = os.open(os.path.join(self._dir, index_name(segment)), flags, FILE_MODE)
        self._log = os.open(os.path.join(self._dir, log_name(segment)), flags, FILE_MODE)
        self._segments.append([segment, 0])

    def write(self, stream: int, lines: list[bytes], now: float) -> None:
        if not lines:
            return
        data = b"".join(line + b"\n" for line in lines)
        current = self._segments[-1]
        if current[1] and current[1] + len(data) > self._segment_limit:
            self._close_files()
            self._open(current[0] + 1)
            current = self._segments[-1]
        self._last_us = max(self._last_us, int(now * 1_000_000))
        _write_all(self._index, RECORD.pack(self._offset, self._last_us, len(data), stream))
        _write_all(self._log, data)
        self._offset += len(data)
        current[1] += len(data)
        self._kept += len(data)
        while self._kept > self._limit and len(self._segments) > 1:
            segment, size = self._segments.pop(0)
            for name in (index_name(segment), log_name(segment)):
                try:
                    os.unlink(os.path.join(self._dir, name))
                except FileNotFoundError:
                    pass
            self._kept -= size

    def _close_files(self) -> None:
        os.close(self._index)
        os.close(self._log)

    def close(self) -> None:
        self._close_files()


class _Batch:
    """Runs for one read: at most ``max_lines`` lines, and at most ``max_bytes`` bytes of text
    (newlines not counted) unless a single line is longer."""

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.runs: list[tuple[int, int, bytes]] = []
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.lines = 0
        self.size = 0

    @property
    def full(self) -> bool:
        return self.lines >= self.max_lines or self.size >= self.max_bytes

    @property
    def room(self) -> int:
        return self.max_bytes - self.size

    def add(self, time_us: int, stream: int, text: bytes) -> int:
        """Take what fits of ``text`` (whole lines, each ended by a newline): the number of
        its bytes taken."""
        count = text.count(b"\n")
        if self.lines + count <= self.max_lines and self.size + len(text) - count <= self.max_bytes:
            taken, size = len(text), len(text) - count
        else:  # line by line, up to the bounds
            taken = size = count = 0
            while self.lines + count < self.max_lines:
                end = text.find(b"\n", taken)
                if end < 0 or (
                    self.lines + count and self.size + size + end - taken > self.max_bytes
                ):
                    break
                size += end - taken
                count += 1
                taken = end + 1
        if count:
            self.runs.append((time_us, stream, text[:taken]))
            self.lines += count
            self.size += size
        return taken


# What reading a segment came to.
_FULL, _WAIT, _AGAIN, _NEXT = "full", "wait", "again", "next"


class LogReader:
    """Reads a job's lines onwards from where it stopped, in runs ``(time µs, stream, text)``:
    ``text`` is one or more whole lines of one record, each ended by a newline.

    Each ``read`` opens the files afresh (a job directory may be removed between two reads)
    and returns at most ``max_lines`` lines and ``max_bytes`` bytes of text (a single longer
    line alone); an empty list when nothing new is there. ``finished`` turns true once the log
    was found truncated or removed, after the line that says so: nothing more will come.
    ``position`` is the offset of the next byte it will return: two readers at one position
    (neither ``filtering``) return the same from there on. A reader is plain data: a copy
    (``copy.copy``) reads on from where the original was, independently.

    It starts at the first byte, at the first record at or after ``since_us``, or at
    ``offset`` (a position an earlier reader reached: one of its runs' ends); an offset
    whose bytes were dropped starts at the oldest kept, after the marker line, and one past
    the end waits at the end.
    """

    def __init__(
        self, job_dir: str, *, since_us: int | None = None, offset: int | None = None
    ) -> None:
        if since_us is not None and offset is not None:
            raise ValueError("a reader starts at a time or at an offset, not both")
        self._dir = job_dir
        self._since_us = since_us
        self._offset = offset
        self._last_us = -1  # the time of the last record read or skipped
        self._positioned = since_us is None and offset is None
        self._segment = 0
        self._record = 0  # the next record of the segment to read
        self._done = 0  # bytes of that record already returned
        self._base: int | None = None  # the segment's first offset
        self._position = 0  # offset of the next byte to return
        self._log_seen = 0  # the largest size seen of the segment's log
        self._rechecked = False  # the segment was read again after the next one appeared
        self._found = False  # a segment was there once
        self._pending: tuple[int, int, bytes] | None = None  # a SYSTEM line that did not fit
        self._ending = False
        self.finished = False

    @property
    def position(self) -> int:
        return self._position

    @property
    def filtering(self) -> bool:
        """Whether records may still be skipped for being older than ``since``."""
        return self._since_us is not None and self._last_us < self._since_us

    def read(self, *, max_lines: int, max_bytes: int) -> list[tuple[int, int, bytes]]:
        batch = _Batch(max_lines, max_bytes)
        while not self.finished:
            if self._pending is not None:
                time_us, stream, line = self._pending
                if not batch.add(time_us, stream, line + b"\n"):
                    break
                self._pending = None
                if self._ending:
                    self.finished = True
                    break
            if batch.full:
                break
            if not self._positioned:
                found = self._position_at() if self._offset is not None else self._position_since()
                if not found:
                    break
                continue
            step = self._step(batch)
            if step in (_FULL, _WAIT):
                break
        return batch.runs

    # --- moving between segments ----------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self._dir, name)

    def _segments(self) -> list[int] | None:
        return segments(self._dir)

    def _first_record(self, segment: int) -> tuple[int, int, int, int] | None:
        try:
            index = os.open(self._path(index_name(segment)), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            records = _records(index, 0, 1)
        finally:
            os.close(index)
        return records[0] if records else None

    def _move_to(self, segment: int, record: int, position: int) -> None:
        self._segment = segment
        self._record = record
        self._done = 0
        self._base = None
        self._position = position
        self._log_seen = 0
        self._rechecked = False

    def _say(self, time_us: int, line: bytes, *, ending: bool = False) -> None:
        self._pending = (time_us, SYSTEM, line)
        self._ending = ending

    def _indexes(
        self, segments: list[int]
    ) -> Iterator[tuple[int, int, int, tuple[int, int, int, int]]]:
        """Each of ``segments`` that has records: its number, its open index (closed when
        the loop moves on or stops), its record count and its last record."""
        for segment in segments:
            try:
                index = os.open(self._path(index_name(segment)), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # dropped meanwhile
            try:
                count = os.fstat(index).st_size // RECORD.size
                if count:
                    yield segment, index, count, _records(index, count - 1, 1)[0]
            finally:
                os.close(index)

    def _position_since(self) -> bool:
        """Find the first record at or after ``since``; False when there is no output yet."""
        segments = self._segments()
        if not segments:
            return False
        since = self._since_us or 0
        chosen: tuple[int, int, int] | None = None  # segment, record, offset
        last_end = 0
        for segment, index, count, (offset, time_us, length, _) in self._indexes(segments):
            last_end = offset + length
            if time_us >= since:
                record = _bisect(index, count, since)
                chosen = (segment, record, _records(index, record, 1)[0][0])
                break
        if chosen is None:  # all of it is older: wait at the end for what comes
            chosen = (segments[-1], _count(self._path(index_name(segments[-1]))), last_end)
        first = self._first_record(segments[0])
        if first is not None and first[0] > 0 and first[1] >= since:
            # Lines at or after ``since`` may have been dropped.
            self._say(first[1], dropped_line(first[0]))
        self._move_to(*chosen)
        self._found = True
        self._positioned = True
        return True

    def _position_at(self) -> bool:
        """Find the record holding ``offset``; False when there is no output yet."""
        offset = self._offset or 0
        segments = self._segments()
        if not segments:
            return False
        last: tuple[int, int, int] | None = None  # segment, records, end of the output
        for segment, index, count, (end_offset, _, end_length, _) in self._indexes(segments):
            last = (segment, count, end_offset + end_length)
            if offset >= end_offset + end_length:
                continue
            record = _bisect_offset(index, count, offset)
            start, time_us, _, _ = _records(index, record, 1)[0]
            if offset < start:  # its bytes were dropped: on from the oldest kept
                self._say(time_us, dropped_line(start - offset))
                self._move_to(segment, record, start)
            else:
                self._move_to(segment, record, offset)
                self._done = offset - start
            break
        else:
            if last is None:
                return False
            self._move_to(*last)  # all of it is before the offset: wait at the end
        self._found = True
        self._positioned = True
        return True

    def _step(self, batch: _Batch) -> str:
        """Read from the current segment, or move past it; what that came to."""
        try:
            index = os.open(self._path(index_name(self._segment)), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return self._skip_missing()
        try:
            log = os.open(self._path(log_name(self._segment)), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            os.close(index)
            return self._skip_missing()
        self._found = True
        try:
            return self._read_segment(index, log, batch)
        finally:
            os.close(index)
            os.close(log)

    def _skip_missing(self) -> str:
        """The current segment's files are not there: dropped, removed, or not yet written."""
        segments = self._segments()
        if not segments:
            if self._found:  # the whole log went
                self._say(_now_us(), REMOVED_LINE, ending=True)
                return _AGAIN
            return _WAIT
        oldest = segments[0]
        if self._segment >= oldest:
            return _WAIT  # not written yet (or being created right now)
        first = self._first_record(oldest)
        if first is None:
            return _WAIT
        offset, time_us, _, _ = first
        if offset > self._position:
            self._say(time_us, dropped_line(offset - self._position))
        self._move_to(oldest, 0, offset)
        return _AGAIN

    def _truncated(self) -> str:
        self._say(_now_us(), TRUNCATED_LINE, ending=True)
        return _AGAIN

    def _next_exists(self) -> bool:
        return os.path.exists(self._path(index_name(self._segment + 1)))

    # --- reading a segment ----------------------------------------------------------------------

    def _read_segment(self, index: int, log: int, batch: _Batch) -> str:
        if os.fstat(index).st_size // RECORD.size < self._record:
            return self._truncated()
        log_size = os.fstat(log).st_size
        if log_size < self._log_seen:
            return self._truncated()
        self._log_seen = log_size
        if self._base is None:
            head = _records(index, 0, 1)
            if not head:
                return _WAIT
            self._base = head[0][0]
        base = self._base
        while not batch.full:
            records = _records(index, self._record, _RECORDS_PER_READ)
            if not records:
                if not self._next_exists():
                    return _WAIT
                if not self._rechecked:
                    # The writer moved on: what it added before, this read may have missed.
                    self._rechecked = True
                    return _AGAIN
                self._move_to(self._segment + 1, 0, self._position)
                return _NEXT
            # The runs of consecutive records are consecutive bytes: read them in one go.
            first = records[0][0] - base + self._done
            last = 0
            while last + 1 < len(records) and records[last + 1][0] - base - first < batch.room:
                last += 1
            end = min(records[last][0] - base + records[last][2], log_size)
            data = os.pread(log, max(0, end - first), first)
            for offset, time_us, length, stream in records[: last + 1]:
                start = offset - base + self._done - first
                if start + length - self._done > len(data):
                    # Its bytes are being written, unless the writer has moved on.
                    return self._truncated() if self._next_exists() else _WAIT
                self._last_us = time_us
                if self._since_us is not None and time_us < self._since_us:
                    self._position += length - self._done
                    self._next_record()
                    continue
                chunk = data[start : start + length - self._done]
                # A record holds whole lines; a damaged one's unfinished end is left out.
                whole = chunk.rfind(b"\n") + 1
                taken = batch.add(time_us, stream, chunk[:whole] if whole < len(chunk) else chunk)
                self._done += taken
                self._position += taken
                if taken < whole:
                    return _FULL
                self._next_record()
        return _FULL

    def _next_record(self) -> None:
        self._record += 1
        self._done = 0


class Snapshot:
    """The output as ``read_log`` serves it, fixed when taken: the marker line if older output
    was dropped, then the bytes of the segments kept. Their files stay open, so a segment
    dropped meanwhile is still read whole; ``close`` when done."""

    def __init__(self, job_dir: str) -> None:
        self._parts: list[tuple[int, int]] = []  # (fd, size) of each segment's log, oldest first
        self.head = b""
        self.size = 0
        try:
            self._take(job_dir)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self, job_dir: str) -> None:
        base: int | None = None
        for segment in segments(job_dir) or []:
            path = os.path.join(job_dir, index_name(segment))
            try:
                index = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # dropped since the listing
            try:
                log = os.open(os.path.join(job_dir, log_name(segment)), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                os.close(index)
                continue
            try:
                if base is None:
                    first = _records(index, 0, 1)
                    base = first[0][0] if first else 0
            finally:
                os.close(index)
            self._parts.append((log, os.fstat(log).st_size))
        self.head = dropped_line(base) + b"\n" if base else b""
        self.size = len(self.head) + sum(size for _, size in self._parts)

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; b"" past the end."""
        out: list[bytes] = []
        if offset < len(self.head):
            out.append(self.head[offset : offset + size])
            size -= len(out[-1])
            offset = 0
        else:
            offset -= len(self.head)
        for fd, part_size in self._parts:
            if size <= 0:
                break
            if offset >= part_size:
                offset -= part_size
                continue
            wanted = min(size, part_size - offset)
            data = os.pread(fd, wanted, offset)
            out.append(data)
            size -= len(data)
            offset = 0
            if len(data) < wanted:
                break  # truncated under us
        return b"".join(out)

    def close(self) -> None:
        parts, self._parts = self._parts, []
        for fd, _ in parts:
            os.close(fd)


def segments(job_dir: str) -> list[int] | None:
    """The segments on disk, oldest first; None when the directory is gone."""
    try:
        names = os.listdir(job_dir)
    except (FileNotFoundError, NotADirectoryError):
        return None
    found = []
    for name in names:
        if name.startswith(_PREFIX) and name.endswith(".idx"):
            number = name[len(_PREFIX) : -len(".idx")]
            if number.isdigit():
                found.append(int(number))
    return sorted(found)


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def _records(index: int, first: int, count: int) -> list[tuple[int, int, int, int]]:
    data = os.pread(index, RECORD.size * count, RECORD.size * first)
    whole = len(data) - len(data) % RECORD.size
    return list(RECORD.iter_unpack(data[:whole]))


def _count(path: str) -> int:
    try:
        return os.stat(path).st_size // RECORD.size
    except FileNotFoundError:
        return 0


def _bisect(index: int, count: int, since_us: int) -> int:
    """The first of the ``count`` records at or after ``since_us``."""
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        (_, time_us, _, _) = _records(index, middle, 1)[0]
        if time_us < since_us:
            low = middle + 1
        else:
            high = middle
    return low


def _bisect_offset(index: int, count: int, offset: int) -> int:
    """The last of the ``count`` records starting at or before ``offset`` (0 if none does)."""
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        (start, _, _, _) = _records(index, middle, 1)[0]
        if start <= offset:
            low = middle + 1
        else:
            high = middle
    return max(low - 1, 0)


# Bytes read at once when looking for the last lines from the end.
_TAIL_BLOCK = 64 * 1024


def tail_offset(job_dir: str, lines: int) -> int:
    """The offset where the output's last ``lines`` lines begin: the oldest kept byte when
    it holds fewer, the end when ``lines`` is 0 (and 0 when there is no output yet).

    It reads backwards from the end, a block at a time, only as far as those lines go.
    """
    newlines = 0
    oldest = 0
    end: int | None = None
    for segment in reversed(segments(job_dir) or []):
        try:
            index = os.open(os.path.join(job_dir, index_name(segment)), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            count = os.fstat(index).st_size // RECORD.size
            if not count:
                continue
            base = _records(index, 0, 1)[0][0]
            last_offset, _, last_length, _ = _records(index, count - 1, 1)[0]
        finally:
            os.close(index)
        oldest = base
        try:
            log = os.open(os.path.join(job_dir, log_name(segment)), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            position = min(last_offset + last_length - base, os.fstat(log).st_size)
            if end is None:
                end = base + position
                if lines == 0:
                    return end
            while position > 0:
                size = min(_TAIL_BLOCK, position)
                block = os.pread(log, size, position - size)
                at = len(block)
                while (at := block.rfind(b"\n", 0, at)) >= 0:
                    newlines += 1
                    # The output's last byte ends its last line: the (lines + 1)-th newline
                    # from the end is just before the first line wanted.
                    if newlines == lines + 1:
                        return base + position - size + at + 1
                position -= size
        finally:
            os.close(log)
    return oldest


def log_size(job_dir: str) -> int:
    """What ``Snapshot(job_dir).size`` would be now."""
    with Snapshot(job_dir) as snapshot:
        return snapshot.size
