"""Types shared across layers.

The ``NOT_GIVEN`` sentinel, per-call options, what a batch adds to one call (`CallHooks`: the
pacer, a notice when the request leaves, patience with 429s) and the raw answer the transport
hands a resource.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from ._constants import DEFAULT_MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    from .._http._retry import RetryPolicy
    from ._errors import VerifyError

__all__ = ["NOT_GIVEN", "CallHooks", "NotGiven", "Pacer", "RawResponse", "RequestOptions"]


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
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@attrs.define(slots=True)
class CallHooks:
    """What a batch adds to one call, through the client's one request seam.

    Attributes:
        pacer: Paces every attempt (a per-second rate limit), or ``None``.
        on_send: Called once, right before the first attempt goes on the wire (after any
            wait for a slot or the pacer): the batch's "this item was sent".
        requeues_429: A 429 ends the call at once instead of being retried here: the batch
            re-queues the item behind the others (a 429 was not processed).
        slot_held: The caller took a limiter slot for the first attempt; the transport
            clears it when it takes the slot over.
    """

    pacer: Pacer | None = None
    on_send: Callable[[], None] | None = None
    requeues_429: bool = False
    slot_held: bool = False


@attrs.define(slots=True)  # not frozen: built on every request, and frozen init costs more
class RawResponse:
    """What the transport hands the resource to parse. The body holds the JWT: not in repr."""

    status: int
    headers: CIMultiDictProxy[str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    attempts: int
    method: str
    url: str
