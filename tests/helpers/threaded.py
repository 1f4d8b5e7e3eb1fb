"""Serve an in-process server on its own loop in a thread: for code under test that runs its own
``asyncio.run()`` (the CLI's ``main``) or for CLI subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

Server = TypeVar("Server", bound=contextlib.AbstractAsyncContextManager[Any])


@contextlib.contextmanager
def in_thread(server: Server) -> Iterator[Server]:
    """Enter ``server`` (an async context manager) on a new loop in a thread; exit it after."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.__aenter__())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.__aexit__(None, None, None))
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
