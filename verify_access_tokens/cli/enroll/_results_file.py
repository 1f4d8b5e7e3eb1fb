"""Opening ``enroll --out``: one run owns the results file, which only its owner can read.

The file is opened once, without following a symbolic link (``O_NOFOLLOW``), and locked with
``fcntl.flock`` for the whole run, so a second run on it exits 2 in one line. A new file is
created with mode 0600 (it holds tokens); an existing one is brought to 0600, or refused if that
fails. It is never overwritten: without ``--resume`` it must be empty. INPUT and ``--out`` may not
be the same file (compared by device and inode, so links and ``/dev/stdin`` count too).
``--resume`` reads the earlier runs' lines from the same descriptor with ``pread``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO

from ... import ConfigurationError
from ._journal import cannot_write

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

_CHUNK = 1 << 20


class ResultsFile:
    """``--out``, open for appending (or stdout for ``-``), locked for the run."""

    def __init__(self, out: str, *, resume: bool) -> None:
        self.out = out
        self.fd: int | None = None
        self.stat: os.stat_result | None = None
        if out == "-":
            if resume:
                raise ConfigurationError("--resume", "needs a results file, not --out -")
            self.stream: IO[str] = sys.stdout
            return
        self.fd = self._open()
        try:
            self._claim(resume)
        except BaseException:
            os.close(self.fd)
            raise
        self.stream = os.fdopen(self.fd, "w", encoding="utf-8", closefd=True)
        if resume and self._ends_mid_line():
            self.stream.write("\n")  # a crash cut the last line short: keep it off the next one

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        try:
            # The mode is given at creation, so a new file is never readable by others.
            return os.open(self.out, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP or os.path.islink(self.out):
                raise ConfigurationError(
                    "--out", f"{self.out} is a symbolic link; name the file itself"
                ) from None
            if exc.errno == errno.EISDIR or os.path.isdir(self.out):
                raise ConfigurationError(
                    "--out", f"{self.out} is a directory; name a file"
                ) from None
            raise cannot_write(self.out, exc) from None

    def _claim(self, resume: bool) -> None:
        assert self.fd is not None
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigurationError(
                    "--out", f"{self.out} is in use by another enroll run; wait for it to end"
                ) from None
            except OSError:  # pragma: no cover - a file system without locks: run unlocked
                pass
        self.stat = os.fstat(self.fd)
        if not stat.S_ISREG(self.stat.st_mode):
            return  # a device or a pipe (/dev/full, a FIFO): no mode to keep, nothing to resume
        if self.stat.st_size and not resume:
            raise ConfigurationError(
                "--out", f"{self.out} exists; pass --resume to continue it, or choose another file"
            )
        mode = stat.S_IMODE(self.stat.st_mode)
        if mode & 0o077:
            try:
                os.fchmod(self.fd, 0o600)
            except OSError as exc:
                raise ConfigurationError(
                    "--out",
                    f"{self.out} is readable by others (mode {mode:o}) and cannot be made 0600: "
                    f"{exc.strerror}",
                ) from None

    @property
    def regular(self) -> bool:
        """Whether ``--out`` is a regular file (not ``-``, a FIFO or a device)."""
        return self.stat is not None and stat.S_ISREG(self.stat.st_mode)

    def _ends_mid_line(self) -> bool:
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        return size > 0 and os.pread(self.fd, 1, size - 1) != b"\n"

    def lines(self) -> Iterator[bytes]:
        """The lines already in the file (``pread``: the append position is untouched)."""
        if self.fd is None or self.stat is None or not stat.S_ISREG(self.stat.st_mode):
            return
        offset, pending = 0, b""
        while chunk := os.pread(self.fd, _CHUNK, offset):
            offset += len(chunk)
            *complete, pending = (pending + chunk).split(b"\n")
            yield from complete
        if pending:
            yield pending

    def close(self) -> None:
        """Close (and so unlock) the file; a failure to flush what was buffered is one line."""
        if self.fd is None:
            return
        try:
            self.stream.close()  # flushes what a failed write left buffered: it may fail again
        except OSError as exc:
            raise cannot_write(self.out, exc) from None


def same_file(out: str, other: os.stat_result | None) -> bool:
    """Whether ``other`` (INPUT's stat; None for an in-memory stdin) is the file ``out`` names.

    Compared by device and inode, before ``--out`` is opened: links and ``/dev/stdin`` count.
    """
    if out == "-" or other is None:
        return False
    try:
        mine = os.stat(out)
    except OSError:  # not there yet (or not readable): it cannot be INPUT
        return False
    return (mine.st_dev, mine.st_ino) == (other.st_dev, other.st_ino)


@contextlib.contextmanager
def results_file(out: str, *, resume: bool) -> Iterator[ResultsFile]:
    """``--out`` opened and locked for the run, closed (and unlocked) at its end."""
    opened = ResultsFile(out, resume=resume)
    try:
        yield opened
    finally:
        opened.close()
