"""Limits: how many requests a client may have in flight (its window), learned from answers.

A `Limit` only decides; waiting is the `Limiter`'s job. `AdaptiveLimit` is the rule (its
docstring is the one description of the algorithm), `_RoundTrips` the bookkeeping it decides
on, as Netflix's ``AIMDLimit`` decides on what ``WindowedLimit`` samples.
"""

from __future__ import annotations

import math
from typing import Final, Protocol

# Slow start's first window: a few processes' shares of Twilio's default account limit (100),
# which it reaches within three round trips.
ADAPTIVE_INITIAL: Final = 20
# A 429 leaves this share of the window (CUBIC's 0.7): deep enough that the account recovers
# at once, shallow enough to keep most of the throughput.
ADAPTIVE_DECREASE: Final = 0.7


class Limit(Protocol):
    """How many requests may be in flight now (its window), and what it learns from answers."""

    @property
    def value(self) -> float: ...

    @property
    def maximum(self) -> float: ...

    def on_answer(
        self,
        *,
        sent_at: float,
        now: float,
        rate_limited: bool,
        in_flight: int,
        concurrent: int | None = None,
    ) -> None: ...


class FixedLimit:
    """A window that does not move: ``max_in_flight=N``."""

    def __init__(self, value: float) -> None:
        self.value = self.maximum = value

    def on_answer(
        self,
        *,
        sent_at: float,
        now: float,
        rate_limited: bool,
        in_flight: int,
        concurrent: int | None = None,
    ) -> None:
        """A fixed window learns nothing."""


class _RoundTrips:
    """Which round trip an answer belongs to, and the account's load over the last one.

    A round trip starts at a cut, or where the last one ended, and ends with the answer to a
    request sent after it began. One answer's count is a poor measure of the account's load
    (requests arrive in waves, and the first of a wave sees the last one's gone): the highest
    of a round trip is taken.
    """

    def __init__(self) -> None:
        self.cut_at = -math.inf
        self._started_at = -math.inf
        self._peak = 0  # the highest Twilio-Concurrent-Requests of this round trip
        self._ours = 0  # this client's highest in flight in it

    def sent_before_the_cut(self, sent_at: float) -> bool:
        """Whether a request went out before the last cut (its 429 is that congestion's)."""
        return sent_at < self.cut_at

    def end_at_cut(self, now: float) -> None:
        self.cut_at = now

    def observe(
        self, sent_at: float, now: float, in_flight: int, concurrent: int
    ) -> tuple[int, int] | None:
        """Count one answer; at the end of a round trip, its peaks: (the account's, ours)."""
        if self._started_at < self.cut_at:  # none before the cut counts
            self._started_at, self._peak, self._ours = now, 0, 0
        self._peak = max(self._peak, concurrent)
        self._ours = max(self._ours, in_flight + 1)
        if sent_at < self._started_at:
            return None
        peaks = self._peak, self._ours
        self._started_at, self._peak, self._ours = now, 0, 0
        return peaks


class AdaptiveLimit:
    """The window on 429s: binary increase, multiplicative decrease (BIC-style, per answer).

    Words: the *window* is how many requests this client may have in flight now; the *account
    limit* is Twilio's, for all the account's clients together; the *ceiling* is the window
    before the last cut; a *round trip* is `_RoundTrips`'.

    - Slow start: +1 per answer (the window doubles each round trip) until the first 429.
    - A 429 cuts the window to 0.7 of itself, once per round trip: a 429 for a request sent
      before the last cut is the same congestion. A cut below the ceiling lowers the ceiling
      further (CUBIC's fast convergence): others want room.
    - Growth without Twilio's count: below the ceiling, half the remaining distance per round
      trip (back near the old level in a few); at or above it, probing +1, +2, +4 ... per
      round trip (a freed account is found fast; a busy one costs one 429 per probe).
    - A 429 carrying ``Twilio-Concurrent-Requests`` shows the account limit (the count minus
      this request). Then the window grows by one per round trip while the account has room
      (AIMD: clients sharing it do not all jump into the same room), not at all on an answer
      showing it full, and never above it; alone on an account with room, by half the room per
      round trip. A 429 while this client's own requests fill the account sets the window to
      the account limit instead of cutting it. An answer showing more in flight than the
      account limit means that 429 was not the limit: slow start resumes.
    - Only a window in use grows: a backend with little traffic does not inflate a window it
      never tested.
    """

    def __init__(
        self, initial: float = ADAPTIVE_INITIAL, *, minimum: float = 1.0, maximum: float = math.inf
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.value = min(max(float(initial), minimum), maximum)
        self.slow_start = True
        self.ceiling = 0.0  # the window at the last cut (none yet)
        # The account's limit as the last 429's Twilio-Concurrent-Requests showed it.
        self.account_limit: int | None = None
        self._round_trips = _RoundTrips()
        self._bonus = 0.0  # growth owed once, from the last round trip's room

    def on_answer(
        self,
        *,
        sent_at: float,
        now: float,
        rate_limited: bool,
        in_flight: int,
        concurrent: int | None = None,
    ) -> None:
        """Learn from one answer.

        Args:
            sent_at: When the answered request was sent (the loop's clock).
            now: When its answer came.
            rate_limited: Whether it was a 429.
            in_flight: Requests still in flight, this one not counted.
            concurrent: The account's requests in flight as Twilio counted them
                (``Twilio-Concurrent-Requests``), when the answer said.
        """
        if rate_limited:
            self._cut(sent_at, now, in_flight, concurrent)
            return
        if concurrent is not None and self.account_limit is not None:
            if concurrent > self.account_limit:  # that 429 was not the account's limit
                self.account_limit = None
                self.slow_start = True
            else:
                self._measure_room(sent_at, now, in_flight, concurrent)
                if concurrent >= self.account_limit:
                    return  # the account is full now: growing would only earn a 429
        if in_flight + 1 >= self.value - 1:  # only a window in use was tested
            self.value = min(self.maximum, self._grown(self.value))

    def _cut(self, sent_at: float, now: float, in_flight: int, concurrent: int | None) -> None:
        if concurrent is not None:
            self.account_limit = concurrent - 1  # full at this count, this request included
        if self._round_trips.sent_before_the_cut(sent_at):
            return
        window = self.value
        self.slow_start = False
        self._round_trips.end_at_cut(now)
        fast_convergence = window < self.ceiling
        self.ceiling = window * (1 + ADAPTIVE_DECREASE) / 2 if fast_convergence else window
        cut = window * ADAPTIVE_DECREASE
        if self.account_limit is not None and in_flight >= self.account_limit:
            cut = max(cut, min(window, float(self.account_limit)))  # nobody else needs room
        self.value = max(self.minimum, cut)

    def _measure_room(self, sent_at: float, now: float, in_flight: int, concurrent: int) -> None:
        peaks = self._round_trips.observe(sent_at, now, in_flight, concurrent)
        if peaks is None:
            return
        assert self.account_limit is not None
        account_peak, our_peak = peaks
        room = self.account_limit - account_peak
        alone = our_peak >= account_peak
        self._bonus = room / 2 if alone and room > 1 else 0.0

    def _grown(self, window: float) -> float:
        if self.slow_start:
            step = 1.0
        elif self.account_limit is not None:
            step = 1.0 / window + self._bonus
            self._bonus = 0.0
        elif window < self.ceiling:
            step = max(1.0, (self.ceiling - window) / 2) / window
        else:
            step = (window - self.ceiling + 1.0) / window
        if self.account_limit is None:
            return window + step
        return min(window + step, max(window, float(self.account_limit)))
