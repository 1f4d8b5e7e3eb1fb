"""``create_many``: stream any number of identities through bounded concurrency.

Shape: ``concurrency`` workers each read the next input item only when they are free to send it
(nothing is read ahead), and hand finished results to the iteration. A window bounds items taken
whose result the consumer has not asked past, so memory is O(concurrency) whatever the input
size, and no task is made per identity; a consumer that stops asking stops the taking.

Every input item yields exactly one `EnrollmentResult`. Per-item problems (bad input of
any type, API errors) are results, not exceptions. ``stop()`` stops reading input and lets
in-flight requests finish and be yielded; ending the iteration early (``break``, ``aclose()``,
cancellation) cancels the workers: finished results not yet yielded are kept in ``undelivered``
and the identities whose request was cut off are listed in ``unfinished`` (outcome unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import types
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self, cast

from .._core._errors import RequestValidationError, VerifyError
from .._core._validation import is_int, is_number
from ..models import EnrollmentRequest, EnrollmentResult, FactorType
from ._pacer import AdaptivePacer, FixedPacer
from ._summary import BatchSummary

if TYPE_CHECKING:
    from ..models import AccessToken, APIResponse

# BatchSummary is re-exported: callers take the batch API from this module.
__all__ = ["BatchInput", "BatchSummary", "EnrollmentBatch", "RateLimit"]

BatchInput = str | EnrollmentRequest
RateLimit = float | Literal["adaptive"] | None

_DONE = object()
_CLOSE = object()  # aclose() from another task: end the iteration as if closed
_STOP_READING = "stop() ends the wait for input"


def make_pacer(rate_limit: RateLimit, pause_max: float = float("inf")) -> FixedPacer | None:
    if rate_limit is None:
        return None
    if rate_limit == "adaptive":
        return AdaptivePacer(pause_max=pause_max)
    if not is_number(rate_limit) or not 0 < rate_limit < math.inf:  # nan fails the comparison
        raise RequestValidationError(
            "rate_limit", "must be None, a positive finite number of requests/s, or 'adaptive'"
        )
    return FixedPacer(rate_limit)


class EnrollmentBatch:
    """An async iterator of `EnrollmentResult`, one per input item.

    Use ``async for result in batch`` (or ``async with batch: ...`` to guarantee clean-up even
    when you keep a reference). ``summary`` has running totals; ``stop()`` ends it gracefully.

    Every item taken from the input ends in exactly one place: yielded; in ``undelivered``
    (finished, token included, but not yielded because the iteration ended early: a ``break``,
    ``aclose()`` or a cancellation); or in ``unfinished`` (its request was cut off, so its
    outcome is unknown). Items never taken from the input are in none of them. After a
    ``break`` no further item is taken; the two tuples are complete once the iteration is
    closed: on leaving ``async with batch``, on return from ``await batch.aclose()``, or,
    after a bare ``break``, once the event loop's async generator finalizer has run.
    """

    def __init__(
        self,
        create: Callable[..., Awaitable[APIResponse[AccessToken]]],
        pacer: FixedPacer | None,
        service_sid: str,
        identities: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: int,
        factor_type: FactorType | str,
        factor_friendly_name: str | None,
        ttl: int | None,
        ordered: bool,
    ) -> None:
        """Build a batch; `AccessTokens.create_many` is the way to make one.

        Args:
            create: The ``create_with_http_info`` each item is sent with.
            pacer: Paces every attempt, or ``None`` for no rate limit.
            service_sid: The Verify Service, already checked.
            identities: Identity strings or `EnrollmentRequest` items, sync or async, read
                lazily.
            concurrency: Most requests in flight at once, an ``int`` >= 1.
            factor_type: Factor type of every item.
            factor_friendly_name: Friendly name of the items without their own.
            ttl: Token lifetime of the items without their own.
            ordered: Yield results in input order instead of completion order.

        Raises:
            RequestValidationError: ``concurrency`` is not an ``int`` >= 1.
        """
        if not is_int(concurrency) or concurrency < 1:
            raise RequestValidationError("concurrency", "must be an int >= 1")
        self.pacer = pacer
        self._create = create  # create_with_http_info of a resource whose client has the pacer
        self._service_sid = service_sid
        self._input = identities
        self._concurrency = concurrency
        self._factor_type = factor_type
        self._friendly_name = factor_friendly_name
        self._ttl = ttl
        self._ordered = ordered
        self._stopping = False
        self._exhausted = False
        self._taken = 0
        self._in_flight: dict[int, str] = {}
        self._finished: dict[int, EnrollmentResult] = {}
        self._input_error: BaseException | None = None
        self.summary = BatchSummary()
        self.unfinished: tuple[str, ...] = ()
        self.undelivered: tuple[EnrollmentResult, ...] = ()
        # Called with each identity before it is sent: enroll's write-ahead.
        self._on_send: Callable[[str], None] | None = None
        self._iterator: weakref.ref[AsyncGenerator[EnrollmentResult, None]] | None = None
        self._held: AsyncGenerator[EnrollmentResult, None] | None = None
        # Set once the iteration has ended and `undelivered`/`unfinished` are final; None
        # until the iteration starts.
        self._ended: asyncio.Event | None = None
        # The worker waiting on the input for the next item (one at a time, under the lock):
        # stop() cancels that wait, so an input that has nothing to give cannot hold the batch.
        self._reader: asyncio.Task[object] | None = None
        # Results come to the consumer through this queue; aclose() from another task posts
        # _CLOSE on it, since a running generator cannot be closed from outside.
        self._ready: asyncio.Queue[object] | None = None

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """End the batch gracefully: take no more input, and let what was taken finish.

        After ``stop()`` no further item is read from the input, so at most ``concurrency``
        more requests are sent and (in completion order) at most ``concurrency`` more results
        are yielded: those of the items already taken. They are yielded as usual,
        except for requests still waiting in the rate limiter's pause: those are not sent and
        end at once as a `BatchStoppedError` result. A wait for the next input item ends too
        (that item is not taken). The iteration then ends normally.
        """
        self._stopping = True
        if self.pacer is not None:
            self.pacer.interrupt()
        reader, self._reader = self._reader, None  # cancelled once, however often stop() is called
        if reader is not None:
            reader.cancel(_STOP_READING)

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping

    def __aiter__(self) -> AsyncGenerator[EnrollmentResult, None]:
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is None:
            if self._iterator is not None:
                raise RuntimeError("this batch has already been consumed")
            iterator = self._run()
            # A weak reference: the generator's frame holds this batch, so a strong one would
            # make a cycle, and an abandoned `async for` would then be cleaned up only by a
            # later garbage collection instead of at once by the loop's async-gen finalizer.
            self._iterator = weakref.ref(iterator)
        return iterator

    async def __aenter__(self) -> Self:
        # Held strongly inside the block, so that __aexit__ can close it deterministically.
        self._held = self.__aiter__()
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

        Its generator is gone even before the loop's finalizer closes it, so no worker may take
        another item.
        """
        return self._iterator is not None and self._iterator() is None

    async def aclose(self) -> None:
        """Cancel whatever is still running; on return the accounting is complete. Idempotent.

        After a bare ``break`` the abandoned iteration is closed by the event loop's async
        generator finalizer, soon but not at once; ``aclose()`` waits for it. Called from
        another task while the consumer iterates (or twice at once), it ends the consumer's
        loop and waits for the clean-up.
        """
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is not None:
            running = cast(types.AsyncGeneratorType[EnrollmentResult, None], iterator).ag_running
            if running and self._ready is not None:
                # Iterated by another task, or being closed by a concurrent aclose(): ask it
                # to end, and wait below for its clean-up.
                self._ready.put_nowait(_CLOSE)
            else:
                await iterator.aclose()
        if self._ended is not None:
            await self._ended.wait()

    # -- machinery -------------------------------------------------------------------------
    async def _items(self) -> AsyncIterator[BatchInput]:
        source = self._input
        if isinstance(source, AsyncIterable):
            async for item in source:
                yield item
        else:
            for item in source:
                yield item

    async def _take(
        self, items: AsyncIterator[BatchInput], lock: asyncio.Lock, window: asyncio.Semaphore
    ) -> tuple[int, BatchInput] | None:
        """The next input item, read only when a worker is free to send it at once.

        Nothing is read ahead, so ``stop()`` leaves no taken-but-unsent item behind, and an
        item is registered as in flight in the same step as it is taken from the input.
        """
        await window.acquire()
        async with lock:
            if (
                self._stopping
                or self._exhausted
                or self._input_error is not None
                or self._abandoned
            ):
                window.release()
                return None
            self._reader = asyncio.current_task()
            try:
                item = await anext(items)
            except asyncio.CancelledError as cancelled:
                task = asyncio.current_task()
                assert task is not None
                if _STOP_READING in cancelled.args and task.uncancel() == 0:
                    self._exhausted = True  # the wait was stop()'s: the item never came
                elif task.cancelling() == 0:  # raised by the input itself, not a cancellation
                    self._input_error = RuntimeError("the input iterator raised CancelledError")
                else:
                    raise  # a real cancellation of this worker
                window.release()
                return None
            except StopAsyncIteration:
                self._exhausted = True
                window.release()
                return None
            except Exception as exc:  # the caller's iterator failed: finish in-flight, re-raise
                self._input_error = exc
                window.release()
                return None
            finally:
                self._reader = None
            index = self._taken
            self._taken += 1
            self._in_flight[index] = _identity_text(item)
            if self._on_send is not None:
                self._on_send(self._in_flight[index])
            return index, item

    async def _work(
        self,
        items: AsyncIterator[BatchInput],
        lock: asyncio.Lock,
        window: asyncio.Semaphore,
        ready: asyncio.Queue[object],
    ) -> None:
        try:
            while (job := await self._take(items, lock, window)) is not None:
                index, item = job
                result = await self._enroll(index, item)
                # One step, no await: the item moves from in flight to finished-not-delivered.
                del self._in_flight[index]
                self._finished[index] = result
                ready.put_nowait(index)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug: end the batch with it rather than lose it
            ready.put_nowait(exc)
        ready.put_nowait(_DONE)

    async def _enroll(self, index: int, item: object) -> EnrollmentResult:
        identity = _identity_text(item)
        name, ttl = self._friendly_name, self._ttl
        if isinstance(item, EnrollmentRequest):
            # `is not None`, not `or`: an empty name must be rejected as on create().
            if item.factor_friendly_name is not None:
                name = item.factor_friendly_name
            if item.ttl is not None:
                ttl = item.ttl
            item = item.identity
        try:
            # Every value goes through create()'s validation: a bad one (of any type) is a
            # RequestValidationError, which becomes this item's result like any API error.
            response = await self._create(
                self._service_sid,
                identity=cast(str, item),
                factor_type=self._factor_type,
                factor_friendly_name=name,
                ttl=ttl,
            )
        except VerifyError as error:
            return EnrollmentResult(identity, error=error, attempts=error.attempts, index=index)
        return EnrollmentResult(
            identity, access_token=response.data, attempts=response.attempts, index=index
        )

    async def _run(self) -> AsyncGenerator[EnrollmentResult, None]:
        size = self._concurrency
        # The window bounds items taken whose result the consumer has not asked past: in
        # flight, finished and waiting, or just yielded (a slot frees when the consumer asks
        # for the next result), so a slow consumer slows the sending and stop() leaves at
        # most `concurrency` results to come. In input order results also wait for their
        # predecessors: a wider window keeps one slow item from stalling the others. Memory is
        # O(concurrency) whatever the input size.
        window = asyncio.Semaphore(size * 4 if self._ordered else size)
        ready: asyncio.Queue[object] = asyncio.Queue()
        self._ready = ready
        lock = asyncio.Lock()
        self._ended = asyncio.Event()
        items = self._items()
        tasks = [asyncio.create_task(self._work(items, lock, window, ready)) for _ in range(size)]
        self.summary.started_at = time.perf_counter()
        next_index = 0
        running = size
        try:
            while running:
                got = await ready.get()
                if got is _DONE:
                    running -= 1
                    continue
                if got is _CLOSE:
                    return
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
            if self._input_error is not None:
                raise self._input_error
        finally:
            self.summary.finished_at = time.perf_counter()
            for task in tasks:
                task.cancel()
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await cast(AsyncGenerator[BatchInput, None], items).aclose()
            finally:
                # Even when a second cancellation cuts the wait short: the accounting is
                # recorded, and aclose() never waits for an end that cannot come.
                self.unfinished = tuple(self._in_flight[i] for i in sorted(self._in_flight))
                self.undelivered = tuple(self._finished[i] for i in sorted(self._finished))
                self._ended.set()


def _identity_text(item: object) -> str:
    """How results and ``unfinished`` name an item; never raises, so no taken item is lost."""
    if isinstance(item, EnrollmentRequest):
        item = item.identity
    if isinstance(item, str):
        return item
    try:
        return repr(item)
    except Exception:
        return f"<{type(item).__name__} (repr failed)>"
