"""Taking a batch's items from the caller's input, one at a time, once each has its turn.

The dispatcher takes the item's slot first, so an item is read only when it can be sent at
once: nothing is read ahead. ``stop()`` (the batch's gate closing) also ends a wait for the
input itself (an async input with nothing to give yet), and a failing input is kept to be
raised once what was taken has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from typing import Final

from .._flow import Gate, TurnRefused
from ..models import EnrollmentRequest

BatchInput = str | EnrollmentRequest

END: Final = object()  # what `take` returns when no further item is to be taken


class InputReader:
    """The caller's sync or async iterable, read lazily by one task at a time."""

    def __init__(
        self, source: Iterable[BatchInput] | AsyncIterable[BatchInput], gate: Gate
    ) -> None:
        """Read ``source`` lazily.

        Args:
            source: The caller's items.
            gate: The batch's gate: once closed, a wait for the next item ends.
        """
        self._source = source
        self._gate = gate
        self._items = self._iterate()
        self.error: BaseException | None = None  # the input's own failure, raised at the end

    async def _iterate(self) -> AsyncGenerator[BatchInput, None]:
        source = self._source
        if isinstance(source, AsyncIterable):
            async for item in source:
                yield item
        else:
            for item in source:
                yield item

    async def take(self) -> object:
        """The next item, or `END` (the input is exhausted or failed, or the gate closed)."""
        try:
            return await self._gate.hold(anext(self._items))
        except TurnRefused:
            return END  # stop() ended the wait: the item never came
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling() == 0:  # raised by the input itself
                self.error = RuntimeError("the input iterator raised CancelledError")
                return END
            raise  # a real cancellation of the taker
        except StopAsyncIteration:
            return END
        except Exception as exc:  # the caller's iterator failed: finish what was taken, re-raise
            self.error = exc
            return END

    async def aclose(self) -> None:
        """Close the input (its ``finally`` blocks run); its errors are not the batch's."""
        with contextlib.suppress(Exception):
            await self._items.aclose()
