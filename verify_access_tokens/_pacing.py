"""Request pacing for batches: a smooth fixed rate, or an adaptive rate that finds the limit.

Both pace *attempts* (retries included), through the transport's ``AttemptObserver`` hook, so
that a retry storm cannot exceed the rate either. Written here rather than taken from a library
because the runtime dependencies are fixed (aiohttp, attrs, cattrs) and because no library does
the adaptive part: additive increase, multiplicative decrease on 429, honouring ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from ._errors import BatchStoppedError, RateLimitError, VerifyError

ADAPTIVE_INITIAL_RATE: Final = 10.0
ADAPTIVE_MIN_RATE: Final = 0.5
ADAPTIVE_MAX_RATE: Final = 10_000.0
ADAPTIVE_DECREASE: Final = 0.5


class FixedRate:
    """At most ``rate`` attempts per second, evenly spaced (no bursts).

    A waiter sleeps until the next slot and then checks again, instead of reserving a slot far
    ahead: with many waiters, reservations made at an old rate would otherwise keep pacing
    them long after the adaptive rate changed. ``interrupt()`` (a batch's ``stop()``) ends
    every wait at once with :class:`BatchStoppedError`, so nothing waits for a long pause.
    """

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self._last_grant = -1e9
        self._paused_until = 0.0
        self._interrupted = asyncio.Event()

    def interrupt(self) -> None:
        self._interrupted.set()

    async def before_attempt(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            interval = 1.0 / self.rate
            due = self._last_grant + interval
            wait = max(due, self._paused_until) - now
            if wait <= 0:
                # Keep the average on schedule despite timer overshoot, but never bank a burst.
                self._last_grant = due if now - due < interval else now
                return
            if self._interrupted.is_set():
                raise BatchStoppedError
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._interrupted.wait()

    def after_attempt(self, error: VerifyError | None) -> None:
        """A fixed rate learns nothing from outcomes."""


class AdaptiveRate(FixedRate):
    """AIMD: grow while requests succeed, halve on 429 and pause for its ``Retry-After``.

    Growth doubles the rate about once a second until the first 429 ("slow start"), then adds
    about a tenth of the rate per second. Only one cut is made per pause, so a burst of 429s
    from requests that were already in flight counts as one signal.
    """

    def __init__(
        self,
        initial: float = ADAPTIVE_INITIAL_RATE,
        *,
        minimum: float = ADAPTIVE_MIN_RATE,
        maximum: float = ADAPTIVE_MAX_RATE,
        pause_max: float = float("inf"),
    ) -> None:
        super().__init__(initial)
        self.pause_max = pause_max  # the client's retry_after_max: one 429 cannot stall a batch
        self.minimum = minimum
        self.maximum = maximum
        self.slow_start = True
        self.rate_limited = 0
        self._cut_until = 0.0

    def after_attempt(self, error: VerifyError | None) -> None:
        now = asyncio.get_running_loop().time()
        if isinstance(error, RateLimitError):
            self.rate_limited += 1
            if now < self._cut_until:
                return
            self.slow_start = False
            self.rate = max(self.minimum, self.rate * ADAPTIVE_DECREASE)
            pause = error.retry_after if error.retry_after is not None else 1.0 / self.rate
            pause = min(max(pause, 0.0), self.pause_max)
            self._paused_until = max(self._paused_until, now + pause)
            self._cut_until = now + max(pause, 1.0)
        elif error is None:
            step = 1.0 if self.slow_start else max(0.1, 0.1 * self.rate) / self.rate
            self.rate = min(self.maximum, self.rate + step)
