"""The retry policy: what may be retried for which method, how long to wait, and how to give up.

``fetch`` is idempotent and retries every transient failure. ``create`` is not (Verify has no
idempotency key; a second POST can mint a second token), so by default it retries only what
provably created nothing: a 429, or a connection that failed before the request was sent.
Everything else that leaves the outcome open is surfaced as `OutcomeUnknownError`,
unless the caller opted in to ``retry_ambiguous_creates``.

A 429 (Twilio's code 20429: "not processed") counts within ``max_retries`` for a single call.
A batch gives its items ``rate_limit_patience`` instead: their 429s are re-sent apart from that
budget after a short pause, behind the other waiters for a slot (a place back in the queue, not
a failure), until the item's patience or the client's progress runs out.

`RetryPolicy` is the one place that decides; the transport only asks it.
"""

from __future__ import annotations

import random

import attrs

from .._core._constants import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    REQUEUE_PAUSE_FIRST,
    REQUEUE_PAUSE_MAX,
    RETRYABLE_STATUSES,
)
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    OutcomeUnknownError,
    RateLimitError,
    ResponseValidationError,
    VerifyError,
)


@attrs.frozen(slots=True)
class RetryPolicy:
    """Per-call retry settings and the decisions made from them."""

    max_retries: int
    retry_after_max: float
    retry_ambiguous_creates: bool = False
    backoff_base: float = BACKOFF_BASE
    backoff_max: float = BACKOFF_MAX
    # 429s re-sent apart from max_retries, each after a pause of REQUEUE_PAUSE_FIRST doubling
    # up to REQUEUE_PAUSE_MAX; 0: a 429 counts within max_retries.
    rate_limit_patience: int = 0

    @staticmethod
    def is_ambiguous(error: VerifyError) -> bool:
        """True when a non-idempotent request may have been processed despite failing."""
        if isinstance(error, APIStatusError):
            return error.status == 408 or error.status >= 500
        if isinstance(error, APIConnectionError):
            return error.request_sent
        # A 2xx said "done" but its body is unusable (cut off, not a token): it may exist.
        return isinstance(error, ResponseValidationError)

    def is_retryable(self, error: VerifyError, *, idempotent: bool) -> bool:
        """Whether ``error`` may be retried at all (the attempt budget is checked elsewhere)."""
        if isinstance(error, APIStatusError):
            if error.status not in RETRYABLE_STATUSES:
                return False
            if error.status == 429 or idempotent:
                return True
            return self.retry_ambiguous_creates
        if isinstance(error, APIConnectionError):
            return idempotent or not error.request_sent or self.retry_ambiguous_creates
        return False

    def backoff_delay(
        self,
        retry_number: int,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
        base: float | None = None,
        most: float | None = None,
    ) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry).

        The server's ``Retry-After`` wins (capped at ``retry_after_max``); otherwise "equal
        jitter" exponential backoff, uniformly in ``[cap/2, cap]`` with
        ``cap = base * 2**(n-1)`` bounded by ``most``, so that many clients hit by the same
        429 do not return in lockstep. ``base`` and ``most`` default to the policy's
        ``backoff_base`` and ``backoff_max``.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        base = self.backoff_base if base is None else base
        cap = min(base * 2 ** (retry_number - 1), self.backoff_max if most is None else most)
        return (rng or random).uniform(cap / 2, cap)

    def retry_delay(
        self,
        error: VerifyError,
        *,
        attempts: int,
        rate_limited: int,
        idempotent: bool,
        stalled: bool = False,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when this error is final.

        Args:
            error: The last attempt's error.
            attempts: Attempts made so far.
            rate_limited: How many of them were answered 429.
            idempotent: Whether the request may be sent again whatever happened to it.
            stalled: Whether the client has seen only 429s for long (its limiter says).
        """
        if self.rate_limit_patience and isinstance(error, RateLimitError):
            if rate_limited > self.rate_limit_patience or stalled:
                return None
            pause = self.backoff_delay(
                rate_limited, base=REQUEUE_PAUSE_FIRST, most=REQUEUE_PAUSE_MAX
            )
            if error.retry_after is None:
                return pause
            # A per-second limit's pause, honoured up to the same bound: the jitter stays the
            # least, so items answered together do not come back together.
            return max(pause, min(error.retry_after, self.retry_after_max, REQUEUE_PAUSE_MAX))
        spent = attempts - rate_limited if self.rate_limit_patience else attempts
        if spent > self.max_retries or not self.is_retryable(error, idempotent=idempotent):
            return None
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        return self.backoff_delay(spent, retry_after=retry_after)

    def give_up(
        self, error: VerifyError, idempotent: bool, *, ambiguous_before: bool = False
    ) -> VerifyError:
        """The error to raise when retrying is over: an ambiguous create is OutcomeUnknown.

        So is any last error of a create re-sent after an attempt whose outcome was unknown
        (``ambiguous_before``): that attempt may have made the token.
        """
        if idempotent or not (ambiguous_before or self.is_ambiguous(error)):
            return error
        return OutcomeUnknownError(error)
