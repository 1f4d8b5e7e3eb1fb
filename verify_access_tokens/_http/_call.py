"""What stays the same across one call's attempts, and the helpers the send path reads it with.

`Call` carries the request and its deadline; `attempt_timeout` fits an attempt's limits into
that deadline; `logged` and `describe` say a failure in the log without a secret.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Final

import aiohttp
import attrs

from .._core._log import logger
from .._exceptions import APIConnectionError, APIStatusError, VerifyError
from ._types import RequestOptions

# Cut short by the deadline, the connect phase ends this long before the attempt (see
# `attempt_timeout`).
_CONNECT_MARGIN: Final = 0.05


def logged(error: VerifyError, call: Call) -> VerifyError:
    """Log the final failure (before the policy maybe wraps it) and return it."""
    logger.info(
        "%s %s failed after %d attempt(s): %s",
        call.method,
        call.path,
        error.attempts,
        describe(error),
    )
    return error


class Call:
    """What stays the same across one call's attempts."""

    __slots__ = (
        "ambiguous",
        "deadline_at",
        "headers",
        "idempotent",
        "method",
        "options",
        "path",
        "payload",
        "url",
    )

    def __init__(
        self,
        method: str,
        path: str,
        url: str,
        payload: bytes | None,
        headers: Mapping[str, str],
        options: RequestOptions,
        idempotent: bool,
        deadline_at: float | None,
    ) -> None:
        self.method = method
        self.path = path
        self.url = url
        self.payload = payload
        self.headers = headers
        self.options = options
        self.idempotent = idempotent
        self.deadline_at = deadline_at
        self.ambiguous = False  # an attempt's outcome was unknown, and the call went on


def describe(error: VerifyError) -> str:
    """Log-safe one-liner: status, Twilio code and request id, or the connection error class."""
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status} code={error.code} request_id={error.request_id}"
    if isinstance(error, APIConnectionError) and not error.request_sent:
        return f"{type(error).__name__} before sending"
    return type(error).__name__


def attempt_timeout(
    options: RequestOptions, deadline_at: float | None, loop: asyncio.AbstractEventLoop
) -> aiohttp.ClientTimeout | None:
    """The attempt's limits within the call's deadline; ``None`` when it is spent.

    Cut short by the deadline, the connect phase (which includes waiting for a pooled
    connection) ends a little before the whole attempt, so that a request still waiting
    for a connection at the deadline is known to be unsent.
    """
    timeout = options.timeout
    if deadline_at is None:
        return timeout
    remaining = deadline_at - loop.time()
    if remaining <= 0:
        return None
    if timeout.total is not None and timeout.total <= remaining:
        return timeout  # the common case: the prebuilt object, aiohttp's single timer
    connect = max(remaining - _CONNECT_MARGIN, 0.001)
    if timeout.connect is not None:
        connect = min(connect, timeout.connect)
    # ceil_threshold: no rounding up to whole seconds, which could reorder the two timers.
    return attrs.evolve(
        timeout, total=max(remaining, 0.001), connect=connect, ceil_threshold=math.inf
    )
