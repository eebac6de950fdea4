"""A job's output on disk: the plain bytes, and an index of when and where each part came from.

``output.log`` is what the program printed, whole lines, stdout and stderr interleaved in the
order the supervisor read them; a final line without a newline gets one, and a line longer
than ``MAX_LINE`` is cut into pieces of that size, each a line of its own. So the file is the
output as a person reads it, served as is for byte ranges (``LocalRuntime.read_log``).

``output.idx`` is a sequence of fixed-size records, one per run of lines read together from
one stream::

    offset (u64)  time (u64, µs since the epoch)  length (u32)  stream (u8)  3 bytes of padding

all little-endian: ``length`` bytes of ``output.log`` from ``offset`` are that run. A record is
written before the bytes it describes, so a reader never meets bytes without their record; a
record whose bytes are not all there yet is being written, and waits for the next read. Times
never decrease from one record to the next (a clock stepping back repeats the last time), so
``LogReader`` finds ``since`` by bisection.

Standard library only: the supervisor writes these files (see ``jobdir.py`` on why).
"""

from __future__ import annotations

import os
import struct

LOG = "output.log"
INDEX = "output.idx"
MAX_LINE = 64 * 1024
STDOUT = 0
STDERR = 1
RECORD = struct.Struct("<QQIB3x")
# Index records read at once by a reader.
_RECORDS_PER_READ = 256


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
    """The supervisor's end: appends runs of lines with their index records."""

    def __init__(self, job_dir: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._index = os.open(os.path.join(job_dir, INDEX), flags, 0o644)
        self._log = os.open(os.path.join(job_dir, LOG), flags, 0o644)
        self._size = os.fstat(self._log).st_size
        self._last_us = 0

    def write(self, stream: int, lines: list[bytes], now: float) -> None:
        if not lines:
            return
        data = b"".join(line + b"\n" for line in lines)
        self._last_us = max(self._last_us, int(now * 1_000_000))
        _write_all(self._index, RECORD.pack(self._size, self._last_us, len(data), stream))
        _write_all(self._log, data)
        self._size += len(data)

    def close(self) -> None:
        os.close(self._index)
        os.close(self._log)


class LogReader:
    """Reads a job's lines onwards from where it stopped: ``(time µs, stream, line)``.

    Each ``read`` opens the files afresh (a job directory may be removed between two reads)
    and returns at most ``max_lines`` lines and about ``max_bytes`` bytes (one line more at
    most); an empty list when nothing new is there.
    """

    def __init__(self, job_dir: str, *, since_us: int | None = None) -> None:
        self._index_path = os.path.join(job_dir, INDEX)
        self._log_path = os.path.join(job_dir, LOG)
        self._since_us = since_us
        self._record = 0  # the next record to read
        self._done = 0  # bytes of that record already returned
        self._positioned = since_us is None

    def read(self, *, max_lines: int, max_bytes: int) -> list[tuple[int, int, bytes]]:
        try:
            index = os.open(self._index_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
        try:
            log = os.open(self._log_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            os.close(index)
            return []
        try:
            if not self._positioned:
                self._record = self._bisect(index)
                self._positioned = True
            return self._read(index, log, max_lines, max_bytes)
        finally:
            os.close(index)
            os.close(log)

    def _read(
        self, index: int, log: int, max_lines: int, max_bytes: int
    ) -> list[tuple[int, int, bytes]]:
        out: list[tuple[int, int, bytes]] = []
        size = 0
        while len(out) < max_lines and size < max_bytes:
            records = _records(index, self._record, _RECORDS_PER_READ)
            if not records:
                break
            # The runs of consecutive records are consecutive bytes: read them in one go.
            first_offset = records[0][0] + self._done
            last = 0
            while last + 1 < len(records) and records[last + 1][0] - first_offset < max_bytes:
                last += 1
            end = records[last][0] + records[last][2]
            data = os.pread(log, end - first_offset, first_offset)
            for offset, time_us, length, stream in records[: last + 1]:
                start = offset + self._done - first_offset
                if start + length - self._done > len(data):
                    return out  # its bytes are being written
                if self._since_us is not None and time_us < self._since_us:
                    self._next_record()
                    continue
                chunk = data[start : start + length - self._done]
                for line in chunk.split(b"\n")[:-1]:
                    out.append((time_us, stream, line))
                    size += len(line) + 1
                    self._done += len(line) + 1
                    if len(out) >= max_lines or size >= max_bytes:
                        if self._done >= length:
                            self._next_record()
                        return out
                self._next_record()
        return out

    def _next_record(self) -> None:
        self._record += 1
        self._done = 0

    def _bisect(self, index: int) -> int:
        """The first record at or after ``since``."""
        low, high = 0, os.fstat(index).st_size // RECORD.size
        while low < high:
            middle = (low + high) // 2
            (_, time_us, _, _) = _records(index, middle, 1)[0]
            if self._since_us is not None and time_us < self._since_us:
                low = middle + 1
            else:
                high = middle
        return low


def _records(index: int, first: int, count: int) -> list[tuple[int, int, int, int]]:
    data = os.pread(index, RECORD.size * count, RECORD.size * first)
    whole = len(data) - len(data) % RECORD.size
    return list(RECORD.iter_unpack(data[:whole]))


def read_bytes(job_dir: str, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of ``output.log`` from ``offset``; b"" past its end or before it
    exists."""
    try:
        fd = os.open(os.path.join(job_dir, LOG), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return b""
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def log_size(job_dir: str) -> int:
    try:
        return os.stat(os.path.join(job_dir, LOG)).st_size
    except FileNotFoundError:
        return 0
