"""A fake clock for the running event loop, for timers a test must not wait for."""

from __future__ import annotations

import asyncio

import pytest


class FakeClock:
    """The running loop's clock, moved by hand: timers fire when the test moves it past them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        loop = asyncio.get_running_loop()
        # From the real clock's reading: going back to it (monkeypatch.undo()) never waits
        # for the real clock to catch up with a fake one ahead of it.
        self.now = loop.time()
        monkeypatch.setattr(loop, "time", lambda: self.now)

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for _ in range(5):
            await asyncio.sleep(0)
