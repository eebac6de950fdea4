"""The terminal of a ``glia run -t`` job, held by its supervisor (standard library only).

The job's stdin, stdout and stderr are the slave end of a PTY (echo off: what is typed does
not land in the job's log); the supervisor reads the master end into the log as stdout, and
copies into it what arrives on the FIFO ``stdin`` in the job's directory (0600, the runtime's:
``LocalRuntime.write_stdin`` writes there, the job cannot). The job runs in a new session
(bwrap's ``--new-session`` keeps TIOCSTI away), so the terminal is not its controlling one:
input is data, Ctrl-C is the byte 0x03, not SIGINT.

Bounded: at most `PENDING_MAX` bytes wait for the job to read; past that the supervisor stops
reading the FIFO, so a writer waits (or, writing without blocking, is told to come back),
and the supervisor never blocks on the job.

The terminal's size arrives on a second FIFO, ``winsize`` (0600, the runtime's:
``LocalRuntime.resize_terminal``), as `WINSIZE` records of rows and columns, each written
whole (a FIFO write of up to PIPE_BUF bytes is never split). The supervisor sets the last
size it read on the master (TIOCSWINSZ) and, since the terminal is not the job's controlling
one and the kernel signals nobody, sends SIGWINCH to the job's processes itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios

STDIN_FIFO = "stdin"
WINSIZE_FIFO = "winsize"
PENDING_MAX = 64 * 1024
# One size: rows, then columns (what TIOCSWINSZ takes first).
WINSIZE = struct.Struct("=HH")


class Terminal:
    def __init__(self, job_dir: str) -> None:
        self.master, self.slave = os.openpty()
        attributes = termios.tcgetattr(self.slave)
        attributes[3] &= ~(termios.ECHO | termios.ECHONL)  # lflag
        termios.tcsetattr(self.slave, termios.TCSANOW, attributes)
        os.set_blocking(self.master, False)
        self.fifo = _fifo(job_dir, STDIN_FIFO)
        self.winsize = _fifo(job_dir, WINSIZE_FIFO)
        self.sizes = b""  # a record read in part
        self.pending = b""
        self.reading = True

    def started(self) -> None:
        """The job has its end: the supervisor keeps only the master."""
        os.close(self.slave)
        self.slave = -1

    def register(self, poller: select.epoll) -> None:
        poller.register(self.fifo, select.EPOLLIN)
        poller.register(self.winsize, select.EPOLLIN)

    def on_resize(self) -> bool:
        """The size FIFO is readable: set the last whole size read; whether one was set."""
        try:
            self.sizes += os.read(self.winsize, 64 * WINSIZE.size)
        except BlockingIOError:
            return False
        whole = len(self.sizes) - len(self.sizes) % WINSIZE.size
        if not whole:
            return False
        rows, cols = WINSIZE.unpack_from(self.sizes, whole - WINSIZE.size)
        self.sizes = self.sizes[whole:]
        try:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        except OSError:
            return False
        return True

    def on_input(self, poller: select.epoll) -> None:
        """The FIFO is readable: take what fits and pass it on."""
        try:
            self.pending += os.read(self.fifo, PENDING_MAX - len(self.pending))
        except BlockingIOError:
            pass
        self.flush(poller)

    def flush(self, poller: select.epoll) -> None:
        """Write what waits to the master; watch it for room while some is left."""
        try:
            while self.pending:
                written = os.write(self.master, self.pending)
                self.pending = self.pending[written:]
        except BlockingIOError:
            pass
        except OSError as exc:  # the job closed its end: its input goes nowhere
            if exc.errno != errno.EIO:
                raise
            self.pending = b""
        want_more = len(self.pending) < PENDING_MAX
        if want_more != self.reading:
            if want_more:
                poller.register(self.fifo, select.EPOLLIN)
            else:
                poller.unregister(self.fifo)
            self.reading = want_more
        mask = select.EPOLLIN | (select.EPOLLOUT if self.pending else 0)
        try:
            poller.modify(self.master, mask)
        except (FileNotFoundError, OSError):
            pass  # the master ended already

    def close(self) -> None:
        for fd in (self.fifo, self.winsize, self.slave):
            if fd >= 0:
                os.close(fd)
        self.fifo = self.winsize = self.slave = -1


def _fifo(job_dir: str, name: str) -> int:
    path = os.path.join(job_dir, name)
    try:
        os.unlink(path)  # a restart's leftover
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o600)
    # Read and write: the FIFO never reads as ended when a writer closes it.
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
