"""The cattrs converter: JSON bodies in, models out, and models back to JSON-ready dicts.

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
from typing import TYPE_CHECKING, Any, TypeVar

from ..models import AccessToken, FactorType
from ._errors import ResponseValidationError
from ._validation import FACTOR_TYPES

if TYPE_CHECKING:
    import cattrs

__all__ = ["parse_json_object", "structure", "unstructure"]

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


def _unstructure_datetime(value: _dt.datetime) -> str:
    return value.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


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
    conv.register_unstructure_hook(_dt.datetime, _unstructure_datetime)
    conv.register_unstructure_hook(FactorType, lambda member: member.value)
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
    raise ResponseValidationError(field, problem, status=status)


def parse_json_object(body: bytes, *, status: int | None = None) -> dict[str, Any]:
    """Decode a JSON object body, or raise `ResponseValidationError` saying why not."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        data = _INVALID
    if data is _INVALID:
        # Raised outside the handler: the JSON error holds the whole body (``.doc``), a JWT
        # perhaps, and would otherwise stay reachable as ``__context__``.
        raise ResponseValidationError("$", f"not valid JSON ({len(body)} bytes)", status=status)
    if not isinstance(data, dict):
        raise ResponseValidationError(
            "$",
            f"expected a JSON object, got {type(data).__name__}",
            status=status,
        )
    return data


def unstructure(value: object) -> Any:
    """Plain JSON-ready data from a model (``token`` included: callers decide what to show)."""
    return _converter().unstructure(value)


def structure_access_token(data: dict[str, Any], *, status: int | None = None) -> AccessToken:
    return structure(data, AccessToken, status=status)
