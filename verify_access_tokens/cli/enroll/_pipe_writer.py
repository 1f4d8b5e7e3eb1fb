"""Writing ``enroll``'s results to a pipe, a FIFO or a terminal without blocking the event loop.

A reader that stalls fills the pipe, and a write into a full pipe waits for it. So the lines go
to a daemon thread that writes them with ``os.write`` (no buffered file object, whose lock a
blocked thread would hold at interpreter exit). The loop only queues them; past `BACKLOG`
lines it waits for the reader to catch up, so a stalled reader slows the sending instead of
filling memory, and `release` (Ctrl-C) ends that wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from typing import Final

BACKLOG: Final = 256  # lines queued for the reader before the run waits for it


class PipeWriter:
    """Lines for one file descriptor, written in order by a daemon thread."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._loop = loop
        self._lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()  # every line written (or nothing more will be)
        self._idle.set()
        self._released = False
        self.error: OSError | None = None  # the write that failed (a reader gone: EPIPE)
        self._thread = threading.Thread(target=self._run, name="enroll-out", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Lines handed over and not yet written."""
        return self._queued

    def put(self, line: bytes) -> None:
        """Queue ``line``; raise the error of a write that failed before.

        Raises:
            OSError: An earlier write failed (``BrokenPipeError`` when the reader went away).
        """
        if self.error is not None:
            raise self.error
        with self._lock:
            self._queued += 1
            if not self._released:  # once released, nothing waits for the reader any more
                self._idle.clear()
                if self._queued >= BACKLOG:
                    self._room.clear()
        self._lines.put(line)

    async def room(self) -> None:
        """Wait while the reader is `BACKLOG` lines behind (not after `release`)."""
        await self._room.wait()

    def release(self) -> None:
        """Stop waiting for the reader: the run is stopping."""
        self._released = True
        self._room.set()
        self._idle.set()

    async def drain(self) -> None:
        """Wait until the reader took every line, it went away, or `release` was called."""
        await self._idle.wait()

    def finish(self, grace: float) -> int:
        """Let the thread write what is queued, for ``grace`` seconds at most.

        Returns:
            The lines that could not be delivered in that time (0: all were).
        """
        self._lines.put(None)
        self._thread.join(grace)
        return self._queued

    def _run(self) -> None:
        while (line := self._lines.get()) is not None:
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                self.error = exc
                self._wake(self._room, self._idle)
                return
            with self._lock:
                self._queued -= 1
                left = self._queued
            if left == BACKLOG // 2:
                self._wake(self._room)
            if left == 0:
                self._wake(self._idle)

    def _wake(self, *events: asyncio.Event) -> None:
        with contextlib.suppress(RuntimeError):  # the run is over and its loop closed
            for event in events:
                self._loop.call_soon_threadsafe(event.set)
