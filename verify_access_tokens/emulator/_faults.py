"""Fault injection, apart from the fake API: what goes wrong on purpose, and when.

The application (``_app.py``) asks `FaultInjector` at four points of a request: on arrival (the
account's concurrency limit, Twilio's real one), before authentication (latency, dropped
connection, injected 503), after it (the per-second rate limit's 429) and after a create stored
its token (a lost answer). Every decision comes from one seeded RNG.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import TYPE_CHECKING

import attrs
from aiohttp import web

from ._wire import hang_up, twilio_error

if TYPE_CHECKING:
    from ._counters import Counters


@attrs.frozen(kw_only=True)
class Faults:
    """What goes wrong, on purpose. All off by default; decisions come from a seeded RNG.

    Keyword-only; a value out of range raises ``ValueError`` naming it.

    Attributes:
        max_concurrent: Requests in flight at once across every connection, service and
            client, as Twilio limits an account; one arriving while that many are in flight
            is answered 429 with Twilio code 20429 at once, and is not processed. Default
            ``None``: no limit.
        concurrency_retry_after: ``Retry-After`` seconds on those 429s (default ``None``:
            none, as Twilio documents none).
        reject_first: The first this many requests are answered 429 (code 20429) and not
            processed, then none: isolated 429s, to see a client recover (default 0).
        rate_limit: Requests per second allowed (a token bucket holding one second's worth),
            as Verify's per-service limits; beyond it, 429 with Twilio code 20429. Default
            ``None``: no limit.
        send_retry_after: Whether a ``rate_limit`` 429 carries a ``Retry-After`` (default
            ``True``).
        error_rate: Fraction of requests answered 503, nothing created (default 0.0).
        drop_rate: Fraction of connections closed without an answer, nothing created
            (default 0.0).
        lost_response_rate: Fraction of creates whose token *is* created but whose answer is
            lost (the connection is closed): the ambiguous case a client must not blindly
            retry (default 0.0).
        latency: Seconds added before each answer (default 0.0), or a ``(low, high)`` range
            drawn from uniformly by the seeded RNG for each request.
    """

    max_concurrent: int | None = None
    concurrency_retry_after: float | None = None
    reject_first: int = 0
    rate_limit: float | None = None
    send_retry_after: bool = True
    error_rate: float = 0.0
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0
    latency: float | tuple[float, float] = 0.0

    def __attrs_post_init__(self) -> None:
        # One rule first: nan passes every comparison below, and inf latency would hang.
        numbers = ("rate_limit", "concurrency_retry_after", "error_rate", "drop_rate")
        for name in (*numbers, "lost_response_rate"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
        low, high = self.latency_range
        if not (math.isfinite(low) and math.isfinite(high)) or not 0 <= low <= high:
            raise ValueError("latency must be finite seconds >= 0, a range low <= high")
        if self.max_concurrent is not None and (
            isinstance(self.max_concurrent, bool)
            or not isinstance(self.max_concurrent, int)
            or self.max_concurrent < 1
        ):
            raise ValueError("max_concurrent must be an int >= 1")
        if isinstance(self.reject_first, bool) or not (
            isinstance(self.reject_first, int) and self.reject_first >= 0
        ):
            raise ValueError("reject_first must be an int >= 0")
        if self.concurrency_retry_after is not None and self.concurrency_retry_after < 0:
            raise ValueError("concurrency_retry_after must be >= 0")
        for name in ("error_rate", "drop_rate", "lost_response_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive")

    @property
    def latency_range(self) -> tuple[float, float]:
        """``latency`` as ``(low, high)`` seconds; equal ends for a fixed latency."""
        if isinstance(self.latency, tuple):
            low, high = self.latency
            return float(low), float(high)
        return float(self.latency), float(self.latency)


class _TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self) -> float:
        """0 if a request may pass now, else seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FaultInjector:
    """Applies `Faults` to requests and counts each fault in the emulator's counters."""

    def __init__(self, faults: Faults, counters: Counters, rng: random.Random) -> None:
        self.faults = faults
        self._counters = counters
        self._rng = rng
        self._bucket: _TokenBucket | None = None
        # Requests in flight now, account-wide: what Twilio's concurrency limit counts.
        self.in_flight = 0

    def replace(self, faults: Faults) -> None:
        """New faults from now on; the rate limit starts with a full bucket."""
        self.faults = faults
        self._bucket = None

    async def before_auth(self, request: web.Request) -> web.Response | None:
        """Latency, then a dropped connection or an injected 503 (nothing is processed)."""
        faults = self.faults
        low, high = faults.latency_range
        if high:
            await asyncio.sleep(low if low == high else self._rng.uniform(low, high))
        if faults.drop_rate and self._rng.random() < faults.drop_rate:
            self._counters.dropped += 1
            hang_up(request)
        if faults.error_rate and self._rng.random() < faults.error_rate:
            self._counters.errors_injected += 1
            return twilio_error(503, 20503, "Service Unavailable (injected by the emulator)")
        return None

    def over_concurrency(self) -> web.Response | None:
        """A 429 (code 20429) when ``in_flight``, this request included, is over the limit.

        Or while the first ``reject_first`` requests are answered.
        """
        limit = self.faults.max_concurrent
        rejecting = self._counters.requests <= self.faults.reject_first
        if not rejecting and (limit is None or self.in_flight <= limit):
            return None
        self._counters.rate_limited += 1
        self._counters.concurrency_limited += 1
        retry_after = self.faults.concurrency_retry_after
        headers = None if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return twilio_error(429, 20429, "Too many concurrent requests", headers)

    def rate_limited(self) -> web.Response | None:
        """A 429 (with ``Retry-After`` unless turned off) when over the rate limit."""
        faults = self.faults
        if faults.rate_limit is None:
            return None
        if self._bucket is None or self._bucket.rate != faults.rate_limit:
            self._bucket = _TokenBucket(faults.rate_limit)
        wait = self._bucket.take()
        if not wait:
            return None
        self._counters.rate_limited += 1
        headers = {"Retry-After": str(math.ceil(wait))} if faults.send_retry_after else None
        return twilio_error(429, 20429, "Too Many Requests", headers)

    def maybe_lose_answer(self, request: web.Request) -> None:
        """After a create stored its token: hang up instead of answering, now and then."""
        lost = self.faults.lost_response_rate
        if lost and self._rng.random() < lost:
            self._counters.responses_lost += 1
            hang_up(request)
