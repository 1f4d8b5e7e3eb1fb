"""A gate a group of calls passes before each attempt: an optional fixed pace, and a close.

A batch owns one. Its ``rate`` spaces attempts evenly (a per-second quota the user knows); its
``close()`` ends every wait behind it at once, so that a stopped batch leaves nothing pausing
before a retry or waiting for a slot. Calls made without a gate never pay for one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import TypeVar

_T = TypeVar("_T")
_CLOSING = "the gate was closed"


class TurnRefused(Exception):
    """The gate was closed while the call waited for its turn: nothing was sent."""


class Gate:
    """At most ``rate`` attempts per second (``None``: unpaced), until ``close()``.

    Waiters are served first come, first served (``asyncio.Lock`` queues them), so a retry
    cannot lose every turn to fresh requests. A waiter sleeps until the next turn and checks
    again rather than reserving one ahead.
    """

    def __init__(self, rate: float | None = None) -> None:
        """Pace at ``rate`` attempts per second.

        Args:
            rate: Attempts per second, a positive finite number, or ``None`` for no pace.

        Raises:
            ValueError: ``rate`` is not a positive finite number.
        """
        if rate is not None and not 0 < rate < math.inf:  # nan fails the comparison too
            raise ValueError("rate must be a positive finite number")
        self.rate = rate
        self.closed = False
        self._last_turn = -math.inf
        self._queue = asyncio.Lock() if rate is not None else None
        self._held: set[asyncio.Task[object]] = set()
        self._refused: set[asyncio.Task[object]] = set()  # cancelled by close(), not yet told

    def close(self) -> None:
        """End every wait behind this gate, now and later, with `TurnRefused`. Idempotent."""
        self.closed = True
        for task in self._held:
            self._refused.add(task)
            task.cancel(_CLOSING)

    async def hold(self, waiting: Awaitable[_T]) -> _T:
        """Await ``waiting`` in this task; ``close()`` ends it with `TurnRefused`.

        Raises:
            TurnRefused: The gate is closed, or was closed during the wait.
        """
        if self.closed:
            if asyncio.iscoroutine(waiting):
                waiting.close()  # never awaited: closed, not left to warn
            raise TurnRefused
        task = asyncio.current_task()
        assert task is not None
        self._held.add(task)
        try:
            return await waiting
        except asyncio.CancelledError:
            # Known by the task, not by the error's message: a timeout cancelling in the same
            # loop turn can deliver its own (message-less) CancelledError instead of ours.
            if task in self._refused and task.uncancel() == 0:
                raise TurnRefused from None
            raise
        finally:
            self._held.discard(task)
            self._refused.discard(task)

    async def wait(self, deadline_at: float | None, not_before: float | None) -> None:
        """Pause until ``not_before``, then until the pace gives a turn.

        Args:
            deadline_at: When to give up (the loop's clock), or ``None``.
            not_before: The end of a retry's pause (the loop's clock), or ``None``.

        Raises:
            TurnRefused: The gate is or was closed.
            TimeoutError: ``deadline_at`` passed first.
        """
        if self.closed:
            raise TurnRefused
        if not_before is None and self._queue is None:
            return
        await self.hold(self._wait(deadline_at, not_before))

    async def _wait(self, deadline_at: float | None, not_before: float | None) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(deadline_at):
            if not_before is not None:
                await asyncio.sleep(max(0.0, not_before - loop.time()))
            if self._queue is None or self.rate is None:
                return
            interval = 1.0 / self.rate
            async with self._queue:
                while True:
                    now = loop.time()
                    due = self._last_turn + interval
                    if due <= now:
                        # Keep the average on schedule despite timer overshoot; never bank a
                        # burst.
                        self._last_turn = due if now - due < interval else now
                        return
                    await asyncio.sleep(due - now)
