"""HTTP transport: one pooled aiohttp session per client and the attempt loop.

The session is created lazily inside the running loop on first use, so a client can be built
at import time (a FastAPI module, pytest collection) and used later. Using it from a second
loop is refused with a clear error rather than aiohttp's obscure one. What to retry and how
long to wait is the `RetryPolicy`'s decision; which error a failure becomes is
``_core._errors``'.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs
import yarl

from .._core._config import proxy_authorization
from .._core._error_mapping import Scrubber, connection_error, deadline_spent, status_error
from .._core._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BatchStoppedError,
    ClientStateError,
    ResponseValidationError,
    VerifyError,
)
from .._core._load import concurrent_requests
from .._core._log import logger
from .._core._types import CallHooks, RawResponse, RequestOptions
from .._flow._limiter import Limiter
from ._body import ACCEPT_ENCODING, read_body
from ._compat import new_session
from ._wire import FORM_CONTENT_TYPE, USER_AGENT, Redacted, encode_form


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
        limiter: Limiter,
    ) -> None:
        self.base_url = base_url
        self.limiter = limiter
        self.scrub = Scrubber(authorization, proxy_authorization(proxy))
        self._headers: dict[str, str] = {
            "Authorization": Redacted(authorization),
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,  # what read_body inflates, not what aiohttp can
        }
        proxy_auth = proxy_authorization(proxy)
        if proxy_auth is not None and base_url.startswith("http://"):
            # Plain http through a proxy carries Proxy-Authorization on every request. aiohttp
            # 3.11 and 3.12 add it only on a new proxy connection, not on a reused one.
            self._headers["Proxy-Authorization"] = Redacted(proxy_auth)
        self._form_headers = {**self._headers, "Content-Type": FORM_CONTENT_TYPE}
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
        if self._session is not None and self._session.closed:
            raise self._closed_error()  # a lent session its owner closed
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_limit, keepalive_timeout=self._keepalive_timeout
            )
            self._session = new_session(  # with the proxy, and no re-send by aiohttp
                connector=connector,
                trace_configs=self._trace_configs,
                proxy=self._proxy,
                # Timeouts are passed per request: see RequestOptions and request().
                timeout=aiohttp.ClientTimeout(),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the owned session; a lent one is left to its owner. Idempotent.

        Raises:
            ClientStateError: Awaited in another event loop than the one the client was used
                in; the client stays open (its session belongs to that loop).
        """
        if self._closed:
            return
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise ClientStateError(
                "aclose() must be awaited in the event loop this VerifyClient was used in; "
                "the client is still open"
            )
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
        hooks: CallHooks | None = None,
    ) -> RawResponse:
        """Send with retries per ``options``; return the first 2xx answer or raise.

        A 2xx whose body is over ``options.max_response_bytes`` raises
        `ResponseValidationError` (an `OutcomeUnknownError` for a create).

        Every attempt first takes a slot of the client's `Limiter` (first come, first served)
        and gives it back with its answer. Waiting for the slot, the pacer and each attempt
        all count against the call's deadline; a backoff sleep that would cross it is never
        started, so the deadline bounds the whole call, and a call whose deadline ran out
        before sending is an `APITimeoutError` with ``request_sent=False``.
        """
        session = self.session()  # before anything else: outside a loop, a clear error
        url = self.base_url + path
        if form is None:
            payload = None
            headers = self._headers
        else:  # encoded once for every attempt, with a prebuilt Content-Type
            payload = encode_form(form)
            headers = self._form_headers
        if options.extra_headers:
            headers = {**options.extra_headers, **headers}
        retry = options.retry  # asked only after a failure: the success path pays nothing
        limiter = self.limiter
        pacer = hooks.pacer if hooks is not None else None
        loop = asyncio.get_running_loop()
        deadline_at = None if options.deadline is None else loop.time() + options.deadline
        attempt = 0
        error: VerifyError | None = None
        while True:
            if attempt:  # a client closed during the last attempt or backoff: a state error
                session = self.session()
            if pacer is not None:
                # Paced before taking a slot: a request waiting for its turn holds no slot
                # that another call of this client could use. The wait counts against the
                # deadline (past it: nothing sent).
                try:
                    async with asyncio.timeout_at(deadline_at):
                        await pacer.before_attempt()
                except TimeoutError:
                    error = error or self._unsent(
                        method, url, attempt, "pacing", limiter, options.deadline
                    )
                    raise retry.give_up(_logged(error, method, path), idempotent) from None
                except BatchStoppedError as stopped:  # an earlier attempt's error says more
                    error = error or stopped
                    raise retry.give_up(_logged(error, method, path), idempotent) from None
            if hooks is not None and hooks.slot_held:
                hooks.slot_held = False  # the caller's slot is this attempt's
            else:
                try:
                    await limiter.acquire(deadline_at)
                except TimeoutError:
                    error = error or self._unsent(
                        method, url, attempt, "a free slot", limiter, options.deadline
                    )
                    raise retry.give_up(_logged(error, method, path), idempotent) from None
            sent_at = None
            rate_limited = False
            concurrent = None
            try:
                timeout = options.timeout
                if deadline_at is not None:
                    remaining = deadline_at - loop.time()
                    if remaining <= 0:  # waiting used up the deadline: send nothing more
                        error = error or self._unsent(
                            method, url, attempt, "a free slot", limiter, options.deadline
                        )
                        raise retry.give_up(_logged(error, method, path), idempotent)
                    if timeout.total is None or remaining < timeout.total:
                        # Rarely taken (a retry near the deadline): the common case reuses the
                        # prebuilt timeout object, and aiohttp runs its single timer as usual.
                        timeout = attrs.evolve(timeout, total=max(remaining, 0.001))
                if attempt == 0 and hooks is not None and hooks.on_send is not None:
                    hooks.on_send()
                attempt += 1
                sent_at = loop.time()
                try:
                    async with session.request(
                        method,
                        url,
                        data=payload,
                        headers=headers,
                        timeout=timeout,
                        allow_redirects=False,
                        raise_for_status=False,
                        auto_decompress=False,  # read_body inflates, within max_response_bytes
                    ) as resp:
                        concurrent = concurrent_requests(resp.headers)
                        body = await read_body(resp, options.max_response_bytes)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if self._closed:  # our own aclose() cut it: a state, not a network failure
                        raise self._closed_error() from None
                    error = connection_error(
                        exc,
                        method,
                        url,
                        self.scrub,
                        attempt,
                        timeout=timeout,
                        deadline=None if timeout is options.timeout else options.deadline,
                    )
                except RuntimeError:
                    if session.closed:  # aiohttp's "Session is closed": a lent one, closed
                        raise self._closed_error() from None
                    raise
                else:
                    if 200 <= resp.status < 300:
                        if body is not None:
                            if pacer is not None:
                                pacer.after_attempt(None)
                            if logger.isEnabledFor(logging.DEBUG):
                                logger.debug(
                                    "%s %s -> %d request_id=%s attempt=%d",
                                    method,
                                    path,
                                    resp.status,
                                    self.scrub(resp.headers.get("Twilio-Request-Id", ""), 64),
                                    attempt,
                                )
                            return RawResponse(
                                resp.status, resp.headers, body, attempt, method, url
                            )
                        error = ResponseValidationError(
                            "$",
                            f"body larger than max_response_bytes "
                            f"({options.max_response_bytes}); cut off",
                            status=resp.status,
                            method=method,
                            url=url,
                            request_id=self._request_id(resp.headers),
                            attempts=attempt,
                        )
                    else:
                        rate_limited = resp.status == 429
                        error = status_error(
                            resp.status,
                            resp.reason,
                            resp.headers,
                            body,
                            method,
                            url,
                            self.scrub,
                            attempt,
                        )
                    # The answer may quote the credentials or hold a JWT: not left in this
                    # frame's locals, which a traceback with locals (an error tracker) shows.
                    del resp, body
            finally:
                if sent_at is None:
                    limiter.release_unused()
                else:
                    limiter.release(
                        sent_at=sent_at,
                        now=loop.time(),
                        rate_limited=rate_limited,
                        concurrent=concurrent,
                    )
            if pacer is not None:
                pacer.after_attempt(error)
            if rate_limited and hooks is not None and hooks.requeues_429:
                delay: float | None = None  # the batch re-queues it behind the other items
            else:
                delay = retry.retry_delay(error, attempt, idempotent)
            if delay is not None and deadline_at is not None and loop.time() + delay >= deadline_at:
                delay = None  # a retry that cannot finish before the deadline is not started
            if delay is None:
                raise retry.give_up(_logged(error, method, path), idempotent)
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
    def _unsent(
        method: str,
        url: str,
        attempts: int,
        waited_for: str,
        limiter: Limiter,
        deadline: float | None,
    ) -> APITimeoutError:
        """The deadline ran out before the request left: safe to retry, nothing was sent."""
        return APITimeoutError(
            f"{deadline_spent(deadline)}, waiting for {waited_for} "
            f"({limiter.in_flight} in flight, limit {limiter.limit})",
            method=method,
            url=url,
            request_sent=False,
            attempts=attempts,
        )

    def _closed_error(self) -> ClientStateError:
        if self._owns_session:
            return ClientStateError("this VerifyClient was closed while the call was under way")
        return ClientStateError(
            "the aiohttp session lent to this VerifyClient was closed by its owner"
        )

    def _request_id(self, headers: Mapping[str, str]) -> str | None:
        request_id = headers.get("Twilio-Request-Id")
        return None if request_id is None else self.scrub(request_id, 64)


def _logged(error: VerifyError, method: str, path: str) -> VerifyError:
    """Log the final failure (before the policy maybe wraps it) and return it."""
    logger.info(
        "%s %s failed after %d attempt(s): %s", method, path, error.attempts, _describe(error)
    )
    return error


def _describe(error: VerifyError) -> str:
    """Log-safe one-liner: status, Twilio code and request id, or the connection error class."""
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status} code={error.code} request_id={error.request_id}"
    if isinstance(error, APIConnectionError) and not error.request_sent:
        return f"{type(error).__name__} before sending"
    return type(error).__name__
