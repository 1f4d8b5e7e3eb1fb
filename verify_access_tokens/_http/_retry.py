"""The retry policy: what may be retried for which method, and how long to wait.

``fetch`` is idempotent and retries every transient failure. ``create`` is not (Verify has no
idempotency key; a second POST can mint a second token), so by default it retries only what
provably created nothing: a 429, or a connection that failed before the request was sent.
Everything else that leaves the outcome open is surfaced as :class:`OutcomeUnknownError`,
unless the caller opted in to ``retry_ambiguous_creates``.
"""

from __future__ import annotations

import datetime as _dt
import random
from email.utils import parsedate_to_datetime
from typing import Final

import attrs

from .._core._errors import APIConnectionError, APIStatusError, ResponseValidationError, VerifyError

BACKOFF_BASE: Final = 0.5
BACKOFF_MAX: Final = 8.0
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})


@attrs.frozen(slots=True)
class RetryPolicy:
    max_retries: int
    retry_after_max: float
    retry_ambiguous_creates: bool = False
    backoff_base: float = BACKOFF_BASE
    backoff_max: float = BACKOFF_MAX


def is_ambiguous(error: VerifyError) -> bool:
    """True when a non-idempotent request may have been processed despite failing."""
    if isinstance(error, APIStatusError):
        return error.status == 408 or error.status >= 500
    if isinstance(error, APIConnectionError):
        return error.request_sent
    # A 2xx said "done" but its body is unusable (cut off, not a token): the token may exist.
    return isinstance(error, ResponseValidationError)


def is_retryable(error: VerifyError, *, idempotent: bool, policy: RetryPolicy) -> bool:
    """Whether ``error`` may be retried at all (the attempt budget is checked elsewhere)."""
    if isinstance(error, APIStatusError):
        if error.status not in RETRYABLE_STATUSES:
            return False
        if error.status == 429 or idempotent:
            return True
        return policy.retry_ambiguous_creates
    if isinstance(error, APIConnectionError):
        return idempotent or not error.request_sent or policy.retry_ambiguous_creates
    return False


def backoff_delay(
    retry_number: int,
    *,
    policy: RetryPolicy,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry ``retry_number`` (1 for the first retry).

    The server's ``Retry-After`` wins (capped at ``retry_after_max``); otherwise "full jitter"
    exponential backoff, uniformly in ``[cap/2, cap]`` with ``cap = base * 2**(n-1)`` bounded by
    ``backoff_max``, so that many clients hit by the same 429 do not return in lockstep.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.retry_after_max)
    cap = min(policy.backoff_base * 2 ** (retry_number - 1), policy.backoff_max)
    return (rng or random).uniform(cap / 2, cap)


def parse_retry_after(value: str | None, *, now: _dt.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.replace(".", "", 1).isdigit():
        seconds = float(text)
        return seconds if seconds < 1e9 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    delta = (when - (now or _dt.datetime.now(_dt.UTC))).total_seconds()
    return max(delta, 0.0)
