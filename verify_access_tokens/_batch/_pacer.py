"""Request pacing for batches: a smooth fixed rate, or an adaptive rate that finds the limit.

Both pace *attempts* (retries included), through the transport's ``Pacer`` hook, so
that a retry storm cannot exceed the rate either. Written here rather than taken from a library
because the runtime dependencies are fixed (aiohttp, attrs, cattrs) and because no library does
the adaptive part: additive increase, multiplicative decrease on 429, honouring ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final, Literal

from .._core._errors import BatchStoppedError, RateLimitError, RequestValidationError, VerifyError
from .._core._validation import is_number

RateLimit = float | Literal["adaptive"] | None

# Unpaced until the first 429: the batch's concurrency is what bounds the start.
ADAPTIVE_INITIAL_RATE: Final = math.inf
ADAPTIVE_MIN_RATE: Final = 0.5
ADAPTIVE_MAX_RATE: Final = math.inf
# On a 429 the rate becomes this share of what succeeded over the last second (the server's
# limit, measured), rather than a share of the rate asked for, which may be far above it.
ADAPTIVE_DECREASE: Final = 0.9
# Then it grows by this share of itself per second of successes, to probe for more.
ADAPTIVE_GROWTH: Final = 0.05


class FixedPacer:
    """At most ``rate`` attempts per second, evenly spaced (no bursts).

    A waiter sleeps until the next slot and then checks again, instead of reserving a slot far
    ahead: with many waiters, reservations made at an old rate would otherwise keep pacing
    them long after the adaptive rate changed. Waiters take slots first come, first served
    (``asyncio.Lock`` queues them in order): otherwise a retry could lose every race for a slot
    to fresh requests until its deadline ran out.
    ``interrupt()`` (a batch's ``stop()``) ends every wait at once with
    `BatchStoppedError`, so nothing waits for a long pause.
    """

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self._last_grant = -1e9
        self._paused_until = 0.0
        self._queue = asyncio.Lock()
        self._interrupted = asyncio.Event()
        # Attempts answered 429: what a benchmark reports as the share of attempts wasted.
        self.rate_limited = 0

    def interrupt(self) -> None:
        self._interrupted.set()

    async def before_attempt(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._queue:
            while True:
                now = loop.time()
                interval = 1.0 / self.rate
                due = self._last_grant + interval
                wait = max(due, self._paused_until) - now
                if wait <= 0:
                    # Keep the average on schedule despite timer overshoot; never bank a burst.
                    self._last_grant = due if now - due < interval else now
                    return
                if self._interrupted.is_set():
                    raise BatchStoppedError
                await self._sleep_unless_interrupted(wait)

    async def _sleep_unless_interrupted(self, delay: float) -> None:
        """Only paced waits pay for this: an unpaced attempt returns above without waiting."""
        sleeper = asyncio.ensure_future(asyncio.sleep(delay))
        waker = asyncio.ensure_future(self._interrupted.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    def after_attempt(self, error: VerifyError | None) -> None:
        """A fixed rate learns nothing from outcomes; it only counts the 429s."""
        if isinstance(error, RateLimitError):
            self.rate_limited += 1


class AdaptivePacer(FixedPacer):
    """AIMD: grow while requests succeed, cut on 429 and pause for its ``Retry-After``.

    Unpaced until the first 429 ("slow start"; a finite ``initial`` doubles about once a second
    instead), then cut to 90 % of the successes counted over the last second, and grow by 5 %
    per second. Only one cut is made per pause, so a burst of 429s from requests that were
    already in flight counts as one signal.
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
        self._cut_until = 0.0
        # Successes in the current one-second window and the one before it.
        self._window_start = -math.inf
        self._window_count = 0
        self._previous_count = 0

    def _delivered(self, now: float) -> float:
        """Successes over the last second (the previous window weighted by its overlap)."""
        self._roll_window(now)
        overlap = max(0.0, 1.0 - (now - self._window_start))
        return self._previous_count * overlap + self._window_count

    def _roll_window(self, now: float) -> None:
        elapsed = now - self._window_start
        if elapsed >= 1.0:
            self._previous_count = self._window_count if elapsed < 2.0 else 0
            self._window_count = 0
            self._window_start = now - elapsed % 1.0 if elapsed < 2.0 else now

    def after_attempt(self, error: VerifyError | None) -> None:
        now = asyncio.get_running_loop().time()
        if isinstance(error, RateLimitError):
            self.rate_limited += 1
            if now < self._cut_until:
                return
            self.slow_start = False
            delivered = self._delivered(now)
            self.rate = max(self.minimum, min(self.rate, delivered) * ADAPTIVE_DECREASE)
            pause = error.retry_after if error.retry_after is not None else 1.0 / self.rate
            pause = min(max(pause, 0.0), self.pause_max)
            self._paused_until = max(self._paused_until, now + pause)
            self._cut_until = now + max(pause, 1.0)
        elif error is None:
            self._roll_window(now)
            self._window_count += 1
            step = (
                1.0
                if self.slow_start
                else max(ADAPTIVE_GROWTH, ADAPTIVE_GROWTH * self.rate) / self.rate
            )
            self.rate = min(self.maximum, self.rate + step)


def make_pacer(rate_limit: RateLimit, pause_max: float = float("inf")) -> FixedPacer | None:
    if rate_limit is None:
        return None
    if rate_limit == "adaptive":
        return AdaptivePacer(pause_max=pause_max)
    if not is_number(rate_limit) or not 0 < rate_limit < math.inf:  # nan fails the comparison
        raise RequestValidationError(
            "rate_limit", "must be none, a positive finite number of requests/s, or 'adaptive'"
        )
    return FixedPacer(rate_limit)
