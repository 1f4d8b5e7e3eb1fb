"""One batch item, from its input value to its one `EnrollmentResult`.

The item's own friendly name and ttl override the batch's; every value goes through create()'s
validation, so a bad one (of any type) is that item's result; a 429 puts it back in the queue
(`Requeue`) rather than failing it; any other error is its result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .._core._errors import RateLimitError, VerifyError
from .._core._types import CallHooks
from ..models import EnrollmentRequest, EnrollmentResult

if TYPE_CHECKING:
    from .._flow import Limiter
    from ..models import AccessToken, APIResponse
    from ._pacer import FixedPacer
    from ._requeue import Requeue

# create(identity, factor_friendly_name, ttl, hooks): the resource's create, service bound.
BatchCreate = Callable[[object, object, object, CallHooks], Awaitable["APIResponse[AccessToken]"]]


def identity_text(item: object) -> str:
    """How results and ``unfinished`` name an item; never raises, so no taken item is lost."""
    if isinstance(item, EnrollmentRequest):
        item = item.identity
    if isinstance(item, str):
        return item
    try:
        return repr(item)
    except Exception:
        return f"<{type(item).__name__} (repr failed)>"


class ItemSender:
    """Sends batch items with the batch's defaults, pacer and re-queueing."""

    def __init__(
        self,
        create: BatchCreate,
        limiter: Limiter,
        pacer: FixedPacer | None,
        requeue: Requeue,
        *,
        factor_friendly_name: str | None,
        ttl: int | None,
    ) -> None:
        self._create = create
        self._limiter = limiter
        self._pacer = pacer
        self._requeue = requeue
        self._friendly_name = factor_friendly_name
        self._ttl = ttl

    async def send(
        self, index: int, item: object, *, on_send: Callable[[], None]
    ) -> EnrollmentResult:
        """Send one item (unpaced, with the slot the caller took); its result, never raises.

        Args:
            index: The item's position in the input.
            item: An identity string or an `EnrollmentRequest` (or anything: a bad value is a
                `RequestValidationError` result).
            on_send: Called once, right before the item's first attempt leaves.
        """
        identity = identity_text(item)
        name, ttl = self._friendly_name, self._ttl
        if isinstance(item, EnrollmentRequest):
            # `is not None`, not `or`: an empty name must be rejected as on create().
            if item.factor_friendly_name is not None:
                name = item.factor_friendly_name
            if item.ttl is not None:
                ttl = item.ttl
            item = item.identity
        # Unpaced, the dispatcher took this item's slot; paced, the transport takes it.
        holds_slot = self._pacer is None
        hooks = CallHooks(
            pacer=self._pacer, on_send=on_send, requeues_429=True, slot_held=holds_slot
        )
        attempts = 0
        requeue = self._requeue.item()
        try:
            while True:
                try:
                    response = await self._create(item, name, ttl, hooks)
                except RateLimitError as error:
                    attempts += error.attempts
                    # Not processed: back in the queue while the batch makes progress.
                    if await requeue.wait(error, take_slot=holds_slot):
                        hooks.slot_held = holds_slot
                        continue
                    error.attempts = attempts
                    return EnrollmentResult(identity, error=error, attempts=attempts, index=index)
                except VerifyError as error:
                    attempts += error.attempts
                    return EnrollmentResult(identity, error=error, attempts=attempts, index=index)
                self._requeue.progress()
                return EnrollmentResult(
                    identity,
                    access_token=response.data,
                    attempts=attempts + response.attempts,
                    index=index,
                )
        finally:
            if hooks.slot_held:  # it never reached the transport (a bad item, a stop)
                self._limiter.release_unused()
