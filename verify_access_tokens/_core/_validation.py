"""Every client-side request rule, in one place, raising one error type.

The client runs these before anything is sent; the emulator runs the very same functions to
decide its 400 answers, so the two can never disagree. Patterns use ``fullmatch`` (``$`` alone
would accept a trailing newline) and ASCII classes only.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Final, TypeGuard

from .._exceptions import ConfigurationError, RequestValidationError
from ..models import FactorType

TTL_MIN: Final = 60
TTL_MAX: Final = 300
IDENTITY_MIN: Final = 8
IDENTITY_MAX: Final = 64
FRIENDLY_NAME_MAX: Final = 64

_SID_BODY = re.compile(r"[0-9a-fA-F]{32}")
_IDENTITY = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
FACTOR_TYPES: Final = {member.value: member for member in FactorType}


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool`` (``True`` is an ``int`` to Python, not to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """An ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def sid_rule(text: str, prefix: str) -> str | None:
    """``None`` for a well-formed Twilio SID (``prefix`` + 32 hex), else the rule it breaks.

    The rule never quotes the value: a malformed sid is often a pasted secret or a path fragment.
    """
    if len(text) == 34 and text.startswith(prefix) and _SID_BODY.fullmatch(text, 2) is not None:
        return None
    return f"must be '{prefix}' followed by 32 hex digits (34 characters)"


def _check_str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise RequestValidationError(field, f"must be a str, not {type(value).__name__}")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: it could not be sent as UTF-8
        raise RequestValidationError(
            field, "must be valid Unicode text (it contains a lone surrogate)"
        ) from None
    return value


def _check_sid(value: object, field: str, prefix: str) -> str:
    text = _check_str(value, field)
    if (rule := sid_rule(text, prefix)) is not None:
        raise RequestValidationError(field, rule)
    return text


def check_service_sid(value: object, field: str = "service_sid") -> str:
    """A Verify Service SID: ``VA`` + 32 hex. Also what keeps ``../`` or ``?`` out of the path."""
    return _check_sid(value, field, "VA")


def check_access_token_sid(value: object, field: str = "sid") -> str:
    """An Access Token SID: ``YK`` + 32 hex."""
    return _check_sid(value, field, "YK")


def check_identity(value: object, field: str = "identity") -> str:
    """Twilio's Entity identity rule: 8-64 alphanumerics, single dashes between runs."""
    text = _check_str(value, field)
    if not IDENTITY_MIN <= len(text) <= IDENTITY_MAX:
        raise RequestValidationError(
            field, f"must be {IDENTITY_MIN} to {IDENTITY_MAX} characters long, got {len(text)}"
        )
    if _IDENTITY.fullmatch(text) is None:
        raise RequestValidationError(
            field,
            "may contain only ASCII letters and digits, separated by single dashes "
            "(use a UUID, GUID or SID, never PII such as an e-mail or phone number)",
        )
    return text


def check_factor_type(value: object, field: str = "factor_type") -> FactorType:
    """A `FactorType` member or its exact string value."""
    if isinstance(value, FactorType):
        return value
    if isinstance(value, str) and value in FACTOR_TYPES:
        return FACTOR_TYPES[value]
    allowed = ", ".join(repr(v) for v in FACTOR_TYPES)
    raise RequestValidationError(field, f"must be one of {allowed}")


def check_ttl(value: object, field: str = "ttl") -> int | None:
    """Seconds the token lives: an ``int`` (not a ``bool``) from 60 to 300, or ``None``."""
    if value is None:
        return None
    if not is_int(value):
        raise RequestValidationError(field, f"must be an int, not {type(value).__name__}")
    if not TTL_MIN <= value <= TTL_MAX:
        raise RequestValidationError(
            field, f"must be between {TTL_MIN} and {TTL_MAX} seconds inclusive, got {value}"
        )
    return value


def check_friendly_name(value: object, field: str = "factor_friendly_name") -> str | None:
    """The device name shown to the user: 1-64 characters, or ``None``."""
    if value is None:
        return None
    text = _check_str(value, field)
    if not 1 <= len(text) <= FRIENDLY_NAME_MAX:
        raise RequestValidationError(
            field, f"must be 1 to {FRIENDLY_NAME_MAX} characters long, got {len(text)}"
        )
    return text


def check_rate_limit(value: object, field: str = "rate_limit") -> float | None:
    """A batch's pace: ``None`` or a positive finite number of requests per second.

    Raises:
        ConfigurationError: ``"adaptive"``, the removed per-second adaptation.
        RequestValidationError: Any other value that is not such a number.
    """
    if value is None:
        return None
    if value == "adaptive":
        raise ConfigurationError(
            field,
            "'adaptive' was removed: leave it out, and the client's max_in_flight='adaptive' "
            "adapts to Twilio's in-flight limit; give a number only for a per-second quota "
            "you know",
        )
    if not is_number(value) or not 0 < value < math.inf:  # nan fails the comparison too
        raise RequestValidationError(
            field, "must be none or a positive finite number of requests per second"
        )
    return float(value)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: plain http, or an exposed server, is fine only then."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_encodable(text: str, encoding: str = "utf-8") -> bool:
    """Whether ``text`` can be sent in ``encoding`` (a lone surrogate cannot)."""
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True
