"""The cattrs converter: JSON bodies in, models out (``AccessToken.to_dict`` goes back).

Structuring is strict about types (a ``"300"`` is not a ttl, a ``true`` is not an int) and
lenient about evolution (unknown keys are ignored; an unknown ``factor_type`` stays a string).

Two converters share the same hooks: a fast one without detailed validation for the hot path,
and a detailed one that runs only after the fast one failed, to name the offending field. Both
are built on first use.
Every failure leaves here as `ResponseValidationError`, never a cattrs or JSON error.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ._core._validation import FACTOR_TYPES
from ._exceptions import ResponseValidationError
from .models import AccessToken, FactorType

if TYPE_CHECKING:
    import cattrs

__all__ = ["parse_json_object", "structure", "structure_access_token"]

T = TypeVar("T")

_INVALID: Any = object()


def _structure_str(value: Any, _: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_int(value: Any, _: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _structure_factor_type(value: Any, _: type) -> FactorType | str:
    text = _structure_str(value, str)
    return FACTOR_TYPES.get(text, text)


def _structure_datetime(value: Any, _: type) -> _dt.datetime:
    text = _structure_str(value, str)
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError:
        # Older Twilio APIs use RFC 2822 dates; accept them rather than fail on a format change.
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise ValueError("expected an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError("expected a date-time with a time zone")
    return parsed.astimezone(_dt.UTC)


@functools.cache
def _converter(*, detailed: bool = False) -> cattrs.Converter:
    """Built on first use: importing cattrs is a noticeable share of this package's import time.

    ``detailed=False`` is the hot path; the detailed twin only names the field after a failure.
    """
    import cattrs

    conv = cattrs.Converter(detailed_validation=detailed)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(FactorType | str, _structure_factor_type)
    conv.register_structure_hook(_dt.datetime, _structure_datetime)
    return conv


def _diagnose(data: dict[str, Any], cls: type) -> tuple[str, str]:
    """The JSON path and reason of the first failure, e.g. ``("$.ttl", "invalid value ...")``."""
    try:
        _converter(detailed=True).structure(data, cls)
    except Exception as exc:  # cattrs raises many types; all mean "invalid"
        from cattrs import transform_error

        for line in transform_error(exc):
            reason, _, path = line.rpartition(" @ ")
            if path:
                return path, reason
        return "$", type(exc).__name__  # pragma: no cover - transform_error adds a path
    return "$", "could not be structured"  # pragma: no cover - both converters share hooks


def structure(data: Any, cls: type[T], *, status: int | None = None) -> T:
    """Build ``cls`` from decoded JSON, or raise `ResponseValidationError`."""
    if not isinstance(data, dict):
        raise ResponseValidationError(
            "$",
            f"expected a JSON object, got {type(data).__name__}",
            status=status,
        )
    try:
        return _converter().structure(data, cls)
    except Exception:  # the fast path has no paths: re-diagnose
        field, problem = _diagnose(data, cls)
    del data  # holds the JWT: not left for a traceback with locals
    raise ResponseValidationError(field, problem, status=status)


def parse_json_object(body: bytes, *, status: int | None = None) -> dict[str, Any]:
    """Decode a JSON object body, or raise `ResponseValidationError` saying why not."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        data = _INVALID
    if isinstance(data, dict):
        return data
    # Raised outside the handler: the JSON error holds the whole body (``.doc``), a JWT
    # perhaps, and would otherwise stay reachable as ``__context__``; neither the body nor
    # the data stays in this frame's locals.
    problem = (
        f"not valid JSON ({len(body)} bytes)"
        if data is _INVALID
        else f"expected a JSON object, got {type(data).__name__}"
    )
    del body, data
    raise ResponseValidationError("$", problem, status=status)


# A ttl Twilio documents as 60..300 s; up to a day is accepted (room for Twilio to raise it),
# and any date_created up to a day before the end of the calendar, so that ``expires_at``
# (``date_created + ttl``) can always be computed.
RESPONSE_TTL_MAX: Final = 86_400
_LATEST_DATE_CREATED: Final = _dt.datetime.max.replace(tzinfo=_dt.UTC) - _dt.timedelta(
    seconds=RESPONSE_TTL_MAX
)


def structure_access_token(data: dict[str, Any], *, status: int | None = None) -> AccessToken:
    token = structure(data, AccessToken, status=status)
    if 0 < token.ttl <= RESPONSE_TTL_MAX and token.date_created <= _LATEST_DATE_CREATED:
        return token
    error = _out_of_range(token.ttl, token.date_created, status)
    del data, token  # both hold the JWT: not left for a traceback with locals
    raise error


def _out_of_range(
    ttl: int, date_created: _dt.datetime, status: int | None
) -> ResponseValidationError:
    if not 0 < ttl <= RESPONSE_TTL_MAX:
        return ResponseValidationError(
            "$.ttl", f"must be between 1 and {RESPONSE_TTL_MAX} seconds", status=status
        )
    return ResponseValidationError(
        "$.date_created", "too close to the year 9999 to compute expires_at", status=status
    )
