"""Types shared across layers.

The ``NOT_GIVEN`` sentinel, per-call options and the raw answer the transport hands a resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from .._core._constants import DEFAULT_MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    from .._flow import Gate
    from ._retry import RetryPolicy

__all__ = ["NOT_GIVEN", "NotGiven", "RawResponse", "RequestOptions"]


class NotGiven:
    """Type of :data:`NOT_GIVEN`: "argument omitted", where ``None`` is a meaningful value."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()


@attrs.frozen(slots=True)
class RequestOptions:
    """Per-call settings; a client holds one, ``with_options`` derives another, a batch too.

    ``gate`` is what a batch's calls pass before each attempt (its pace and its stop).
    """

    timeout: aiohttp.ClientTimeout
    deadline: float | None
    retry: RetryPolicy
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    gate: Gate | None = None


@attrs.define(slots=True)  # not frozen: built on every request, and frozen init costs more
class RawResponse:
    """What the transport hands the resource to parse. The body holds the JWT: not in repr."""

    status: int
    headers: CIMultiDictProxy[str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    attempts: int
    method: str
    url: str
    possible_duplicate: bool = False  # re-sent after an attempt whose outcome was unknown
