"""Fault injection, apart from the fake API: what goes wrong on purpose, and when.

The application (``_app.py``) asks `FaultInjector` at three points of a request: before
authentication (latency, dropped connection, injected 503), after it (the rate limit's 429) and
after a create stored its token (a lost answer). Every decision comes from one seeded RNG.
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
    from ._app import Counters


@attrs.frozen(kw_only=True)
class Faults:
    """What goes wrong, on purpose. All off by default; decisions come from a seeded RNG.

    Keyword-only; a value out of range raises ``ValueError`` naming it.

    Attributes:
        rate_limit: Requests per second allowed (a token bucket holding one second's worth);
            beyond it, 429 with Twilio code 20429. Default ``None``: no limit.
        send_retry_after: Whether a 429 carries a ``Retry-After`` (default ``True``).
        error_rate: Fraction of requests answered 503, nothing created (default 0.0).
        drop_rate: Fraction of connections closed without an answer, nothing created
            (default 0.0).
        lost_response_rate: Fraction of creates whose token *is* created but whose answer is
            lost (the connection is closed): the ambiguous case a client must not blindly
            retry (default 0.0).
        latency: Seconds added before each answer (default 0.0).
    """

    rate_limit: float | None = None
    send_retry_after: bool = True
    error_rate: float = 0.0
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0
    latency: float = 0.0

    def __attrs_post_init__(self) -> None:
        # One rule first: nan passes every comparison below, and inf latency would hang.
        for name in ("rate_limit", "error_rate", "drop_rate", "lost_response_rate", "latency"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
        for name in ("error_rate", "drop_rate", "lost_response_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")


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

    def replace(self, faults: Faults) -> None:
        """New faults from now on; the rate limit starts with a full bucket."""
        self.faults = faults
        self._bucket = None

    async def before_auth(self, request: web.Request) -> web.Response | None:
        """Latency, then a dropped connection or an injected 503 (nothing is processed)."""
        faults = self.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.drop_rate and self._rng.random() < faults.drop_rate:
            self._counters.dropped += 1
            hang_up(request)
        if faults.error_rate and self._rng.random() < faults.error_rate:
            self._counters.errors_injected += 1
            return twilio_error(503, 20503, "Service Unavailable (injected by the emulator)")
        return None

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
