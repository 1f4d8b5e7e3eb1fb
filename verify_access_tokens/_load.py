"""Twilio's load headers, read leniently: what a client sees of the account's load.

``Twilio-Concurrent-Requests`` is the account's requests in flight, ``Twilio-Request-Duration``
the seconds Twilio spent on the request. Both are hints: a missing or malformed value (a proxy's
answer, a server echoing junk) is ``None``, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

CONCURRENT_REQUESTS: Final = "Twilio-Concurrent-Requests"
REQUEST_DURATION: Final = "Twilio-Request-Duration"

# Far above any account's limit; a larger value is junk, not load.
_MAX_CONCURRENT: Final = 1_000_000
_MAX_DURATION: Final = 86_400.0


def concurrent_requests(headers: Mapping[str, str]) -> int | None:
    """``Twilio-Concurrent-Requests`` as a count, or ``None`` when absent or not one."""
    value = headers.get(CONCURRENT_REQUESTS)
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 7):
        return None
    count = int(value)
    return count if count <= _MAX_CONCURRENT else None


def request_duration(headers: Mapping[str, str]) -> float | None:
    """``Twilio-Request-Duration`` in seconds, or ``None`` when absent or not a duration."""
    value = headers.get(REQUEST_DURATION)
    if value is None or len(value) > 32 or not value.isascii():
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds <= _MAX_DURATION else None
