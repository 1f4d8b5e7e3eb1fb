"""The waiting room: one per client, shared by every call, sibling and batch made through it.

A request takes a slot before each attempt and gives it back with what the answer taught the
`Limit`. Waiters are served first come, first served, so a retry re-queued behind a 429 cannot
be starved by fresh requests, and the wait counts against the call's deadline: a call that
ends there never left the machine.
"""

from __future__ import annotations

import asyncio
import collections
import math

import attrs

from ._limits import Limit


@attrs.frozen
class LimiterState:
    """A snapshot of a client's flow control, for metrics and health checks.

    Attributes:
        limit: Requests the client lets be in flight now.
        in_flight: Requests in flight now.
        waiting: Calls waiting for a slot now.
        rate_limited: Answers of 429 seen since the client was built.
    """

    limit: int
    in_flight: int
    waiting: int
    rate_limited: int


class Limiter:
    """Bounds requests in flight by ``limit`` and by ``cap`` (the connection pool's size).

    The cap keeps requests from queueing inside aiohttp's pool, where a wait could not be told
    apart from a request on the wire.
    """

    def __init__(self, limit: Limit, cap: float = math.inf) -> None:
        self._limit = limit
        self.cap = cap
        self.in_flight = 0
        self.rate_limited = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def limit(self) -> int:
        """The bound now: at least 1, at most the cap."""
        return max(1, int(min(self._limit.value, self.cap)))

    @property
    def most(self) -> float:
        """The highest the bound can go: the limit's maximum, or the cap."""
        return min(self._limit.maximum, self.cap)

    @property
    def algorithm(self) -> Limit:
        return self._limit

    def state(self) -> LimiterState:
        return LimiterState(self.limit, self.in_flight, len(self._waiters), self.rate_limited)

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits; never waits."""
        if self._waiters or self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    async def acquire(self, deadline_at: float | None = None) -> None:
        """Wait for a slot, first come first served.

        Raises:
            TimeoutError: ``deadline_at`` (the loop's clock) passed while waiting; no slot is
                held then.
        """
        if self.try_acquire():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline_at):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release_unused()  # granted as the wait ended: the slot is not used
            elif waiter in self._waiters:  # a cancelled one may have been skipped by _wake
                self._waiters.remove(waiter)
            raise

    def release(
        self, *, sent_at: float, now: float, rate_limited: bool, concurrent: int | None = None
    ) -> None:
        """Give a slot back with what its answer says.

        Args:
            sent_at: When its request was sent (the loop's clock).
            now: When the answer came.
            rate_limited: Whether it was a 429.
            concurrent: The answer's ``Twilio-Concurrent-Requests``, when known.
        """
        self.in_flight -= 1
        if rate_limited:
            self.rate_limited += 1
        self._limit.on_answer(
            sent_at=sent_at,
            now=now,
            rate_limited=rate_limited,
            in_flight=self.in_flight,
            concurrent=concurrent,
        )
        self._wake()

    def release_unused(self) -> None:
        """Give back a slot that carried no request: nothing is learned."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self.in_flight < self.limit:
            waiter = waiters.popleft()
            if not waiter.done():  # cancelled with its task, not yet removed
                self.in_flight += 1
                waiter.set_result(None)
