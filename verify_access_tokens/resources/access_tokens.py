"""``client.access_tokens``: build the request, validate it, send it, parse the answer.

A request's whole path: ``create`` -> ``_validation`` -> ``VerifyClient._request`` ->
``Transport.request`` (attempts, retry policy, error mapping) -> ``_serde`` -> `AccessToken`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, Literal

import aiohttp
import attrs

from .._batch._engine import BatchInput, Concurrency, EnrollmentBatch
from .._core import _validation as v
from .._core._constants import RATE_LIMIT_PATIENCE
from .._exceptions import OutcomeUnknownError, ResponseValidationError
from .._flow import Gate
from .._http._types import RawResponse, RequestOptions
from .._serde import parse_json_object, structure_access_token
from ..models import AccessToken, APIResponse, FactorType
from ._resource import APIResource

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterable

    from .._flow import Slot

__all__ = ["AccessTokens"]

# The paths with their sids as placeholders, as Twilio's API reference writes them.
_CREATE: Final = "/v2/Services/{ServiceSid}/AccessTokens"
_FETCH: Final = "/v2/Services/{ServiceSid}/AccessTokens/{Sid}"


def _token(raw: RawResponse, *, created: bool = False) -> AccessToken:
    """Parse a 2xx answer.

    A create's 2xx that is not a token may still have made one, so its failure is an
    `OutcomeUnknownError` (the `ResponseValidationError` as cause).
    """
    try:
        return structure_access_token(parse_json_object(raw.body), status=raw.status)
    except ResponseValidationError as exc:
        problem = exc
    # Rebuilt with what only the response knows. The request id is kept only when it has
    # Twilio's shape (``RQ`` + 32 hex): anything else could be a server echoing a secret.
    request_id = raw.headers.get("Twilio-Request-Id")
    error = ResponseValidationError(
        problem.field,
        problem.problem,
        status=raw.status,
        method=raw.method,
        url=raw.url,
        request_id=request_id if request_id and v.sid_rule(request_id, "RQ") is None else None,
        attempts=raw.attempts,
    )
    raise OutcomeUnknownError(error) if created else error


def _with_http_info(raw: RawResponse, *, created: bool = False) -> APIResponse[AccessToken]:
    token = _token(raw, created=created)
    return APIResponse(token, raw.status, raw.headers, raw.attempts, raw.possible_duplicate)


def _create_request(
    service_sid: object,
    identity: object,
    factor_type: object,
    factor_friendly_name: object,
    ttl: object,
) -> tuple[str, dict[str, str]]:
    """Validate every parameter and build the path and form; nothing is sent if this raises."""
    path = f"/v2/Services/{v.check_service_sid(service_sid)}/AccessTokens"
    form = {
        "Identity": v.check_identity(identity),
        "FactorType": v.check_factor_type(factor_type).value,
    }
    friendly_name = v.check_friendly_name(factor_friendly_name)
    if friendly_name is not None:
        form["FactorFriendlyName"] = friendly_name
    checked_ttl = v.check_ttl(ttl)
    if checked_ttl is not None:
        form["Ttl"] = str(checked_ttl)
    return path, form


def _fetch_path(service_sid: object, sid: object) -> str:
    return (
        f"/v2/Services/{v.check_service_sid(service_sid)}"
        f"/AccessTokens/{v.check_access_token_sid(sid)}"
    )


class AccessTokens(APIResource):
    """Enrollment access tokens of a Verify Service: ``create`` and ``fetch``."""

    async def create(
        self,
        service_sid: str,
        *,
        identity: str,
        factor_type: FactorType | Literal["push"] = FactorType.PUSH,
        factor_friendly_name: str | None = None,
        ttl: int | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> AccessToken:
        """Create an enrollment token for ``identity``; hand ``token`` to the device, unlogged.

        A ``create`` is never silently re-sent once it may have reached Twilio: by default it
        is retried only on 429 and on connections that failed before sending.

        Args:
            service_sid: The Verify Service (``VA`` + 32 hex).
            identity: The entity the factor is for: 8-64 characters, letters and digits
                separated by single dashes (a UUID, GUID or SID of your own), never PII such as
                a phone number or e-mail address.
            factor_type: A `FactorType` or exactly ``"push"`` (default ``FactorType.PUSH``, the
                only type Twilio supports today).
            factor_friendly_name: The device's name shown to the user, 1-64 characters
                (default ``None``: not sent).
            ttl: Seconds the token lives, an ``int`` from 60 to 300 (default ``None``: not
                sent, and Twilio's default of 60 applies).
            timeout: Limit of each attempt of this call, in seconds or an
                ``aiohttp.ClientTimeout`` (default ``None``: the client's ``timeout``).

        Returns:
            The new `AccessToken`; its ``token`` is the JWT for the device.

        Raises:
            RequestValidationError: A parameter breaks a rule; raised before anything is sent,
                naming the field.
            OutcomeUnknownError: The request failed after it may have reached Twilio (a
                timeout or dropped connection after sending, a 408 or 5xx, or a 2xx that is not
                a usable token, its `ResponseValidationError` as ``.cause``): a token may
                exist. With ``retry_ambiguous_creates=True`` such a failure is re-sent first,
                and raised once retries are spent.
            APIStatusError: Twilio answered with another error status, which created no
                token: `BadRequestError`, `AuthenticationError`, `PermissionDeniedError`,
                `NotFoundError`, `RateLimitError` (once retries are spent) or the base class.
            APIConnectionError: The connection failed before the request was sent
                (``request_sent=False``); `APITimeoutError` when connecting timed out or the
                ``deadline`` ran out before sending.
            ClientStateError: The client is closed or used from another event loop.
        """
        raw = await self._send_create(
            service_sid, identity, factor_type, factor_friendly_name, ttl, timeout
        )
        return _token(raw, created=True)

    async def create_with_http_info(
        self,
        service_sid: str,
        *,
        identity: str,
        factor_type: FactorType | Literal["push"] = FactorType.PUSH,
        factor_friendly_name: str | None = None,
        ttl: int | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> APIResponse[AccessToken]:
        """Like `create`, plus the HTTP status and headers (``request_id`` among them).

        Args:
            service_sid: As for `create`.
            identity: As for `create` (8-64 letters and digits, single dashes; never PII).
            factor_type: As for `create`.
            factor_friendly_name: As for `create`.
            ttl: As for `create` (60 to 300).
            timeout: As for `create`.

        Returns:
            An `APIResponse` whose ``data`` is the new `AccessToken`.

        Raises:
            VerifyError: The same errors as `create`, for the same reasons.
        """
        raw = await self._send_create(
            service_sid, identity, factor_type, factor_friendly_name, ttl, timeout
        )
        return _with_http_info(raw, created=True)

    def _send_create(
        self,
        service_sid: object,
        identity: object,
        factor_type: object,
        factor_friendly_name: object,
        ttl: object,
        timeout: float | aiohttp.ClientTimeout | None,
    ) -> Awaitable[RawResponse]:
        path, form = _create_request(service_sid, identity, factor_type, factor_friendly_name, ttl)
        return self._request(
            "POST", path, template=_CREATE, idempotent=False, form=form, timeout=timeout
        )

    async def fetch(
        self,
        service_sid: str,
        sid: str,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> AccessToken:
        """Fetch an access token by its ``YK`` sid.

        A ``fetch`` is idempotent: it is retried on connection errors, timeouts, 408, 429, 500,
        502, 503 and 504.

        Args:
            service_sid: The Verify Service (``VA`` + 32 hex).
            sid: The access token's sid (``YK`` + 32 hex).
            timeout: Limit of each attempt of this call, in seconds or an
                ``aiohttp.ClientTimeout`` (default ``None``: the client's ``timeout``).

        Returns:
            The `AccessToken`.

        Raises:
            RequestValidationError: A sid is malformed; raised before anything is sent.
            NotFoundError: No such token (or it belongs to another service or account); the
                other `APIStatusError` subclasses for the other error statuses.
            APIConnectionError: The network failed once retries were spent; `APITimeoutError`
                for a timeout or a spent ``deadline``.
            ResponseValidationError: A 2xx body that is not an access token.
            ClientStateError: The client is closed or used from another event loop.
        """
        return _token(await self._send_fetch(service_sid, sid, timeout))

    async def fetch_with_http_info(
        self,
        service_sid: str,
        sid: str,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> APIResponse[AccessToken]:
        """Like `fetch`, plus the HTTP status and headers.

        Args:
            service_sid: As for `fetch`.
            sid: As for `fetch`.
            timeout: As for `fetch`.

        Returns:
            An `APIResponse` whose ``data`` is the `AccessToken`.

        Raises:
            VerifyError: The same errors as `fetch`, for the same reasons.
        """
        return _with_http_info(await self._send_fetch(service_sid, sid, timeout))

    def _send_fetch(
        self, service_sid: object, sid: object, timeout: float | aiohttp.ClientTimeout | None
    ) -> Awaitable[RawResponse]:
        path = _fetch_path(service_sid, sid)
        return self._request("GET", path, template=_FETCH, idempotent=True, timeout=timeout)

    def create_many(
        self,
        service_sid: str,
        identities: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: Concurrency = "adaptive",
        rate_limit: float | None = None,
        factor_type: FactorType | Literal["push"] = FactorType.PUSH,
        factor_friendly_name: str | None = None,
        ttl: int | None = None,
        ordered: bool = False,
        on_send: Callable[[str], None] | None = None,
    ) -> EnrollmentBatch:
        """Enroll many identities; iterate the result for exactly one outcome per input item.

        ``identities`` (strings or `EnrollmentRequest`, sync or async iterable) is read
        lazily, one item each time the client's limiter has a slot for it: the batch shares
        the client's ``max_in_flight`` with every other call made through the client. A 429
        (Twilio's "too many requests", which was not processed) is re-sent after a short pause
        behind the other waiters, without spending ``max_retries``: up to 20 times, within the
        client's ``deadline``, while the client makes progress (after 100 429s in a row and
        10 s with no other answer, a 429 is the item's result). Results come in completion
        order, or input order with ``ordered=True``. If the iteration ends early, no further
        item is read, and every item read from the input is yielded or listed in the batch's
        ``undelivered``, ``unfinished`` or ``not_sent``: complete after ``async with batch``
        or ``await batch.aclose()``.

        Args:
            service_sid: The Verify Service (``VA`` + 32 hex).
            identities: Identity strings or `EnrollmentRequest` items, a sync or async
                iterable. A bad item becomes that item's result (its error), not an exception.
            concurrency: ``"adaptive"`` (default: as many requests in flight as the client's
                limiter allows) or an ``int`` >= 1, the most this batch has in flight. An
                unused slot costs nothing.
            rate_limit: ``None`` (default: no pace; the client's limiter adapts to Twilio's
                in-flight limit), or at most this many requests per second, evenly spaced,
                retries included: for a per-second quota you know.
            factor_type: Factor type of every item (default ``FactorType.PUSH``).
            factor_friendly_name: Friendly name of the items without their own, 1-64
                characters (default ``None``: not sent).
            ttl: Seconds each token lives, 60 to 300, for items without their own (default
                ``None``: Twilio's default of 60).
            ordered: Yield results in input order instead of completion order (default
                ``False``).
            on_send: Called with each item's identity right before its first request is
                handed to the network (default ``None``): a write-ahead record, as ``enroll``
                keeps. An exception it raises ends the batch with that exception.

        Returns:
            An `EnrollmentBatch`: iterate it (``async for``) for one `EnrollmentResult` per
            item; nothing is sent before the iteration starts.

        Raises:
            RequestValidationError: ``service_sid``, ``factor_type``, ``factor_friendly_name``,
                ``ttl``, ``concurrency`` (``"adaptive"`` or an ``int`` >= 1) or ``rate_limit``
                (a positive finite number or ``None``) breaks a rule; raised here, before
                anything is sent.
            ConfigurationError: ``rate_limit="adaptive"``, which was removed: leave
                ``rate_limit`` out (the client's ``max_in_flight="adaptive"`` adapts).
        """
        client = self._client
        gate = Gate(v.check_rate_limit(rate_limit))
        options = client._options
        options = attrs.evolve(
            options,
            gate=gate,
            retry=attrs.evolve(options.retry, rate_limit_patience=RATE_LIMIT_PATIENCE),
        )
        return EnrollmentBatch(
            functools.partial(
                self._create_in_batch,
                v.check_service_sid(service_sid),
                v.check_factor_type(factor_type),
                options,
            ),
            client._limiter,
            gate,
            identities,
            concurrency=concurrency,
            factor_friendly_name=v.check_friendly_name(factor_friendly_name),
            ttl=v.check_ttl(ttl),
            ordered=ordered,
            on_send=on_send,
        )

    async def _create_in_batch(
        self,
        service_sid: str,
        factor_type: FactorType,
        options: RequestOptions,
        identity: object,
        factor_friendly_name: object,
        ttl: object,
        slot: Slot,
        on_send: Callable[[], None],
    ) -> APIResponse[AccessToken]:
        """One batch item: create()'s validation and parsing, with the batch's options."""
        path, form = _create_request(service_sid, identity, factor_type, factor_friendly_name, ttl)
        raw = await self._request(
            "POST",
            path,
            template=_CREATE,
            idempotent=False,
            form=form,
            options=options,
            slot=slot,
            on_send=on_send,
        )
        return _with_http_info(raw, created=True)
