"""Taking a batch's items from the caller's input, one at a time, each with a limiter slot.

The slot comes first, so an item is taken only when it can be sent at once: nothing is read
ahead, and ``stop()`` leaves hardly any taken-but-unsent item behind. ``stop()`` also ends a
wait for the input itself (an async input with nothing to give yet), and a failing input is
kept to be raised once what was taken has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from typing import TYPE_CHECKING, Final

from ..models import EnrollmentRequest

if TYPE_CHECKING:
    from .._flow import Limiter

BatchInput = str | EnrollmentRequest

END: Final = object()  # what `take` returns when no further item is to be taken
_STOP: Final = "stop() ends the wait"


class InputReader:
    """The caller's sync or async iterable, read lazily by one task at a time."""

    def __init__(
        self, source: Iterable[BatchInput] | AsyncIterable[BatchInput], limiter: Limiter | None
    ) -> None:
        """Read ``source`` lazily.

        Args:
            source: The caller's items.
            limiter: Take a slot of it before each item; ``None`` under a rate limit, whose
                requests wait for the pacer holding no slot.
        """
        self._source = source
        self._limiter = limiter
        self._items = self._iterate()
        self.error: BaseException | None = None  # the input's own failure, raised at the end
        self._waiting: asyncio.Task[object] | None = None

    async def _iterate(self) -> AsyncGenerator[BatchInput, None]:
        source = self._source
        if isinstance(source, AsyncIterable):
            async for item in source:
                yield item
        else:
            for item in source:
                yield item

    def stop(self) -> None:
        """End the current wait for a slot or an item, once, however often it is called."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.cancel(_STOP)

    async def take(self) -> object:
        """A slot of the limiter, then the next item (the slot is the caller's); or `END`."""
        limiter = self._limiter
        task = asyncio.current_task()
        assert task is not None
        self._waiting = task
        try:
            if limiter is None:
                return await anext(self._items)
            await limiter.acquire()
            try:
                return await anext(self._items)
            except BaseException:
                limiter.release_unused()
                raise
        except asyncio.CancelledError as cancelled:
            if _STOP in cancelled.args and task.uncancel() == 0:
                return END  # the wait was stop()'s: the item never came
            if task.cancelling() == 0:  # raised by the input itself, not a cancellation
                self.error = RuntimeError("the input iterator raised CancelledError")
                return END
            raise  # a real cancellation of the taker
        except StopAsyncIteration:
            return END
        except Exception as exc:  # the caller's iterator failed: finish what was taken, re-raise
            self.error = exc
            return END
        finally:
            self._waiting = None

    async def aclose(self) -> None:
        """Close the input (its ``finally`` blocks run); its errors are not the batch's."""
        with contextlib.suppress(Exception):
            await self._items.aclose()
