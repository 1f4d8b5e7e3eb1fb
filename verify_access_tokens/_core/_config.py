"""Client settings, checked: timeouts, retries, the pool, headers (``_connection``: as whom, where).

Checked once, when a client is built, so that a misconfiguration fails at start-up (with the
name of the argument at fault, never its value) instead of on the first request.
``with_options`` goes through the same checks. The defaults live in ``_constants``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final, Literal

import aiohttp

from .._exceptions import ConfigurationError
from ._constants import (
    DEFAULT_ATTEMPT_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
)
from ._validation import is_encodable, is_int, is_number

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls; tab is allowed
# Headers the client sets itself: overriding them would break auth, framing or the form.
CLIENT_OWNED_HEADERS: Final = frozenset(
    {"authorization", "host", "content-length", "transfer-encoding", "content-type", "connection"}
)


def seconds(name: str, value: object) -> float:
    """A positive, finite number of seconds (``inf`` would overflow aiohttp's timers)."""
    if not is_number(value) or not 0 < value < math.inf:
        raise ConfigurationError(name, "must be a positive, finite number of seconds")
    return float(value)


def optional_seconds(name: str, value: object) -> float | None:
    return None if value is None else seconds(name, value)


def attempt_timeout(value: float | aiohttp.ClientTimeout | None) -> aiohttp.ClientTimeout:
    """Per-attempt limits, handed to aiohttp as one object built once per setting.

    A number (default connect 5 s + read 30 s = 35 s) bounds a whole attempt (aiohttp's one
    ``total`` timer, as cheap as it gets) and opening a new socket by at most the connect time.
    An ``aiohttp.ClientTimeout`` is used as it is, for its finer-grained knobs.
    """
    if isinstance(value, aiohttp.ClientTimeout):
        return value
    total = DEFAULT_ATTEMPT_TIMEOUT if value is None else seconds("timeout", value)
    connect = min(DEFAULT_CONNECT_TIMEOUT, total)
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


def retries(value: object) -> int:
    if not is_int(value) or value < 0:
        raise ConfigurationError("max_retries", "must be an int >= 0")
    return value


def pool_limit(value: object) -> int:
    if not is_int(value) or value < 1:
        raise ConfigurationError("pool_limit", "must be an int >= 1")
    return value


def max_in_flight(value: object) -> int | Literal["adaptive"] | None:
    if value is None or value == "adaptive":
        return value
    if not is_int(value) or value < 1:
        raise ConfigurationError("max_in_flight", "must be an int >= 1, 'adaptive' or None")
    return value


def max_response_bytes(value: object) -> int:
    if not is_int(value) or value < 1:
        raise ConfigurationError("max_response_bytes", "must be an int >= 1 (bytes)")
    return value


def extra_headers(value: object) -> dict[str, str]:
    """Checked copy of the caller's headers: well-formed, ``str`` only, none the client owns.

    Errors name the header, never its value (it may be a credential of its own).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError("extra_headers", "must be a mapping of str to str")
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None:
            raise ConfigurationError(
                "extra_headers", f"{name!r} is not a valid header name (RFC 9110 token)"
            )
        if name.lower() in CLIENT_OWNED_HEADERS:
            raise ConfigurationError("extra_headers", f"{name} is set by the client itself")
        if not isinstance(header_value, str):
            raise ConfigurationError(
                "extra_headers", f"{name}: value must be a str, not {type(header_value).__name__}"
            )
        if _HEADER_VALUE_FORBIDDEN.search(header_value) is not None or not is_encodable(
            header_value
        ):
            raise ConfigurationError(
                "extra_headers",
                f"{name}: value must not contain CR, LF, NUL, other controls or lone surrogates",
            )
        headers[name] = header_value
    return headers
