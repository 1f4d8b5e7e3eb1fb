"""One batch item, from its input value to its one `EnrollmentResult`.

The item's own friendly name and ttl override the batch's; every value goes through create()'s
validation, so a bad one (of any type) is that item's result; any API error is its result (a
429 was re-sent first by the retry policy, as the batch's options ask).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .._exceptions import VerifyError
from ..models import EnrollmentRequest, EnrollmentResult

if TYPE_CHECKING:
    from .._flow import Slot
    from ..models import AccessToken, APIResponse

# create(identity, factor_friendly_name, ttl, slot, on_send): the resource's create, with the
# service and the batch's options bound.
BatchCreate = Callable[
    [object, object, object, "Slot", Callable[[], None]], Awaitable["APIResponse[AccessToken]"]
]


def identity_text(item: object) -> str:
    """How results and the batch's accounting name an item; never raises, so none is lost."""
    if isinstance(item, EnrollmentRequest):
        item = item.identity
    if isinstance(item, str):
        return item
    try:
        return repr(item)
    except Exception:
        return f"<{type(item).__name__} (repr failed)>"


class ItemSender:
    """Sends batch items with the batch's defaults."""

    def __init__(
        self, create: BatchCreate, *, factor_friendly_name: str | None, ttl: int | None
    ) -> None:
        self._create = create
        self._friendly_name = factor_friendly_name
        self._ttl = ttl

    async def send(
        self, index: int, item: object, *, slot: Slot, on_send: Callable[[], None]
    ) -> EnrollmentResult:
        """Send one item with the slot the dispatcher took; its result, never raises.

        Args:
            index: The item's position in the input.
            item: An identity string or an `EnrollmentRequest` (or anything: a bad value is a
                `RequestValidationError` result).
            slot: The first attempt's slot; released here if the item never reaches the send
                path (a bad value).
            on_send: Called once, right before the item's first request leaves.
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
        try:
            response = await self._create(item, name, ttl, slot, on_send)
        except VerifyError as error:
            return EnrollmentResult(identity, error=error, attempts=error.attempts, index=index)
        finally:
            slot.unused()  # a no-op once the send path released it
        return EnrollmentResult(
            identity,
            access_token=response.data,
            attempts=response.attempts,
            index=index,
            possible_duplicate=response.possible_duplicate,
        )
