"""HTTP transport: one pooled aiohttp session per client, auth, timeouts, the retry loop, and
the mapping of every failure to the package's error hierarchy.

The session is created lazily inside the running loop on first use, so a client can be built
at import time (a FastAPI module, pytest collection) and used later. Using it from a second
loop is refused with a clear error rather than aiohttp's obscure one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import warnings
from collections.abc import Mapping
from typing import Any, Final, Protocol

import aiohttp
import attrs
import yarl
from multidict import CIMultiDictProxy

from .._core._config import DEFAULT_MAX_RESPONSE_BYTES
from .._core._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchStoppedError,
    ClientStateError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    Scrubber,
    ServerError,
    VerifyError,
)
from .._core._log import logger
from .._version import __version__
from ._retry import RetryPolicy, backoff_delay, is_ambiguous, is_retryable, parse_retry_after

USER_AGENT: Final = (
    f"verify-access-tokens/{__version__} aiohttp/{aiohttp.__version__} "
    f"Python/{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
)
_READ_SIZE: Final = 64 * 1024  # bounds each copy out of aiohttp's buffer, hence each loop step
_STATUS_ERRORS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


class _Redacted(str):
    """A header value whose ``repr`` hides it, so that tracebacks with locals, debuggers and
    error trackers that serialise frames show ``'<redacted>'`` instead of the credentials."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


class AttemptObserver(Protocol):
    """Paces attempts and learns from their outcome (the batch rate limiter implements it)."""

    async def before_attempt(self) -> None: ...

    def after_attempt(self, error: VerifyError | None) -> None: ...


@attrs.frozen(slots=True)
class RequestOptions:
    """Per-call settings; a client holds one, ``with_options`` derives another."""

    timeout: aiohttp.ClientTimeout
    deadline: float | None
    retry: RetryPolicy
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)
    observer: AttemptObserver | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@attrs.define(slots=True)  # not frozen: built on every request, and frozen init costs more
class RawResponse:
    """What the transport hands the resource to parse. The body holds the JWT: not in repr."""

    status: int
    headers: CIMultiDictProxy[str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    attempts: int


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
    )


async def _read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The decoded body, or ``None`` (and the connection closed) when it is over ``limit``.

    aiohttp decompresses incrementally under flow control, a bounded slice per read, so reading
    chunk by chunk bounds memory and loop time for a gzip bomb as for a plain huge body.
    """
    length = resp.content_length
    if length is not None and "Content-Encoding" not in resp.headers:
        if length <= limit:
            return await resp.read()  # the usual small answer: aiohttp's own path, unchanged
        resp.close()  # announced too large: not even read
        return None
    chunks = []
    size = 0
    content = resp.content
    while chunk := await content.read(_READ_SIZE):
        size += len(chunk)
        if size > limit:
            resp.close()  # the rest stays unread: the connection cannot go back to the pool
            return None
        chunks.append(chunk)
        if size > _READ_SIZE:
            # Buffered data comes back without a suspension, and each read lets aiohttp inflate
            # the next slice: yield, or a compressed body would hold the loop until the cap.
            await asyncio.sleep(0)
    return b"".join(chunks)


def _connection_error(
    exc: BaseException, method: str, url: str, scrub: Scrubber
) -> APIConnectionError:
    """Map an aiohttp/asyncio failure; ``request_sent`` is False only when provably unsent.

    aiohttp's exception text is kept (host, port, errno) but the exception itself is not chained:
    some aiohttp errors carry the request headers, Authorization included, in their ``repr``.
    """
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        # The proxy refused the CONNECT tunnel: nothing reached the origin. aiohttp's text quotes
        # the proxy URL, credentials included, so it is not kept.
        return APIConnectionError(
            f"the proxy refused the tunnel (HTTP {exc.status} {scrub(exc.message)})",
            method=method,
            url=url,
            request_sent=False,
        )
    # Scrubbed: aiohttp quotes what the server sent (a malformed status line, for example).
    detail = scrub(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(
            f"connect timed out ({detail})", method=method, url=url, request_sent=False
        )
    if isinstance(exc, TimeoutError):
        return APITimeoutError(f"timed out ({detail})", method=method, url=url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(
            f"could not connect ({detail})", method=method, url=url, request_sent=False
        )
    return APIConnectionError(f"connection failed ({detail})", method=method, url=url)


class Transport:
    """Owns the aiohttp session (unless the user lent one) and sends requests with retries."""

    def __init__(
        self,
        *,
        base_url: str,
        authorization: str,
        proxy: yarl.URL | None = None,
        session: aiohttp.ClientSession | None = None,
        pool_limit: int,
        keepalive_timeout: float,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
    ) -> None:
        self.base_url = base_url
        self.scrub = Scrubber(authorization)
        self._headers: dict[str, str] = {
            "Authorization": _Redacted(authorization),
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        self._session = session
        self._owns_session = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool_limit = pool_limit
        self._keepalive_timeout = keepalive_timeout
        self._trace_configs = trace_configs
        # A session-wide proxy (credentials inside the URL, turned by aiohttp into
        # Proxy-Authorization); aiohttp's trust_env stays off, so ~/.netrc is never consulted.
        self._proxy = proxy
        self.proxy_display = None if proxy is None else str(proxy.with_user(None))
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def session(self) -> aiohttp.ClientSession:
        """The session for the running loop, created on first use."""
        if self._closed:
            raise ClientStateError("this VerifyClient is closed; create a new one")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ClientStateError(
                "VerifyClient requests must be awaited inside a running event loop"
            ) from None
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise ClientStateError(
                "this VerifyClient is bound to the event loop it was first used in and cannot "
                "be used from another one; create one client per event loop (for example in "
                "your application's startup or FastAPI lifespan)"
            )
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_limit, keepalive_timeout=self._keepalive_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trace_configs=self._trace_configs,
                proxy=self._proxy,
                # Timeouts are passed per request: see RequestOptions and request().
                timeout=aiohttp.ClientTimeout(),
            )
            # aiohttp silently re-sends a GET once when a pooled connection turns out dead.
            # The retry policy here is the only one, so that attempts are counted and bounded.
            self._session._retry_connection = False
        return self._session

    def acquired_connections(self) -> int:
        """Connections currently checked out of the pool (0 when idle): a leak detector."""
        if self._session is None or self._session.connector is None:
            return 0
        return len(self._session.connector._acquired)

    async def aclose(self) -> None:
        """Close the owned session; a lent one is left to its owner. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Only a warning: scheduling a close from __del__ could run on a dead or foreign loop.
        if not self._closed and self._owns_session and self._session is not None:
            _warn(
                "VerifyClient was garbage-collected without being closed; "
                "use 'async with VerifyClient(...)' or 'await client.aclose()'",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )

    async def request(
        self,
        method: str,
        path: str,
        *,
        options: RequestOptions,
        idempotent: bool,
        form: Mapping[str, str] | None = None,
    ) -> RawResponse:
        """Send with retries per ``options``; return the first 2xx answer or raise.

        A 2xx whose body is over ``options.max_response_bytes`` raises
        :class:`ResponseValidationError` (an :class:`OutcomeUnknownError` for a create).

        Each attempt is bounded by its own timeout or what is left of the call's deadline,
        whichever ends first; a backoff sleep that would cross the deadline is never started,
        so the deadline bounds the whole call.
        """
        session = self.session()
        url = self.base_url + path
        headers = self._headers
        if options.extra_headers:
            headers = {**options.extra_headers, **headers}
        retry = options.retry
        observer = options.observer
        loop = asyncio.get_running_loop()
        deadline_at = None if options.deadline is None else loop.time() + options.deadline
        attempt = 0
        error: VerifyError | None = None
        while True:
            if observer is not None:
                try:  # the pacer's wait counts against the deadline (past it: sent nothing)
                    async with asyncio.timeout_at(deadline_at):
                        await observer.before_attempt()
                except TimeoutError:
                    pass  # caught just below as a spent deadline
                except BatchStoppedError as stopped:  # an earlier attempt's error says more
                    raise _give_up(error or stopped, attempt, method, path, idempotent) from None
            timeout = options.timeout
            if deadline_at is not None:
                remaining = deadline_at - loop.time()
                if remaining <= 0:  # the pacer's wait used up the deadline: send nothing more
                    error = error or APITimeoutError(
                        "deadline exceeded before the request was sent",
                        method=method,
                        url=url,
                        request_sent=False,
                    )
                    raise _give_up(error, attempt, method, path, idempotent)
                if timeout.total is None or remaining < timeout.total:
                    # Rarely taken (a retry near the deadline): the common case reuses the
                    # prebuilt timeout object, and aiohttp runs its single timer as usual.
                    timeout = attrs.evolve(timeout, total=max(remaining, 0.001))
            attempt += 1
            try:
                async with session.request(
                    method,
                    url,
                    data=form,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    raise_for_status=False,
                ) as resp:
                    body = await _read_body(resp, options.max_response_bytes)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = _connection_error(exc, method, url, self.scrub)
            else:
                if 200 <= resp.status < 300:
                    if body is not None:
                        if observer is not None:
                            observer.after_attempt(None)
                        if logger.isEnabledFor(logging.DEBUG):
                            logger.debug(
                                "%s %s -> %d request_id=%s attempt=%d",
                                method,
                                path,
                                resp.status,
                                self.scrub(resp.headers.get("Twilio-Request-Id", ""), 64),
                                attempt,
                            )
                        return RawResponse(resp.status, resp.headers, body, attempt)
                    error = ResponseValidationError(
                        "$",
                        f"body larger than max_response_bytes ({options.max_response_bytes}); "
                        "cut off",
                        status=resp.status,
                    )
                else:
                    error = status_error(
                        resp.status, resp.reason, resp.headers, body, method, url, self.scrub
                    )
            if observer is not None:
                observer.after_attempt(error)
            delay = self._retry_delay(error, attempt, retry, idempotent)
            if delay is not None and deadline_at is not None and loop.time() + delay >= deadline_at:
                delay = None  # a retry that cannot finish before the deadline is not started
            if delay is None:
                raise _give_up(error, attempt, method, path, idempotent)
            logger.info(
                "%s %s attempt %d failed (%s); retrying in %.2fs",
                method,
                path,
                attempt,
                _describe(error),
                delay,
            )
            await asyncio.sleep(delay)

    @staticmethod
    def _retry_delay(
        error: VerifyError, attempt: int, retry: RetryPolicy, idempotent: bool
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when this error is final."""
        if attempt > retry.max_retries or not is_retryable(
            error, idempotent=idempotent, policy=retry
        ):
            return None
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        return backoff_delay(attempt, policy=retry, retry_after=retry_after)


def _give_up(
    error: VerifyError, attempts: int, method: str, path: str, idempotent: bool
) -> VerifyError:
    """The error to raise when retrying is over: an ambiguous create becomes OutcomeUnknown."""
    error.attempts = attempts
    logger.info("%s %s failed after %d attempt(s): %s", method, path, attempts, _describe(error))
    if idempotent or not is_ambiguous(error):
        return error
    return outcome_unknown(error)


def outcome_unknown(error: VerifyError) -> OutcomeUnknownError:
    """Wrap the failure of a create that may have made a token (same ``attempts``)."""
    unknown = OutcomeUnknownError(error)
    unknown.attempts = error.attempts
    unknown.__cause__ = error
    return unknown


def _describe(error: VerifyError) -> str:
    """Log-safe one-liner: status, Twilio code and request id, or the connection error class."""
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status} code={error.code} request_id={error.request_id}"
    if isinstance(error, APIConnectionError) and not error.request_sent:
        return f"{type(error).__name__} before sending"
    return type(error).__name__
