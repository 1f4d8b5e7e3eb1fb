"""Re-queueing a batch item that was answered 429, while the batch makes progress.

Twilio answers 429 (code 20429) when the account has its limit of requests in flight, and such
a request "was not processed": it is safe to send again. So in a batch a 429 is not a failure
but a place back in the queue: after a short jittered pause the item waits for a slot of the
client's limiter (which has just cut its window) behind the other waiters. It is bounded three
ways: an item's own 429s (`PATIENCE`), the batch's 429s in a row with no success in between for
`NO_PROGRESS_SECONDS` (a server that only says 429 is not contention), and the client's deadline
counted from the item's first send. ``stop()`` ends the pause and the wait at once.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .._core._errors import RateLimitError
    from .._flow import Limiter

# 429s one item may meet and still be re-queued; past it, the 429 is its result.
PATIENCE: Final = 20
# 429s in a row across the batch, with no item succeeding in between, past which a 429 is final
# once the batch has also gone this many seconds without a success: a count alone would end
# items in one burst of contention (a few processes starting together send more than 100 at
# once, all answered 429 in one round trip).
NO_PROGRESS: Final = 100
NO_PROGRESS_SECONDS: Final = 10.0
# The pause before re-queueing: jittered, doubling from 0.1 s up to 2 s (the limiter paces).
_PAUSE_FIRST: Final = 0.1
_PAUSE_MAX: Final = 2.0


class Requeue:
    """The batch's side: its run of 429s, the stop signal, the shared bounds."""

    def __init__(self, limiter: Limiter, deadline: float | None, retry_after_max: float) -> None:
        self.limiter = limiter
        self.deadline = deadline
        self.retry_after_max = retry_after_max
        self.rate_limited_in_a_row = 0
        # The last success, or the first 429 before any (the loop's clock).
        self.progress_at: float | None = None
        self.stopped = asyncio.Event()

    def stop(self) -> None:
        self.stopped.set()

    def progress(self) -> None:
        """An item succeeded: the batch is moving, 429s are contention again."""
        self.rate_limited_in_a_row = 0
        self.progress_at = asyncio.get_running_loop().time()

    def stalled(self, now: float) -> bool:
        """Whether only 429s came for long enough that the server is not merely busy."""
        if self.progress_at is None:
            self.progress_at = now
        return (
            self.rate_limited_in_a_row > NO_PROGRESS
            and now - self.progress_at >= NO_PROGRESS_SECONDS
        )

    def item(self) -> ItemRequeue:
        return ItemRequeue(self)


class ItemRequeue:
    """One item's side: its own count of 429s and when it was first sent."""

    def __init__(self, batch: Requeue) -> None:
        self._batch = batch
        self._count = 0
        self._started = asyncio.get_running_loop().time()

    async def wait(self, error: RateLimitError, *, take_slot: bool) -> bool:
        """Pause, then take a limiter slot for the next attempt; False if the 429 is final.

        Args:
            error: The 429.
            take_slot: Take the slot here (unpaced); a paced item's transport takes it.
        """
        batch = self._batch
        batch.rate_limited_in_a_row += 1
        self._count += 1
        loop = asyncio.get_running_loop()
        pause = random.uniform(0.5, 1.0) * min(_PAUSE_FIRST * 2 ** (self._count - 1), _PAUSE_MAX)
        if error.retry_after is not None:  # a per-second limit's pause, as the pacer honours
            pause = max(pause, min(error.retry_after, batch.retry_after_max, _PAUSE_MAX))
        deadline_at = None if batch.deadline is None else self._started + batch.deadline
        if (
            self._count > PATIENCE
            or batch.stalled(loop.time())
            or batch.stopped.is_set()
            or (deadline_at is not None and loop.time() + pause >= deadline_at)
        ):
            return False
        stopped = asyncio.ensure_future(batch.stopped.wait())
        slot = asyncio.ensure_future(self._slot_after(pause, deadline_at, take_slot))
        try:
            await asyncio.wait((stopped, slot), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not slot.done():
                slot.cancel()
                await asyncio.gather(slot, return_exceptions=True)
        # False when stopped, or when the deadline ran out waiting.
        return not slot.cancelled() and slot.exception() is None

    async def _slot_after(self, pause: float, deadline_at: float | None, take: bool) -> None:
        await asyncio.sleep(pause)
        if take:
            await self._batch.limiter.acquire(deadline_at)
