"""The batch pacers on their own: spacing of a fixed rate, and AIMD of the adaptive one."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from verify_access_tokens import RateLimitError, ServerError
from verify_access_tokens._pacing import AdaptiveRate, FixedRate


def rate_limited(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError(
        status=429, message="Too Many Requests", method="POST", url="u", retry_after=retry_after
    )


async def grant_times(pacer: FixedRate, n: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await pacer.before_attempt()
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(n)))
    return sorted(times)


async def test_fixed_rate_spaces_grants_evenly() -> None:
    times = await grant_times(FixedRate(50), 6)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.02 * 0.9 for gap in gaps)  # never a burst
    assert times[-1] - times[0] >= 5 * 0.02 * 0.9


async def test_adaptive_grows_in_slow_start_then_additively() -> None:
    pacer = AdaptiveRate(initial=10)
    for _ in range(10):
        pacer.after_attempt(None)
    assert pacer.rate == pytest.approx(20)  # +1 per success: doubles per second of successes
    pacer.after_attempt(rate_limited())
    assert pacer.slow_start is False
    assert pacer.rate == pytest.approx(10)
    pacer.after_attempt(None)
    assert pacer.rate == pytest.approx(10.1)  # about +10 % of the rate per second of successes


async def test_adaptive_cuts_once_per_burst_and_honours_retry_after() -> None:
    pacer = AdaptiveRate(initial=40)
    loop = asyncio.get_running_loop()
    pacer.after_attempt(rate_limited(retry_after=0.2))
    for _ in range(5):  # the rest of the burst that was already in flight
        pacer.after_attempt(rate_limited(retry_after=0.2))
    assert pacer.rate == pytest.approx(20)
    assert pacer.rate_limited == 6
    started = loop.time()
    await pacer.before_attempt()
    assert loop.time() - started >= 0.2 * 0.9  # paused for the Retry-After


async def test_adaptive_never_drops_below_its_minimum() -> None:
    pacer = AdaptiveRate(initial=1, minimum=0.5)
    for _ in range(3):
        pacer._cut_until = 0.0  # each 429 a separate signal
        pacer.after_attempt(rate_limited(retry_after=0))
    assert pacer.rate == 0.5


async def test_other_errors_do_not_change_the_rate() -> None:
    pacer = AdaptiveRate(initial=10)
    pacer.after_attempt(ServerError(status=503, message="x", method="GET", url="u"))
    assert pacer.rate == 10
