"""HTTP transport: a call's steps, on the client's session (`SessionOwner`).

A call takes its turn (`_turn`: a retry's pause, the gate, a limiter slot), makes one attempt
(`_attempt`), and asks the `RetryPolicy` what next (`_next_pause`). Which error a failure
becomes is `_error_mapping`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import yarl

from .._core._connection import proxy_authorization
from .._core._log import logger
from .._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientStateError,
    RateLimitError,
    ResponseValidationError,
    VerifyError,
)
from .._flow import Limiter, Slot, TurnRefused
from .._load import concurrent_requests
from ._body import ACCEPT_ENCODING, read_body
from ._call import Call, attempt_timeout, describe, logged
from ._error_mapping import connection_error, deadline_spent, status_error
from ._scrub import Scrubber
from ._session import SessionOwner
from ._telemetry import Telemetry
from ._types import RawResponse, RequestOptions
from ._wire import FORM_CONTENT_TYPE, USER_AGENT, Redacted, encode_form


class Transport(SessionOwner):
    """Sends a client's requests on its session, with flow control and retries."""

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
        telemetry: Telemetry | None = None,
    ) -> None:
        super().__init__(
            proxy=proxy,
            session=session,
            pool_limit=pool_limit,
            keepalive_timeout=keepalive_timeout,
            trace_configs=trace_configs,
        )
        self.base_url = base_url
        self.limiter = limiter
        self.telemetry = telemetry
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

    def request(
        self,
        method: str,
        path: str,
        *,
        template: str,
        options: RequestOptions,
        idempotent: bool,
        form: Mapping[str, str] | None = None,
        slot: Slot | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> Awaitable[RawResponse]:
        """Send with retries per ``options``; return the first 2xx answer or raise.

        Each attempt is three steps: wait for a turn (`_turn`: a retry's pause, the
        ``options.gate``, a slot of the client's `Limiter`), one attempt (`_attempt`), and
        the next delay (the `RetryPolicy`'s answer). The waits count against the call's
        deadline; a pause that would cross it is never started, and a call whose deadline ran
        out before sending is an `APITimeoutError` with ``request_sent=False``.

        With OpenTelemetry configured, the call is a client span and each attempt is recorded
        (`Telemetry`).

        Args:
            method: The HTTP method.
            path: The path below the base URL.
            template: The path with its sids as placeholders (``url.template``).
            options: This call's settings.
            idempotent: Whether the request may be re-sent whatever happened to it.
            form: The form to send, or ``None`` for no body.
            slot: The first attempt's slot, already taken by the caller (a batch takes it
                before reading the item); the call releases it.
            on_send: Called once, right before the first attempt is handed to aiohttp.
        """
        telemetry = self.telemetry
        if telemetry is None or not telemetry.active():
            return self._send(method, path, options, idempotent, form, slot, on_send, None)
        sending = self._send(method, path, options, idempotent, form, slot, on_send, telemetry)
        return telemetry.traced(method, template, sending)

    async def _send(
        self,
        method: str,
        path: str,
        options: RequestOptions,
        idempotent: bool,
        form: Mapping[str, str] | None,
        slot: Slot | None,
        on_send: Callable[[], None] | None,
        telemetry: Telemetry | None,
    ) -> RawResponse:
        """The call's steps, attempt after attempt, until an answer or a final error."""
        try:
            session = self.session()  # before anything else: outside a loop, a clear error
        except BaseException:
            if slot is not None:
                slot.unused()
            raise
        if form is None:
            payload = None
            headers = self._headers
        else:  # encoded once for every attempt, with a prebuilt Content-Type
            payload = encode_form(form)
            headers = self._form_headers
        if options.extra_headers:
            headers = {**options.extra_headers, **headers}
        loop = asyncio.get_running_loop()
        call = Call(
            method,
            path,
            self.base_url + path,
            payload,
            headers,
            options,
            idempotent,
            None if options.deadline is None else loop.time() + options.deadline,
        )
        attempts = rate_limited = 0
        pause_until: float | None = None
        error: VerifyError | None = None
        while True:
            if slot is None and pause_until is None:
                slot = self.limiter.try_acquire(options.gate)  # free now: no wait, no await
            if slot is None:
                slot = await self._turn(call, pause_until, error)
                try:
                    session = self.session()  # closed during the wait: a state error
                except ClientStateError:
                    slot.unused()
                    raise
            timeout = attempt_timeout(options, call.deadline_at, loop)
            if timeout is None:  # waiting used up the deadline: send nothing more
                slot.unused()
                error = error or self._unsent(call, attempts)
                raise options.retry.give_up(
                    logged(error, call), idempotent, ambiguous_before=call.ambiguous
                )
            attempts += 1
            started = loop.time()
            answer = await self._attempt(
                session, slot, call, timeout, attempts, on_send if attempts == 1 else None, loop
            )
            if telemetry is not None:
                telemetry.attempt(method, answer, loop.time() - started)
            if isinstance(answer, RawResponse):
                answer.possible_duplicate = call.ambiguous
                return answer
            slot, error = None, answer
            if isinstance(error, RateLimitError):
                rate_limited += 1
            pause_until = self._next_pause(call, error, attempts, rate_limited, loop.time())

    def _next_pause(
        self, call: Call, error: VerifyError, attempts: int, rate_limited: int, now: float
    ) -> float:
        """When the next attempt may start, as the retry policy says; or raise ``error``."""
        retry = call.options.retry
        delay = retry.retry_delay(
            error,
            attempts=attempts,
            rate_limited=rate_limited,
            idempotent=call.idempotent,
            stalled=rate_limited > 0 and self.limiter.stalled(now),
        )
        if delay is not None and call.deadline_at is not None and now + delay >= call.deadline_at:
            delay = None  # a retry that cannot finish before the deadline is not started
        if delay is None:
            raise retry.give_up(
                logged(error, call), call.idempotent, ambiguous_before=call.ambiguous
            )
        if not call.idempotent and retry.is_ambiguous(error):
            call.ambiguous = True  # this attempt may have made a token: the next may make two
        logger.info(
            "%s %s attempt %d failed (%s); retrying in %.2fs",
            call.method,
            call.path,
            attempts,
            describe(error),
            delay,
        )
        return now + delay

    async def _turn(self, call: Call, pause_until: float | None, error: VerifyError | None) -> Slot:
        """Wait out the pause, the gate and the limiter; past the deadline, nothing is sent."""
        try:
            return await self.limiter.acquire(
                call.deadline_at, gate=call.options.gate, not_before=pause_until
            )
        except TimeoutError:
            error = error or self._unsent(call, 0)
        except TurnRefused:  # the caller's gate closed: the last answer stands
            error = error or APIConnectionError(
                "stopped before the request was sent",
                method=call.method,
                url=call.url,
                request_sent=False,
            )
        raise call.options.retry.give_up(
            logged(error, call), call.idempotent, ambiguous_before=call.ambiguous
        ) from None

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        slot: Slot,
        call: Call,
        timeout: aiohttp.ClientTimeout,
        attempts: int,
        on_send: Callable[[], None] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> RawResponse | VerifyError:
        """One request and its answer or error; the slot is released with what it taught."""
        sent_at = None
        rate_limited = False
        concurrent = None
        method, url, options = call.method, call.url, call.options
        try:
            if on_send is not None:
                on_send()
            sent_at = loop.time()
            try:
                async with session.request(
                    method,
                    url,
                    data=call.payload,
                    headers=call.headers,
                    timeout=timeout,
                    allow_redirects=False,
                    raise_for_status=False,
                    auto_decompress=False,  # read_body inflates, within max_response_bytes
                ) as resp:
                    concurrent = concurrent_requests(resp.headers)
                    body = await read_body(resp, options.max_response_bytes)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # OSError: a mock's, bare
                if self._closed:  # our own aclose() cut it: a state, not a network failure
                    raise self._closed_error() from None
                return connection_error(
                    exc,
                    method,
                    url,
                    self.scrub,
                    attempts,
                    timeout=timeout,
                    deadline=None if timeout is options.timeout else options.deadline,
                )
            except RuntimeError:
                if session.closed:  # aiohttp's "Session is closed": a lent one, closed
                    raise self._closed_error() from None
                raise
            status = resp.status
            if 200 <= status < 300 and body is not None:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d request_id=%s attempt=%d",
                        method,
                        call.path,
                        status,
                        self._request_id(resp.headers),
                        attempts,
                    )
                return RawResponse(status, resp.headers, body, attempts, method, url)
            rate_limited = status == 429
            # The answer may quote the credentials or hold a JWT: it stays in
            # _answer_error's frame, not in this one's locals, which a traceback shows.
            return self._answer_error(resp, body, call, attempts)
        finally:
            if sent_at is None:
                slot.unused()
            else:
                slot.answered(
                    sent_at=sent_at,
                    now=loop.time(),
                    rate_limited=rate_limited,
                    concurrent=concurrent,
                )

    def _answer_error(
        self, resp: aiohttp.ClientResponse, body: bytes | None, call: Call, attempts: int
    ) -> VerifyError:
        """The error an answer that is not a usable 2xx is."""
        if 200 <= resp.status < 300:
            return ResponseValidationError(
                "$",
                f"body larger than max_response_bytes ({call.options.max_response_bytes}); cut off",
                status=resp.status,
                method=call.method,
                url=call.url,
                request_id=self._request_id(resp.headers),
                attempts=attempts,
            )
        return status_error(
            resp.status,
            resp.reason,
            resp.headers,
            body,
            call.method,
            call.url,
            self.scrub,
            attempts,
        )

    def _unsent(self, call: Call, attempts: int) -> APITimeoutError:
        """The deadline ran out before the request left: safe to retry, nothing was sent."""
        limiter = self.limiter
        return APITimeoutError(
            f"{deadline_spent(call.options.deadline)}, waiting for its turn "
            f"({limiter.in_flight} in flight, limit {limiter.limit})",
            method=call.method,
            url=call.url,
            request_sent=False,
            attempts=attempts,
        )

    def _request_id(self, headers: Mapping[str, str]) -> str | None:
        request_id = headers.get("Twilio-Request-Id")
        return None if request_id is None else self.scrub(request_id, 64)
