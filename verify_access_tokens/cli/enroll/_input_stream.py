"""``enroll``'s INPUT as a stream, read once: a file, a pipe, a FIFO, ``<(cmd)`` or stdin.

Nothing is read twice, so a producer that can be read only once (process substitution, a named
FIFO, ``/dev/stdin``) gives all its lines. Only a regular file is read twice: once with ``pread``
on the open descriptor, to check every line and count the items (the progress bar's total)
before the first request, then as the run goes. Anything
that may wait on a producer is read by a daemon thread, so the event loop never waits for input.
A read error (EIO from a failing disk or a terminal gone away) is one line naming INPUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TypeVar, cast

from ... import ConfigurationError

_T = TypeVar("_T")
_CHUNK = 1 << 20


class InputStream:
    """INPUT, opened once: its lines, its identity on disk, and its size when known cheaply."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "stdin" if path == "-" else path
        self._memory: Iterable[bytes | str] | None = None
        self._owned = False
        if path == "-":
            try:
                self.fd = sys.stdin.fileno()
            except (AttributeError, OSError, ValueError):  # replaced by an in-memory stream
                self._memory = getattr(sys.stdin, "buffer", sys.stdin)
                self.stat: os.stat_result | None = None
                self.regular = False
                self.may_block = False
                return
        else:
            try:
                self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as exc:
                raise ConfigurationError("INPUT", f"cannot read {path}: {exc.strerror}") from None
            self._owned = True
        try:
            self.stat = os.fstat(self.fd)
        except OSError as exc:
            raise self._cannot_read(exc) from None
        if stat.S_ISDIR(self.stat.st_mode):
            self.close()
            raise ConfigurationError("INPUT", f"{self.name} is a directory; name a file")
        self.regular = stat.S_ISREG(self.stat.st_mode)
        self.may_block = not self.regular  # a pipe, FIFO or terminal waits on its producer

    def close(self) -> None:
        """Close the descriptor (never stdin's)."""
        if self._owned:
            self._owned = False
            os.close(self.fd)

    def __enter__(self) -> InputStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cannot_read(self, exc: OSError) -> ConfigurationError:
        return ConfigurationError("INPUT", f"cannot read {self.name}: {exc.strerror or exc}")

    def lines_at_rest(self) -> Iterator[bytes]:
        """A regular file's lines, read with ``pread``: the stream's own position is untouched.

        So the whole file can be checked (and its items counted) before the run reads it.
        """
        assert self.regular
        offset, pending = 0, b""
        try:
            while chunk := os.pread(self.fd, _CHUNK, offset):
                offset += len(chunk)
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    yield line + b"\n"
        except OSError as exc:
            raise self._cannot_read(exc) from None
        if pending:
            yield pending

    def lines(self) -> Iterator[bytes | str]:
        """Yield the lines, read with ``os.read``.

        No buffered file object: a daemon thread blocked in its read would hold its lock at
        interpreter exit, which is a fatal error.
        """
        if self._memory is not None:
            yield from self._memory
            return
        pending = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError as exc:
                raise self._cannot_read(exc) from None
            if not chunk:
                break
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                yield line + b"\n"
        if pending:
            yield pending


def read_in_thread(items: Iterator[_T], lookahead: int = 256) -> AsyncIterator[_T]:
    """The items of a blocking iterator, read by a daemon thread.

    The event loop never waits for a producer (a pipe into stdin that pauses): requests in
    flight finish on time, and Ctrl-C or SIGTERM act at once. The thread reads at most
    ``lookahead`` items ahead; an error it meets (a bad line) is raised here, in order.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[bool, object]] = asyncio.Queue()
    room = threading.Semaphore(lookahead)

    def post(done: bool, value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the run is over and its loop closed
            loop.call_soon_threadsafe(queue.put_nowait, (done, value))

    def pump() -> None:
        try:
            for item in items:
                room.acquire()
                post(False, item)
        except Exception as exc:
            post(True, exc)
        else:
            post(True, None)

    threading.Thread(target=pump, name="enroll-input", daemon=True).start()

    async def read() -> AsyncIterator[_T]:
        while True:
            done, value = await queue.get()
            if done:
                if value is not None:
                    raise cast(Exception, value)
                return
            room.release()
            yield cast(_T, value)

    return read()
