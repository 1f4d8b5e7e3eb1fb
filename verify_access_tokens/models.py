"""Typed, frozen models of what the API returns and what a batch consumes and produces.

Secrets (the enrollment JWT) and PII (the device's friendly name) are kept out of ``repr`` so
that logging a model, or a traceback showing one, never discloses them.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from . import _load

if TYPE_CHECKING:
    from ._exceptions import VerifyError

__all__ = ["APIResponse", "AccessToken", "EnrollmentRequest", "EnrollmentResult", "FactorType"]

T = TypeVar("T")


class FactorType(enum.StrEnum):
    """Kinds of factor an access token can enroll. Twilio supports only ``push`` today."""

    PUSH = "push"


@attrs.frozen(slots=True)
class AccessToken:
    """An enrollment Access Token (``verify.v2.service.access_token``).

    ``factor_type`` is a `FactorType` when this client knows the value, otherwise the raw
    string a newer server sent, so parsing never breaks on a new factor type.

    Attributes:
        sid: The token's sid (``YK`` + 32 hex).
        account_sid: The account it belongs to (``AC`` + 32 hex).
        service_sid: The Verify Service (``VA`` + 32 hex).
        entity_identity: The identity it was created for.
        factor_type: A `FactorType`, or the raw string of a type this client does not know.
        token: The enrollment JWT for the device; kept out of ``repr``.
        url: The resource's URL at Twilio.
        ttl: Seconds the token lives after ``date_created``.
        date_created: When it was created (aware UTC).
        factor_friendly_name: The device's name, if one was given; kept out of ``repr``.
    """

    sid: str
    account_sid: str
    service_sid: str
    entity_identity: str
    factor_type: FactorType | str
    token: str = attrs.field(repr=False)
    url: str
    ttl: int
    date_created: _dt.datetime
    factor_friendly_name: str | None = attrs.field(default=None, repr=False)

    @property
    def expires_at(self) -> _dt.datetime:
        """When the token stops being usable (``date_created + ttl``, aware UTC).

        It must reach its device before then.
        """
        return (self.date_created + _dt.timedelta(seconds=self.ttl)).astimezone(_dt.UTC)

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape (ISO 8601 dates, plain strings), ready for ``json.dumps``.

        ``token`` (the JWT) is included: the caller decides what to show or store.
        """
        return attrs.asdict(self, value_serializer=_json_value)


def _json_value(_instance: object, _field: object, value: Any) -> Any:
    """A model's value as the API writes it: ISO 8601 UTC dates with ``Z``, enum values."""
    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return value.value
    return value


@attrs.frozen(slots=True)
class APIResponse(Generic[T]):
    """A parsed model together with the HTTP details it came with.

    What ``create_with_http_info`` and ``fetch_with_http_info`` return.

    Attributes:
        data: The parsed model, such as an `AccessToken`.
        status: The HTTP status of the answer.
        headers: The answer's headers; kept out of ``repr``.
        attempts: HTTP attempts made (default 1).
        possible_duplicate: A create was re-sent after an attempt whose outcome was unknown
            (``retry_ambiguous_creates``): the identity may hold a second, unused token
            (default ``False``).
    """

    data: T
    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    attempts: int = 1
    possible_duplicate: bool = False

    @property
    def request_id(self) -> str | None:
        """Twilio's ``Twilio-Request-Id``: quote it to Twilio support."""
        return self.headers.get("Twilio-Request-Id")

    @property
    def concurrent_requests(self) -> int | None:
        """The account's requests in flight (``Twilio-Concurrent-Requests``); None if unknown."""
        return _load.concurrent_requests(self.headers)

    @property
    def request_duration(self) -> float | None:
        """Seconds Twilio spent on the request (``Twilio-Request-Duration``); None if unknown."""
        return _load.request_duration(self.headers)


@attrs.frozen(slots=True)
class EnrollmentRequest:
    """One item of a batch: an identity plus optional per-item friendly name and ttl.

    Values are validated when the batch sends the item, so a bad item becomes that item's
    result instead of an exception that would end the whole batch.

    Attributes:
        identity: The identity to enroll (the same rule as `AccessTokens.create`'s).
        factor_friendly_name: This item's device name, 1-64 characters (default ``None``: the
            batch's); kept out of ``repr``.
        ttl: This item's token lifetime, 60 to 300 seconds (default ``None``: the batch's).
    """

    identity: str
    factor_friendly_name: str | None = attrs.field(default=None, repr=False)
    ttl: int | None = None


@attrs.frozen(slots=True)
class EnrollmentResult:
    """Exactly one per batch input item: the access token or the typed error, never both.

    Attributes:
        identity: The item's identity, as read from the input.
        access_token: The token, on success (default ``None``).
        error: The typed error, on failure (default ``None``).
        attempts: HTTP attempts made for the item (default 0).
        index: The item's position in the input, from 0 (default 0).
        possible_duplicate: The item was re-sent after an attempt whose outcome was unknown:
            it may hold a second, unused token (default ``False``).
    """

    identity: str
    access_token: AccessToken | None = None
    error: VerifyError | None = None
    attempts: int = 0
    index: int = 0
    possible_duplicate: bool = False

    @property
    def ok(self) -> bool:
        """True when the item got its token (``error`` is None)."""
        return self.error is None
