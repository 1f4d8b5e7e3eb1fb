"""Limit algorithms: how many requests may be in flight, learned from each answer.

A `Limit` only counts; waiting is the `Limiter`'s job. `AdaptiveLimit` is a window controller
in the family of TCP's: it grows while answers come back and cuts multiplicatively on a 429
(code 20429: "not processed, retry after backing off"), at most once per round trip, so that
many clients sharing an account converge on fair shares without talking to each other.
"""

from __future__ import annotations

import math
from typing import Final, Protocol

# The adaptive window starts here and doubles every round trip until the first 429 ("slow
# start"): 20 is Twilio's smallest useful share of a default account limit (100) among a few
# processes, and reaches 100 within three round trips.
ADAPTIVE_INITIAL: Final = 20
# On a 429 the window becomes this share of itself (CUBIC's 0.7): deep enough that the
# account recovers at once, shallow enough to keep most of the throughput.
ADAPTIVE_DECREASE: Final = 0.7


class Limit(Protocol):
    """How many requests may be in flight now, and what it learns from each answer."""

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
    """A limit that does not move: ``max_in_flight=N``."""

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
        """A fixed limit learns nothing."""


class AdaptiveLimit:
    """Binary-increase, multiplicative-decrease window on 429s (BIC-style, per answer).

    - Slow start: +1 per answer (the window doubles each round trip) until the first 429.
    - On a 429: ``window *= 0.7``, once per round trip: a 429 for a request sent before the
      last cut is the same congestion, already answered. The window before the cut is
      remembered as ``ceiling``.
    - Without that header: below the ceiling the window climbs half the remaining distance
      each round trip, so it returns near the old level in a few round trips (fast recovery
      after an isolated 429); at or above it, it probes: +1, +2, +4 ... per round trip, so a
      freed account is found again within a few round trips, and a busy one costs one 429
      per probe.
    - Twilio's ``Twilio-Concurrent-Requests`` refines it: a 429's count shows the account's
      limit; then the window grows by one per round trip while the account has room (AIMD,
      so that clients sharing it do not all jump into the same room), not at all on an
      answer showing the account at its limit (growing would only earn the next 429), and
      never above that limit. A 429 while this client's own requests fill the account sets
      the window to the account's limit instead of cutting it: nobody else needs room; and
      alone on an account with room (the others have finished) it takes half the room per
      round trip. An answer showing the account holding more than at the last 429 means that
      429 was not the account's limit: slow start resumes.
    - It grows only while its window is in use: a backend with little traffic does not inflate
      a window it never tested.
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
        self._cut_at = -math.inf
        # This round trip's highest Twilio-Concurrent-Requests, and this client's highest
        # in flight; the round trip ends with the answer to a request sent after it began.
        self._epoch_at = -math.inf
        self._peak = 0
        self._ours = 0
        self._bonus = 0.0  # growth owed once, from the last round trip's room

    def _observe(self, sent_at: float, now: float, in_flight: int, concurrent: int) -> None:
        """Every answer with a count, once the account's limit is known: the round trip's load.

        When the clients sharing an account have finished, the one left takes half the room
        per round trip instead of one request: nobody else will jump into it. One answer's
        count is a poor measure of the account's load (requests arrive in waves, and the first
        of a wave sees the last one's gone), so the highest count of a round trip is taken.
        """
        if self._epoch_at < self._cut_at:  # a round trip starts at a cut: none before it
            self._epoch_at, self._peak, self._ours = now, 0, 0
        self._peak = max(self._peak, concurrent)
        self._ours = max(self._ours, in_flight + 1)
        if sent_at < self._epoch_at:
            return  # the round trip is not over
        assert self.account_limit is not None
        room = self.account_limit - self._peak
        alone = self._ours >= self._peak
        self._bonus = room / 2 if alone and room > 1 else 0.0
        self._epoch_at, self._peak, self._ours = now, 0, 0

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
        window = self.value
        if rate_limited:
            if concurrent is not None:
                # The account was full at this count, this request included.
                self.account_limit = concurrent - 1
            if sent_at < self._cut_at:
                return
            self.slow_start = False
            self._cut_at = now
            # A cut below the last ceiling means others want more: give them room sooner
            # (CUBIC's "fast convergence").
            fast_convergence = window < self.ceiling
            self.ceiling = window * (1 + ADAPTIVE_DECREASE) / 2 if fast_convergence else window
            cut = window * ADAPTIVE_DECREASE
            if self.account_limit is not None and in_flight >= self.account_limit:
                # This client's own requests fill the account: nobody else needs room, so
                # the window drops to the account's limit, not to a share of it.
                cut = max(cut, min(window, float(self.account_limit)))
            self.value = max(self.minimum, cut)
            return
        if (
            concurrent is not None
            and self.account_limit is not None
            and concurrent > self.account_limit
        ):
            # The account now holds more than it did when it said 429: that 429 was not its
            # concurrency limit (an isolated one, or the limit was raised). Double again.
            self.account_limit = None
            self.slow_start = True
        if concurrent is not None and self.account_limit is not None:
            self._observe(sent_at, now, in_flight, concurrent)
        if in_flight + 1 < window - 1:
            return  # the window is not in use: nothing was tested
        if (
            concurrent is not None
            and self.account_limit is not None
            and concurrent >= self.account_limit
        ):
            return  # the account is full now: growing would only earn a 429
        if self.slow_start:
            step = 1.0
        elif self.account_limit is not None:
            # The account's limit is known and it has room: +1 per round trip (AIMD), so that
            # the clients sharing it do not all jump into the same room at once.
            step = 1.0 / window + self._bonus
            self._bonus = 0.0
        elif window < self.ceiling:
            step = max(1.0, (self.ceiling - window) / 2) / window
        else:
            step = (window - self.ceiling + 1.0) / window
        grown = window + step
        if self.account_limit is not None:
            # More than the account holds could only be 429s.
            grown = min(grown, max(window, float(self.account_limit)))
        self.value = min(self.maximum, grown)
