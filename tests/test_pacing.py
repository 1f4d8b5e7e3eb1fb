"""The batch pacers on their own: spacing of a fixed rate, and AIMD of the adaptive one."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from verify_access_tokens import RateLimitError, ServerError
from verify_access_tokens._batch._pacer import AdaptivePacer, FixedPacer


def rate_limited(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError(
        status=429, message="Too Many Requests", method="POST", url="u", retry_after=retry_after
    )


async def grant_times(pacer: FixedPacer, n: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await pacer.before_attempt()
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(n)))
    return sorted(times)


class FakeClock:
    """The running loop's clock, moved by hand: the pacer's arithmetic without waiting.

    ``asyncio.sleep(d)`` yields once, then moves the clock to d after the call (as if timers
    fired exactly on time), so spacing is exact and no test depends on the machine's load.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        loop = asyncio.get_running_loop()
        self.now = loop.time()  # from the real reading: going back to it never waits
        monkeypatch.setattr(loop, "time", lambda: self.now)
        real_sleep = asyncio.sleep

        async def sleep(delay: float) -> None:
            target = self.now + delay
            await real_sleep(0)
            self.now = max(self.now, target)

        monkeypatch.setattr(asyncio, "sleep", sleep)


async def test_fixed_rate_spaces_grants_evenly(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeClock(monkeypatch)
    times = await grant_times(FixedPacer(50), 6)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.02] * 5)  # never a burst, never a gap


async def test_adaptive_starts_unpaced_so_concurrency_bounds_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeClock(monkeypatch)  # time stands still: any wait would be a sleep

    async def no_sleep(delay: float) -> None:
        raise AssertionError(f"paced before the first 429 (slept {delay})")

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    pacer = AdaptivePacer()
    for _ in range(1000):
        await pacer.before_attempt()
        pacer.after_attempt(None)
    assert pacer.rate == math.inf
    assert pacer.slow_start is True


async def test_first_429_cuts_to_90_percent_of_the_successes_of_the_last_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock(monkeypatch)
    pacer = AdaptivePacer()
    for _ in range(200):  # a burst the server let through in 0.2 s
        clock.now += 0.001
        pacer.after_attempt(None)
    pacer.after_attempt(rate_limited(retry_after=1))
    assert pacer.slow_start is False
    assert pacer.rate == pytest.approx(180)  # the limit measured, not a share of infinity


async def test_cut_counts_only_the_last_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(monkeypatch)
    pacer = AdaptivePacer()
    for _ in range(500):  # long ago
        pacer.after_attempt(None)
    clock.now += 10.0
    for _ in range(100):  # second [t, t+1)
        pacer.after_attempt(None)
    clock.now += 2.5
    for _ in range(50):  # in a window whose previous one saw nothing
        pacer.after_attempt(None)
    pacer.after_attempt(rate_limited(retry_after=0))
    assert pacer.rate == pytest.approx(0.9 * 50)
    clock.now += 2.0  # past the cut's pause: a second, separate signal
    for _ in range(40):
        pacer.after_attempt(None)
    clock.now += 1.25  # that window overlaps the last second by three quarters
    pacer.after_attempt(rate_limited(retry_after=0))
    assert pacer.rate == pytest.approx(0.9 * (40 * 0.75))


async def test_cut_never_raises_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeClock(monkeypatch)
    pacer = AdaptivePacer(initial=10)
    pacer.slow_start = False
    pacer.rate = 5.0
    for _ in range(100):  # more successes than the rate (say, another pacer's burst)
        pacer.after_attempt(None)
    pacer.after_attempt(rate_limited(retry_after=0))
    assert pacer.rate == pytest.approx(0.9 * min(5.0 + 100 * 0.05, 100))


async def test_adaptive_grows_in_slow_start_then_additively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeClock(monkeypatch)
    pacer = AdaptivePacer(initial=10)
    for _ in range(10):
        pacer.after_attempt(None)
    assert pacer.rate == pytest.approx(20)  # +1 per success: doubles per second of successes
    pacer.after_attempt(rate_limited())
    assert pacer.slow_start is False
    assert pacer.rate == pytest.approx(9)  # 90 % of the 10 successes of the last second
    for _ in range(9):
        pacer.after_attempt(None)
    assert pacer.rate == pytest.approx(9.45)  # +5 % of the rate per second of successes


async def test_adaptive_cuts_once_per_burst_and_honours_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeClock(monkeypatch)
    pacer = AdaptivePacer(initial=40)
    loop = asyncio.get_running_loop()
    pacer.after_attempt(rate_limited(retry_after=0.2))
    for _ in range(5):  # the rest of the burst that was already in flight
        pacer.after_attempt(rate_limited(retry_after=0.2))
    assert pacer.rate == pytest.approx(0.5)  # nothing succeeded yet: the minimum
    assert pacer.rate_limited == 6
    started = loop.time()
    await pacer.before_attempt()
    assert loop.time() - started == pytest.approx(0.2)  # paused for the Retry-After


async def test_adaptive_never_drops_below_its_minimum() -> None:
    pacer = AdaptivePacer(initial=1, minimum=0.5)
    for _ in range(3):
        pacer._cut_until = 0.0  # each 429 a separate signal
        pacer.after_attempt(rate_limited(retry_after=0))
    assert pacer.rate == 0.5


async def test_other_errors_do_not_change_the_rate() -> None:
    pacer = AdaptivePacer(initial=10)
    pacer.after_attempt(ServerError(status=503, message="x", method="GET", url="u"))
    assert pacer.rate == 10


async def test_waiters_take_slots_first_come_first_served() -> None:
    """A retry queued behind fresh requests is not overtaken by later arrivals (nor starved)."""
    pacer = FixedPacer(200)
    granted: list[int] = []

    async def one(i: int) -> None:
        await pacer.before_attempt()
        granted.append(i)

    tasks = []
    for i in range(30):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0)  # each arrives after the previous one started waiting
    await asyncio.gather(*tasks)
    assert granted == list(range(30))


async def test_both_pacers_count_the_429s_they_see() -> None:
    """``rate_limited`` is what the batch benchmark reports; a fixed pacer only counts."""
    fixed = FixedPacer(10)
    fixed.after_attempt(rate_limited())
    fixed.after_attempt(None)
    fixed.after_attempt(ServerError(status=503, message="x", method="GET", url="u"))
    assert (fixed.rate_limited, fixed.rate) == (1, 10)
