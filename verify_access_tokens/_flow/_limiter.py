"""The waiting room: one per client, shared by every call, sibling and batch made through it.

A request takes a `Slot` before each attempt and releases it once, with what the answer
taught the `Limit` (answered, rate-limited or unused), as a Netflix concurrency-limits
``Limiter.Listener``. Waiters are served first come, first served, so a retry re-queued behind
a 429 cannot be starved by fresh requests, and the wait counts against the call's deadline: a
call that ends there never left the machine.
"""

from __future__ import annotations

import asyncio
import collections
import math
from typing import Final

import attrs

from ._gate import Gate, TurnRefused
from ._limits import Limit

# 429s in a row across the client, with no other answer in between, past which a batch's 429
# is final once the client has also gone this many seconds without another answer: a count
# alone would end items in one burst of contention (processes starting together send more than
# 100 at once, all answered 429 in one round trip); a server that only says 429 is not busy.
NO_PROGRESS: Final = 100
NO_PROGRESS_SECONDS: Final = 10.0


@attrs.frozen
class LimiterState:
    """A snapshot of a client's flow control, for metrics and health checks.

    Attributes:
        limit: Requests the client lets be in flight now; ``None`` when nothing bounds them
            (``max_in_flight=None`` and an unbounded connection pool).
        in_flight: Requests in flight now.
        waiting: Calls waiting for a slot now.
        rate_limited: Answers of 429 seen since the client was built.
    """

    limit: int | None
    in_flight: int
    waiting: int
    rate_limited: int


class Slot:
    """One attempt's permission to be in flight; released exactly once.

    Later releases do nothing, so a caller may release in a ``finally`` what the send path
    may already have released.
    """

    __slots__ = ("_limiter",)

    def __init__(self, limiter: Limiter) -> None:
        self._limiter: Limiter | None = limiter

    def answered(
        self, *, sent_at: float, now: float, rate_limited: bool, concurrent: int | None = None
    ) -> None:
        """Release with what the answer says.

        Args:
            sent_at: When its request was sent (the loop's clock).
            now: When the answer came (or the attempt failed).
            rate_limited: Whether it was a 429.
            concurrent: The answer's ``Twilio-Concurrent-Requests``, when known.
        """
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._answered(sent_at, now, rate_limited, concurrent)

    def unused(self) -> None:
        """Release a slot that carried no request: nothing is learned."""
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._give_back()


class Limiter:
    """Bounds requests in flight by ``limit``'s window and by ``pool_size``.

    The pool's size keeps requests from queueing inside aiohttp's pool, where a wait could not
    be told apart from a request on the wire.
    """

    def __init__(self, limit: Limit, pool_size: float = math.inf) -> None:
        self._limit = limit
        self.pool_size = pool_size
        self.in_flight = 0
        self.rate_limited = 0
        self._value = limit.value
        self._bound = _bound(limit.value, pool_size)  # compared on every acquire: kept, not derived
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._rate_limited_in_a_row = 0
        self._progress_at: float | None = None  # the last other answer, or the first 429

    @property
    def limit(self) -> int | None:
        """The bound now (at least 1, at most the pool's size); ``None`` when nothing bounds it."""
        return int(self._bound) if self._bound < math.inf else None

    @property
    def maximum(self) -> float:
        """The highest the bound can go: the limit's maximum, or the pool's size."""
        return min(self._limit.maximum, self.pool_size)

    def state(self) -> LimiterState:
        return LimiterState(self.limit, self.in_flight, len(self._waiters), self.rate_limited)

    def stalled(self, now: float) -> bool:
        """Whether only 429s came for long enough that the server is not merely busy."""
        if self._progress_at is None:
            self._progress_at = now
        return (
            self._rate_limited_in_a_row > NO_PROGRESS
            and now - self._progress_at >= NO_PROGRESS_SECONDS
        )

    def try_acquire(self, gate: Gate | None = None) -> Slot | None:
        """A slot if one is free, nobody waits and the ``gate`` has no wait; never waits."""
        if gate is not None and (gate.closed or gate.rate is not None):
            return None
        if self._waiters or self.in_flight >= self._bound:
            return None
        self.in_flight += 1
        return Slot(self)

    async def acquire(
        self,
        deadline_at: float | None = None,
        *,
        gate: Gate | None = None,
        not_before: float | None = None,
    ) -> Slot:
        """A slot for one attempt: after ``not_before`` and the ``gate``'s turn, FCFS.

        Args:
            deadline_at: When to give up (the loop's clock), or ``None``.
            gate: The gate this call passes first (a batch's pace and stop), or ``None``.
            not_before: The end of a retry's pause (the loop's clock), or ``None``.

        Raises:
            TimeoutError: ``deadline_at`` passed while waiting; no slot is held then.
            TurnRefused: The ``gate`` was closed while waiting.
        """
        if gate is not None:
            await gate.wait(deadline_at, not_before)
        elif not_before is not None:
            await asyncio.sleep(max(0.0, not_before - asyncio.get_running_loop().time()))
        if not self._waiters and self.in_flight < self._bound:
            self.in_flight += 1
            return Slot(self)
        waiting = self._wait(deadline_at)
        await (waiting if gate is None else gate.hold(waiting))
        return Slot(self)

    async def _wait(self, deadline_at: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline_at):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_back()  # granted as the wait ended: the slot is not used
            elif waiter in self._waiters:  # a cancelled one may have been skipped by _wake
                self._waiters.remove(waiter)
            raise

    def _answered(
        self, sent_at: float, now: float, rate_limited: bool, concurrent: int | None
    ) -> None:
        self.in_flight -= 1
        if rate_limited:
            self.rate_limited += 1
            self._rate_limited_in_a_row += 1
        else:
            self._rate_limited_in_a_row = 0
            self._progress_at = now
        limit = self._limit
        limit.on_answer(
            sent_at=sent_at,
            now=now,
            rate_limited=rate_limited,
            in_flight=self.in_flight,
            concurrent=concurrent,
        )
        if limit.value != self._value:
            self._value = limit.value
            self._bound = _bound(limit.value, self.pool_size)
        if self._waiters:
            self._wake()

    def _give_back(self) -> None:
        self.in_flight -= 1
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self.in_flight < self._bound:
            waiter = waiters.popleft()
            if not waiter.done():  # cancelled with its task, not yet removed
                self.in_flight += 1
                waiter.set_result(None)


def _bound(value: float, pool_size: float) -> float:
    """A whole number of requests, at least 1, at most ``pool_size``; ``inf`` if unbounded."""
    bound = min(value, pool_size)
    return bound if bound == math.inf else float(max(1, int(bound)))


__all__ = ["Limiter", "LimiterState", "Slot", "TurnRefused"]
