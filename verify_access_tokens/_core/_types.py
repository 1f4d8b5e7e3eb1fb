"""Types shared across layers.

The ``NOT_GIVEN`` sentinel, per-call options, the pacer hook and the raw answer the transport
hands a resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Protocol

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from ._constants import DEFAULT_MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    from .._http._retry import RetryPolicy
    from ._errors import VerifyError

__all__ = ["NOT_GIVEN", "NotGiven", "Pacer", "RawResponse", "RequestOptions"]


class NotGiven:
    """Type of :data:`NOT_GIVEN`: "argument omitted", where ``None`` is a meaningful value."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()


class Pacer(Protocol):
    """Paces attempts and learns from their outcome (the batch rate limiters implement it)."""

    async def before_attempt(self) -> None: ...

    def after_attempt(self, error: VerifyError | None) -> None: ...


@attrs.frozen(slots=True)
class RequestOptions:
    """Per-call settings; a client holds one, ``with_options`` derives another."""

    timeout: aiohttp.ClientTimeout
    deadline: float | None
    retry: RetryPolicy
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)
    pacer: Pacer | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@attrs.define(slots=True)  # not frozen: built on every request, and frozen init costs more
class RawResponse:
    """What the transport hands the resource to parse. The body holds the JWT: not in repr."""

    status: int
    headers: CIMultiDictProxy[str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    attempts: int
    method: str
    url: str
