"""How failures become the package's errors: HTTP statuses and connection failures.

A reader finds "which error for which failure" here, and the hierarchy in `_exceptions`.
Whatever a server said passes through a `Scrubber` (`_scrub`) before it reaches an exception.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

import aiohttp

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from .._load import concurrent_requests, request_duration
from ._scrub import Scrubber

_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


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


def _twilio_error_fields(body: bytes) -> tuple[int | None, str | None, str | None]:
    """``code``, ``message``, ``more_info`` from a Twilio JSON error body, if it is one."""
    if not body.lstrip().startswith(b"{"):
        return None, None, None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None  # pragma: no cover - starts with "{" so it is an object
    code, message, more_info = data.get("code"), data.get("message"), data.get("more_info")
    return (
        code if type(code) is int else None,
        message if isinstance(message, str) else None,
        more_info if isinstance(more_info, str) else None,
    )


def status_error(
    status: int,
    reason: str | None,
    headers: Mapping[str, str],
    body: bytes | None,
    method: str,
    url: str,
    scrub: Scrubber,
    attempts: int,
) -> APIStatusError:
    """The typed error for a non-success answer, whether Twilio's JSON or a proxy's HTML.

    ``body`` is ``None`` when it was larger than the client reads. Every piece of server text
    goes through ``scrub``: a proxy may quote the request's credentials back.
    """
    code, message, more_info = _twilio_error_fields(body) if body is not None else (None,) * 3
    if message is None:
        # Proxies answer with HTML or nothing; describe it instead of quoting it.
        kind = headers.get("Content-Type", "no content type").split(";")[0]
        size = "too large, cut off" if body is None else f"{len(body)} bytes"
        message = f"{reason or 'error'} ({kind} body, {size}, not a Twilio error)"
    request_id = headers.get("Twilio-Request-Id")
    cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIStatusError)
    return cls(
        status=status,
        message=scrub(message),
        method=method,
        url=url,
        code=code,
        more_info=None if more_info is None else scrub(more_info),
        request_id=None if request_id is None else scrub(request_id, 64),
        retry_after=parse_retry_after(headers.get("Retry-After")),
        attempts=attempts,
        concurrent_requests=concurrent_requests(headers),
        request_duration=request_duration(headers),
    )


def connection_error(
    exc: BaseException,
    method: str,
    url: str,
    scrub: Scrubber,
    attempts: int,
    *,
    timeout: aiohttp.ClientTimeout | None = None,
    deadline: float | None = None,
) -> APIConnectionError:
    """Map an aiohttp/asyncio failure; ``request_sent`` is False only when provably unsent.

    aiohttp's exception text is kept (host, port, errno) but the exception itself is not chained:
    some aiohttp errors carry the request headers, Authorization included, in their ``repr``.
    ``timeout`` is the attempt's limits and ``deadline`` the call's deadline when it cut this
    attempt's ``total`` short: a timeout's message names the limit that ran out, with its value.
    """
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        # The proxy refused the CONNECT tunnel: nothing reached the origin. aiohttp's text quotes
        # the proxy URL, credentials included, so it is not kept.
        return APIConnectionError(
            f"the proxy refused the tunnel (HTTP {exc.status} {scrub(exc.message)})",
            method=method,
            url=url,
            request_sent=False,
            attempts=attempts,
        )
    detail = _connection_detail(exc, scrub)
    if isinstance(exc, TimeoutError):
        limit = "" if timeout is None else f": {_timeout_limit(exc, timeout, deadline)} ran out"
        connect = isinstance(exc, aiohttp.ConnectionTimeoutError)
        return APITimeoutError(
            f"{'connect ' if connect else ''}timed out{limit} ({detail})",
            method=method,
            url=url,
            request_sent=not connect,
            attempts=attempts,
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(
            _cannot_connect(exc, scrub),
            method=method,
            url=url,
            request_sent=False,
            attempts=attempts,
        )
    return APIConnectionError(
        f"connection failed ({detail})", method=method, url=url, attempts=attempts
    )


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _timeout_limit(
    exc: TimeoutError, timeout: aiohttp.ClientTimeout, deadline: float | None
) -> str:
    """The limit behind a timeout, named as the caller sets it: ``the connect timeout (5 s)``."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        # aiohttp raises it for either knob; the smaller one is the one that ran out.
        knobs = [
            (v, n)
            for n, v in (("sock_connect", timeout.sock_connect), ("connect", timeout.connect))
            if v
        ]
        if knobs:
            value, name = min(knobs)
            return f"the connect timeout ({name}={_seconds(value)})"
        return "the connect timeout"  # pragma: no cover - aiohttp raises it only with a knob set
    if isinstance(exc, aiohttp.SocketTimeoutError) and timeout.sock_read:
        return f"the read timeout (sock_read={_seconds(timeout.sock_read)})"
    if deadline is not None:
        return f"the call's deadline (deadline={_seconds(deadline)})"
    if timeout.total:
        return f"the attempt timeout (timeout={_seconds(timeout.total)})"
    return "a timeout"  # pragma: no cover - aiohttp times out only with a limit set


def deadline_spent(deadline: float | None) -> str:
    """The message of the `APITimeoutError` for a call whose deadline ran out before sending."""
    value = "" if deadline is None else f" (deadline={_seconds(deadline)})"
    return f"the call's deadline{value} ran out before the request was sent"


def _cannot_connect(exc: aiohttp.ClientConnectorError, scrub: Scrubber) -> str:
    """``cannot connect to verify.twilio.com:443: connection refused``: host, port, OS error.

    Said as the operating system says it (``strerror`` of its errno), since asyncio's own text
    for a refused connection ("Connect call failed") names no reason.
    """
    reason = exc.os_error
    number = reason.errno if isinstance(reason.errno, int) else None
    if number is not None and number > 0:
        text = os.strerror(number)
    else:  # a DNS failure (gaierror) or an error without an errno: its own words
        text = reason.strerror or str(reason) or type(reason).__name__
    text = text[:1].lower() + text[1:]
    return scrub(f"cannot connect to {exc.host}:{exc.port}: {text}")


def _connection_detail(exc: BaseException, scrub: Scrubber) -> str:
    """What to say about a network failure without quoting what the server sent.

    aiohttp's text for a malformed or cut-off answer (``ClientResponseError`` from its parser,
    ``ClientPayloadError``) quotes the server's bytes, truncated where a secret may be cut in
    two, and a connection cut mid-headers (``ServerDisconnectedError``) quotes the headers
    received so far: only the class names are kept. Other failures (refused, reset, DNS)
    describe our side of the socket; their text is kept, scrubbed all the same.
    """
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        # Cut in the middle of the headers, its text is the partial answer's repr (every header
        # name and value received so far): the class says enough.
        return name
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        cause = exc.__cause__
        return f"{name}: malformed response" + (f" ({type(cause).__name__})" if cause else "")
    return scrub(f"{name}: {exc}") if str(exc) else name
