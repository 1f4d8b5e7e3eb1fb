"""``create_many``: stream any number of identities through the client's flow control.

Shape: one dispatcher takes the next input item only once it has its turn (the batch's gate,
then a slot of the client's limiter), so nothing is read ahead, and starts a task for it; the
item's first attempt uses that slot. A window bounds items taken whose result the consumer has
not asked past, so memory is O(window) whatever the input size, and an unused slot of
``concurrency`` costs nothing.

Every input item yields exactly one `EnrollmentResult`. Per-item problems (bad input of
any type, API errors) are results, not exceptions; a 429 (not processed) is re-sent by the
retry policy behind the other waiters rather than failed. ``stop()`` closes the gate: no more
input is read, and sent items end with their current answer; ending the iteration early
(``break``, ``aclose()``, cancellation) cancels the tasks: finished results not yet yielded are
kept in ``undelivered``, the identities whose request was handed to the network are listed in
``unfinished``, and those cut off before it in ``not_sent``.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
)
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self, cast

from .._core._validation import is_int
from .._exceptions import RequestValidationError
from .._flow import Gate, Slot, TurnRefused
from ..models import EnrollmentResult
from ._input import END, BatchInput, InputReader
from ._item import BatchCreate, ItemSender, identity_text
from ._results import Results
from ._summary import BatchSummary

if TYPE_CHECKING:
    from .._flow import Limiter

# Re-exported: callers take the batch API from this module.
__all__ = ["BatchInput", "BatchSummary", "Concurrency", "EnrollmentBatch"]

Concurrency = int | Literal["adaptive"]

# The window of concurrency="adaptive" when nothing else bounds the client (no pool bound).
ADAPTIVE_WINDOW_MAX = 10_000


class _HookFailed(Exception):
    """The caller's ``on_send`` raised ``error``: carried past the item's own error handling."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()
_CLOSE = object()  # aclose() from another task: wakes the consumer's wait for a result


def check_concurrency(concurrency: object) -> Concurrency:
    if concurrency == "adaptive" or (is_int(concurrency) and concurrency >= 1):
        return concurrency
    raise RequestValidationError("concurrency", "must be 'adaptive' or an int >= 1")


class EnrollmentBatch:
    """An async iterator of `EnrollmentResult`, one per input item.

    Use ``async for result in batch`` (or ``async with batch: ...`` to guarantee clean-up even
    when you keep a reference). ``summary`` has running totals; ``stop()`` ends it gracefully.

    Every item taken from the input ends in exactly one place: yielded; in ``undelivered``
    (finished, token included, but not yielded because the iteration ended early: a ``break``,
    ``aclose()`` or a cancellation); in ``unfinished`` (its request was handed to the network
    and cut off, so its outcome is unknown); or in ``not_sent`` (cut off before its request
    left: safe to send again). Items never taken from the input are in none of them. An item
    is taken only when it can be sent at once, and never after a ``break``. The tuples are
    complete once the iteration is closed: on leaving ``async with batch``, on return from
    ``await batch.aclose()``, or, after a bare ``break``, once the event loop's async generator
    finalizer has run.

    Attributes:
        summary (BatchSummary): Running totals: succeeded, failed by error class, retried,
            elapsed, rate.
        undelivered (tuple[EnrollmentResult, ...]): Finished results that were not yielded
            because the iteration ended early.
        unfinished (tuple[str, ...]): Identities whose request was handed to the network and
            that were cut off before their result: their outcome is unknown (an answer that
            made nothing, such as a 429, may have come before the cut).
        not_sent (tuple[str, ...]): Identities taken from the input but cut off before their
            request left: nothing was sent for them.
    """

    def __init__(
        self,
        create: BatchCreate,
        limiter: Limiter,
        gate: Gate,
        identities: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: Concurrency,
        factor_friendly_name: str | None,
        ttl: int | None,
        ordered: bool,
        on_send: Callable[[str], None] | None = None,
    ) -> None:
        """Build a batch; `AccessTokens.create_many` is the way to make one.

        Args:
            create: Sends one item: the resource's create with the service and the batch's
                options bound.
            limiter: The client's flow control; each item is taken only once it has a slot.
            gate: The batch's pace and stop, passed before every attempt of its items.
            identities: Identity strings or `EnrollmentRequest` items, sync or async, read
                lazily.
            concurrency: ``"adaptive"`` (as many in flight as the limiter allows) or the
                most requests of this batch in flight, an ``int`` >= 1.
            factor_friendly_name: Friendly name of the items without their own.
            ttl: Token lifetime of the items without their own.
            ordered: Yield results in input order instead of completion order.
            on_send: Called with each identity right before its first request leaves.

        Raises:
            RequestValidationError: ``concurrency`` is neither ``"adaptive"`` nor an ``int``
                >= 1.
        """
        concurrency = check_concurrency(concurrency)
        self._limiter = limiter
        self._gate = gate
        self._input = InputReader(identities, gate)
        self._size = (
            int(min(limiter.maximum, ADAPTIVE_WINDOW_MAX))
            if concurrency == "adaptive"
            else concurrency
        )
        self._ordered = ordered
        self._on_send = on_send
        self._sender = ItemSender(create, factor_friendly_name=factor_friendly_name, ttl=ttl)
        self._taken = 0
        self._in_flight: dict[int, str] = {}  # taken, not finished: identity by input index
        self._sent: set[int] = set()  # of those, the ones whose request was handed over
        self._finished: dict[int, EnrollmentResult] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.summary = BatchSummary()
        self.unfinished: tuple[str, ...] = ()
        self.undelivered: tuple[EnrollmentResult, ...] = ()
        self.not_sent: tuple[str, ...] = ()
        self._iterator: weakref.ref[Results] | None = None
        self._held: Results | None = None
        self._closing = False  # aclose() was called: the consumer's next wake ends the loop
        # Set once the iteration has ended and the accounting is final; None until it starts.
        self._ended: asyncio.Event | None = None
        # Results come to the consumer through this queue; aclose() from another task posts
        # _CLOSE on it to wake a consumer waiting for a result.
        self._ready: asyncio.Queue[object] | None = None

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """End the batch gracefully: take no more input, and let what was sent finish.

        After ``stop()`` no further item is read from the input, and a wait for the next input
        item ends (that item is not taken). An item is taken only when it can be sent at once,
        so every item taken was sent: it finishes with its current answer (no further retry
        or re-queue) and is yielded as usual. The iteration then ends normally.
        """
        self._gate.close()

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._gate.closed

    def __aiter__(self) -> AsyncIterator[EnrollmentResult]:
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is None:
            if self._iterator is not None:
                raise RuntimeError("this batch has already been consumed")
            iterator = Results(self._run())
            # A weak reference: the generator's frame holds this batch, so a strong one would
            # make a cycle, and an abandoned `async for` would then be cleaned up only by a
            # later garbage collection instead of at once by the loop's async-gen finalizer.
            self._iterator = weakref.ref(iterator)
        return iterator

    async def __aenter__(self) -> Self:
        # Held strongly inside the block, so that __aexit__ can close it deterministically.
        self._held = cast(Results, self.__aiter__())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
        self._held = None

    @property
    def _abandoned(self) -> bool:
        """Whether the consumer dropped the iteration (a bare ``break``).

        Its generator is gone even before the loop's finalizer closes it, so no further item
        may be taken.
        """
        return self._iterator is not None and self._iterator() is None

    async def aclose(self) -> None:
        """Cancel whatever is still running; on return the accounting is complete. Idempotent.

        May be called from any task at any moment: a consumer waiting for a result, or about
        to ask for the next one, sees its loop end. After a bare ``break`` the abandoned
        iteration is closed by the event loop's async generator finalizer, soon but not at
        once; ``aclose()`` waits for it.
        """
        self._closing = True
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is not None:
            iterator.shut()
            if iterator.running and self._ready is not None:
                # A consumer waits inside the generator (or a close runs): wake it; it ends.
                self._ready.put_nowait(_CLOSE)
            else:
                await iterator.aclose()
        if self._ended is not None:
            await self._ended.wait()

    # -- machinery -------------------------------------------------------------------------
    async def _dispatch(
        self, window: asyncio.Semaphore, running: asyncio.Semaphore, ready: asyncio.Queue[object]
    ) -> None:
        try:
            while True:
                await window.acquire()
                if self._closing or self._abandoned:
                    return
                await running.acquire()  # at most `concurrency` in flight, in input order too
                try:
                    slot = await self._limiter.acquire(gate=self._gate)
                except TurnRefused:
                    return  # stop()
                try:
                    item = await self._input.take()
                except BaseException:
                    slot.unused()  # cut off while waiting for input: the slot carried nothing
                    raise
                if item is END:
                    slot.unused()
                    return
                index = self._taken
                self._taken += 1
                self._in_flight[index] = identity_text(item)
                task = asyncio.create_task(self._enroll(index, item, slot, ready))
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._ran, slot, running))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug: end the batch with it rather than lose it
            ready.put_nowait(exc)
        finally:
            await self._input.aclose()
            ready.put_nowait(_DONE)

    def _ran(self, slot: Slot, running: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
        """An item's task ended, even one cancelled before it started: its slot is free."""
        self._tasks.discard(task)
        slot.unused()  # a no-op when its request already released it
        running.release()

    def _sending(self, index: int) -> None:
        """The item's first request is handed to the network now."""
        self._sent.add(index)
        if self._on_send is not None:
            try:
                self._on_send(self._in_flight[index])
            except BaseException as exc:  # the caller's: it ends the batch, never an item
                raise _HookFailed(exc) from exc

    async def _enroll(
        self, index: int, item: object, slot: Slot, ready: asyncio.Queue[object]
    ) -> None:
        try:
            result = await self._sender.send(
                index, item, slot=slot, on_send=lambda: self._sending(index)
            )
        except asyncio.CancelledError:
            raise  # the iteration ended: the item stays in `unfinished` or `not_sent`
        except _HookFailed as failed:  # on_send raised: end the batch with its exception
            ready.put_nowait(failed.error)
            return
        except BaseException as exc:  # a bug: end the batch with it rather than lose it
            ready.put_nowait(exc)
            raise
        # One step, no await: the item moves from in flight to finished-not-delivered.
        del self._in_flight[index]
        self._sent.discard(index)
        self._finished[index] = result
        ready.put_nowait(index)

    async def _run(self) -> AsyncGenerator[EnrollmentResult, None]:
        # The window bounds items taken whose result the consumer has not asked past: in
        # flight, finished and waiting, or just yielded (a slot frees when the consumer asks
        # for the next result), so a slow consumer slows the sending and stop() leaves at
        # most `concurrency` results to come. In input order results also wait for their
        # predecessors: a wider window keeps one slow item from stalling the others.
        window = asyncio.Semaphore(self._size * 4 if self._ordered else self._size)
        ready: asyncio.Queue[object] = asyncio.Queue()
        self._ready = ready
        self._ended = asyncio.Event()
        running = asyncio.Semaphore(self._size)
        dispatcher = asyncio.create_task(self._dispatch(window, running, ready))
        self.summary.started_at = time.perf_counter()
        next_index = 0
        dispatching = True
        try:
            while dispatching or self._in_flight or self._finished:
                got = await ready.get()
                if self._closing:
                    return
                if got is _DONE:
                    dispatching = False
                    continue
                if isinstance(got, BaseException):
                    raise got
                index = cast(int, got) if not self._ordered else next_index
                while index in self._finished:
                    # Removed only when handed over: a result still here when the iteration
                    # ends early is reported in `undelivered`, never lost.
                    result = self._finished.pop(index)
                    self.summary.record(result)
                    yield result
                    # Its slot frees only when the consumer asks for more: once it stops
                    # iterating (a `break`), no further item is taken from the input.
                    window.release()
                    if not self._ordered:
                        break
                    next_index += 1
                    index = next_index
            if self._input.error is not None:
                raise self._input.error
        finally:
            await self._end(dispatcher)

    async def _end(self, dispatcher: asyncio.Task[None]) -> None:
        """Cancel what runs, then make the accounting final (even if cut short again)."""
        assert self._ended is not None
        self.summary.finished_at = time.perf_counter()
        tasks = [dispatcher, *self._tasks]
        for task in tasks:
            task.cancel()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            # Even when a second cancellation cuts the wait short: the accounting is
            # recorded, and aclose() never waits for an end that cannot come.
            cut = sorted(self._in_flight)
            self.unfinished = tuple(self._in_flight[i] for i in cut if i in self._sent)
            self.not_sent = tuple(self._in_flight[i] for i in cut if i not in self._sent)
            self.undelivered = tuple(self._finished[i] for i in sorted(self._finished))
            self._ended.set()
