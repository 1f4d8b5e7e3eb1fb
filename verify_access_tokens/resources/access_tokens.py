"""``client.access_tokens``: build the request, validate it, send it, parse the answer.

A request's whole path: ``create`` -> ``_validation`` -> ``Transport.request`` (retries, error
mapping) -> ``_serde`` -> :class:`AccessToken`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import aiohttp

from .. import _validation as v
from .._batch import BatchInput, EnrollmentBatch, RateLimit
from .._serde import parse_json_object, structure_access_token
from .._transport import RawResponse
from ..models import AccessToken, APIResponse, FactorType

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterable

if TYPE_CHECKING:
    from ..client import VerifyClient

__all__ = ["AccessTokens"]

_CREATED: Final = frozenset({201, 200})  # the description lists 200 beside 201: accept both
_OK: Final = frozenset({200})


def _parse(raw: RawResponse) -> APIResponse[AccessToken]:
    data = parse_json_object(raw.body, status=raw.status)
    token = structure_access_token(data, status=raw.status)
    return APIResponse(token, raw.status, raw.headers, raw.attempts)


class AccessTokens:
    """Enrollment access tokens of a Verify Service: ``create`` and ``fetch``."""

    def __init__(self, client: VerifyClient) -> None:
        self._client = client

    async def create(
        self,
        service_sid: str,
        *,
        identity: str,
        factor_type: FactorType | str = FactorType.PUSH,
        factor_friendly_name: str | None = None,
        ttl: int | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> AccessToken:
        """Create an enrollment token for ``identity``; hand ``token`` to the device, unlogged.

        Raises :class:`RequestValidationError` before sending if a parameter breaks a rule, and
        :class:`OutcomeUnknownError` if the request failed after it may have created a token.
        """
        response = await self.create_with_http_info(
            service_sid,
            identity=identity,
            factor_type=factor_type,
            factor_friendly_name=factor_friendly_name,
            ttl=ttl,
            timeout=timeout,
        )
        return response.data

    async def create_with_http_info(
        self,
        service_sid: str,
        *,
        identity: str,
        factor_type: FactorType | str = FactorType.PUSH,
        factor_friendly_name: str | None = None,
        ttl: int | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> APIResponse[AccessToken]:
        """Like :meth:`create`, plus the HTTP status and headers (``request_id`` among them)."""
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
        raw = await self._client._transport.request(
            "POST",
            path,
            options=self._client._options_for_call(timeout),
            idempotent=False,
            expected=_CREATED,
            form=form,
        )
        return _parse(raw)

    async def fetch(
        self,
        service_sid: str,
        sid: str,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> AccessToken:
        """Fetch an access token by its ``YK`` sid."""
        return (await self.fetch_with_http_info(service_sid, sid, timeout=timeout)).data

    async def fetch_with_http_info(
        self,
        service_sid: str,
        sid: str,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
    ) -> APIResponse[AccessToken]:
        """Like :meth:`fetch`, plus the HTTP status and headers."""
        path = (
            f"/v2/Services/{v.check_service_sid(service_sid)}"
            f"/AccessTokens/{v.check_access_token_sid(sid)}"
        )
        raw = await self._client._transport.request(
            "GET",
            path,
            options=self._client._options_for_call(timeout),
            idempotent=True,
            expected=_OK,
        )
        return _parse(raw)

    def create_many(
        self,
        service_sid: str,
        identities: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: int = 32,
        rate_limit: RateLimit = None,
        factor_type: FactorType | str = FactorType.PUSH,
        factor_friendly_name: str | None = None,
        ttl: int | None = None,
        ordered: bool = False,
    ) -> EnrollmentBatch:
        """Enrol many identities; iterate the result for exactly one outcome per input item.

        ``identities`` (strings or :class:`EnrollmentRequest`, sync or async iterable) is read
        lazily. At most ``concurrency`` requests are in flight; ``rate_limit`` is ``None``, a
        number of requests per second, or ``"adaptive"`` (find the account's limit from 429s).
        Results come in completion order, or input order with ``ordered=True``.
        """
        return EnrollmentBatch(
            self._client,
            v.check_service_sid(service_sid),
            identities,
            concurrency=concurrency,
            rate_limit=rate_limit,
            factor_type=v.check_factor_type(factor_type),
            factor_friendly_name=v.check_friendly_name(factor_friendly_name),
            ttl=v.check_ttl(ttl),
            ordered=ordered,
        )
