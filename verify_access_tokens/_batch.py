"""``create_many``: stream any number of identities through bounded concurrency.

Shape: one feeder task pulls input lazily into a queue of ``concurrency`` slots; ``concurrency``
workers take from it and send; results come back through a second bounded queue. Memory is
O(concurrency) whatever the input size, and no task is made per identity.

Every input item yields exactly one :class:`EnrollmentResult`. Per-item problems (bad input, API
errors) are results, not exceptions. ``stop()`` stops pulling input and lets in-flight requests
finish and be yielded; closing or cancelling the iteration cancels the workers, and the
identities whose request was cut off are listed in ``unfinished`` (their outcome is unknown).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self, cast

import attrs

from ._errors import RequestValidationError, VerifyError
from ._pacing import AdaptiveRate, FixedRate
from .models import EnrollmentRequest, EnrollmentResult, FactorType

if TYPE_CHECKING:
    from .client import VerifyClient

BatchInput = str | EnrollmentRequest
RateLimit = float | Literal["adaptive"] | None

_DONE = object()


@attrs.define
class BatchSummary:
    """Running totals of a batch; final once the iteration ends."""

    succeeded: int = 0
    failed: collections.Counter[str] = attrs.field(factory=collections.Counter)
    retried: int = 0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def total(self) -> int:
        return self.succeeded + sum(self.failed.values())

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return end - self.started_at

    @property
    def rate(self) -> float:
        """Completed items per second."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def record(self, result: EnrollmentResult) -> None:
        if result.error is None:
            self.succeeded += 1
        else:
            self.failed[type(result.error).__name__] += 1
        self.retried += max(0, result.attempts - 1)


def make_pacer(rate_limit: RateLimit) -> FixedRate | None:
    if rate_limit is None:
        return None
    if rate_limit == "adaptive":
        return AdaptiveRate()
    if isinstance(rate_limit, bool) or not isinstance(rate_limit, int | float) or rate_limit <= 0:
        raise RequestValidationError(
            "rate_limit", "must be None, a positive number of requests/s, or 'adaptive'"
        )
    return FixedRate(rate_limit)


class EnrollmentBatch:
    """An async iterator of :class:`EnrollmentResult`, one per input item.

    Use ``async for result in batch`` (or ``async with batch: ...`` to guarantee clean-up even
    when you keep a reference). ``summary`` has running totals; ``stop()`` ends it gracefully.
    """

    def __init__(
        self,
        client: VerifyClient,
        service_sid: str,
        identities: Iterable[BatchInput] | AsyncIterable[BatchInput],
        *,
        concurrency: int,
        rate_limit: RateLimit,
        factor_type: FactorType | str,
        factor_friendly_name: str | None,
        ttl: int | None,
        ordered: bool,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise RequestValidationError("concurrency", "must be an int >= 1")
        self.pacer = make_pacer(rate_limit)
        self._client = client._with_observer(self.pacer) if self.pacer else client
        self._service_sid = service_sid
        self._input = identities
        self._concurrency = concurrency
        self._factor_type = factor_type
        self._friendly_name = factor_friendly_name
        self._ttl = ttl
        self._ordered = ordered
        self._stopping = False
        self._in_flight: dict[int, str] = {}
        self._input_error: BaseException | None = None
        self.summary = BatchSummary()
        self.unfinished: tuple[str, ...] = ()
        self._iterator: weakref.ref[AsyncGenerator[EnrollmentResult, None]] | None = None
        self._held: AsyncGenerator[EnrollmentResult, None] | None = None

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Take no more input; requests already in flight finish and are yielded."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
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

    async def aclose(self) -> None:
        """Cancel whatever is still running. Idempotent."""
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is not None:
            await iterator.aclose()

    # -- machinery -------------------------------------------------------------------------
    async def _items(self) -> AsyncIterator[BatchInput]:
        source = self._input
        if isinstance(source, AsyncIterable):
            async for item in source:
                yield item
        else:
            for item in source:
                yield item

    async def _feed(self, inbox: asyncio.Queue[object], window: asyncio.Semaphore | None) -> None:
        index = 0
        try:
            if not self._stopping:
                async for item in self._items():
                    if window is not None:
                        await window.acquire()
                    await inbox.put((index, item))
                    index += 1
                    if self._stopping:
                        break
        except Exception as exc:  # the caller's iterator failed: finish in-flight, then re-raise
            self._input_error = exc
        for _ in range(self._concurrency):
            await inbox.put(_DONE)

    async def _work(self, inbox: asyncio.Queue[object], outbox: asyncio.Queue[object]) -> None:
        try:
            while (job := await inbox.get()) is not _DONE:
                index, item = cast(tuple[int, object], job)
                self._in_flight[index] = _identity_text(item)
                result = await self._enrol(index, item)
                del self._in_flight[index]
                await outbox.put(result)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug: end the batch with it rather than lose it
            await outbox.put(exc)
        await outbox.put(_DONE)

    async def _enrol(self, index: int, item: object) -> EnrollmentResult:
        identity = _identity_text(item)
        if isinstance(item, EnrollmentRequest):
            name = item.factor_friendly_name or self._friendly_name
            ttl = item.ttl if item.ttl is not None else self._ttl
            item = item.identity
        else:
            name, ttl = self._friendly_name, self._ttl
        if not isinstance(item, str):
            error = RequestValidationError(
                "identity",
                f"batch items must be str or EnrollmentRequest, not {type(item).__name__}",
            )
            return EnrollmentResult(identity, error=error, attempts=0, index=index)
        try:
            response = await self._client.access_tokens.create_with_http_info(
                self._service_sid,
                identity=item,
                factor_type=self._factor_type,
                factor_friendly_name=name,
                ttl=ttl,
            )
        except VerifyError as error:
            return EnrollmentResult(identity, error=error, attempts=error.attempts, index=index)
        return EnrollmentResult(
            identity, token=response.data, attempts=response.attempts, index=index
        )

    async def _run(self) -> AsyncGenerator[EnrollmentResult, None]:
        size = self._concurrency
        inbox: asyncio.Queue[object] = asyncio.Queue(size)
        outbox: asyncio.Queue[object] = asyncio.Queue(size)
        # In input order, results wait for their predecessors; the window bounds how far the
        # feeder may run ahead, so a slow first item cannot make the buffer grow without end.
        window = asyncio.Semaphore(size * 4) if self._ordered else None
        tasks = [asyncio.create_task(self._feed(inbox, window))]
        tasks += [asyncio.create_task(self._work(inbox, outbox)) for _ in range(size)]
        self.summary.started_at = time.perf_counter()
        pending: list[tuple[int, EnrollmentResult]] = []
        next_index = 0
        running = size
        try:
            while running:
                got = await outbox.get()
                if got is _DONE:
                    running -= 1
                    continue
                if isinstance(got, BaseException):
                    raise got
                assert isinstance(got, EnrollmentResult)
                if window is None:
                    self.summary.record(got)
                    yield got
                    continue
                heapq.heappush(pending, (got.index, got))
                while pending and pending[0][0] == next_index:
                    _, ready = heapq.heappop(pending)
                    next_index += 1
                    window.release()
                    self.summary.record(ready)
                    yield ready
            if self._input_error is not None:
                raise self._input_error
        finally:
            self.summary.finished_at = time.perf_counter()
            self.unfinished = tuple(self._in_flight[i] for i in sorted(self._in_flight))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _identity_text(item: object) -> str:
    if isinstance(item, EnrollmentRequest):
        item = item.identity
    return item if isinstance(item, str) else repr(item)
