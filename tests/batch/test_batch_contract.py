"""The batch contract: every item taken from the input is accounted for, whatever ends the run.

Each item ends in exactly one of: a yielded result, ``undelivered`` (finished, token kept) or
``unfinished`` (cut off in flight). Checked against the tokens the emulator really created.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID

from verify_access_tokens import (
    APITimeoutError,
    ConfigurationError,
    EnrollmentBatch,
    EnrollmentRequest,
    EnrollmentResult,
    OutcomeUnknownError,
    RateLimitError,
    RequestValidationError,
    VerifyClient,
)
from verify_access_tokens._core._constants import RATE_LIMIT_PATIENCE
from verify_access_tokens._flow import _limiter
from verify_access_tokens._flow._limiter import NO_PROGRESS
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets


class Source:
    """An endless input that counts how many items were read from it."""

    def __init__(self) -> None:
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for i in itertools.count():
            self.read += 1
            yield f"user-{i:08d}"


def endless_batch(
    emulator: VerifyEmulator, client: VerifyClient, *, concurrency: int
) -> tuple[Source, EnrollmentBatch]:
    """A batch over an endless, counting input: only how it ends bounds it."""
    source = Source()
    batch = client.access_tokens.create_many(emulator.service_sid, source, concurrency=concurrency)
    return source, batch


def assert_accounted(
    emulator: VerifyEmulator,
    source: Source,
    yielded: list[EnrollmentResult],
    batch: EnrollmentBatch,
) -> None:
    delivered = [r.identity for r in yielded]
    kept = [r.identity for r in batch.undelivered]
    cut = list(batch.unfinished)
    never_sent = list(batch.not_sent)
    everything = delivered + kept + cut + never_sent
    assert len(everything) == len(set(everything)) == source.read  # exactly one place each
    created = {t.entity_identity: t.sid for t in emulator.tokens.values()}
    assert set(created) <= set(everything)  # no created token is lost
    for result in [*yielded, *batch.undelivered]:
        assert result.access_token is not None
        assert created[result.identity] == result.access_token.sid


async def test_break_keeps_finished_results_in_undelivered(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    source, batch = endless_batch(verify_emulator, verify_client, concurrency=8)
    yielded: list[EnrollmentResult] = []
    async with batch:
        async for result in batch:
            yielded.append(result)
            await asyncio.sleep(0.02)  # a slow consumer: finished results pile up
            if len(yielded) == 20:
                break
    assert batch.undelivered  # the results that used to vanish
    assert_accounted(verify_emulator, source, yielded, batch)


async def test_cancel_keeps_finished_results_in_undelivered(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    verify_emulator.set_faults(Faults(latency=0.01))
    source, batch = endless_batch(verify_emulator, verify_client, concurrency=8)
    yielded: list[EnrollmentResult] = []

    async def consume() -> None:
        async with batch:
            async for result in batch:
                yielded.append(result)
                await asyncio.sleep(0.02)

    task = asyncio.create_task(consume())
    while len(yielded) < 20:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert batch.undelivered or batch.unfinished
    assert_accounted(verify_emulator, source, yielded, batch)


async def test_aclose_keeps_finished_results_in_undelivered(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    source, batch = endless_batch(verify_emulator, verify_client, concurrency=8)
    iterator = aiter(batch)
    yielded = [await anext(iterator) for _ in range(20)]
    async with asyncio.timeout(30):  # a hang guard only
        while not batch._finished:  # workers finish more than the consumer takes
            await asyncio.sleep(0.01)
    await batch.aclose()
    assert batch.undelivered
    assert_accounted(verify_emulator, source, yielded, batch)


async def test_stop_sends_at_most_concurrency_more_requests(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    source, batch = endless_batch(verify_emulator, verify_client, concurrency=32)
    yielded: list[EnrollmentResult] = []
    read_at_stop = requests_at_stop = 0
    async for result in batch:
        yielded.append(result)
        if len(yielded) == 100:
            batch.stop()
            read_at_stop, requests_at_stop = source.read, verify_emulator.counters.requests
    assert source.read == read_at_stop  # nothing read from the input after stop()
    assert verify_emulator.counters.requests - requests_at_stop <= 32
    assert len(yielded) - 100 <= 32
    assert batch.unfinished == ()
    assert batch.undelivered == ()
    assert_accounted(verify_emulator, source, yielded, batch)


async def test_bad_values_of_any_type_stay_per_item(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    items: list[Any] = [
        EnrollmentRequest(["not", "a", "str"]),  # type: ignore[arg-type]
        EnrollmentRequest("good-identity-1", ttl="300"),  # type: ignore[arg-type]
        EnrollmentRequest("good-identity-2", factor_friendly_name=""),
        EnrollmentRequest("good-identity-3", factor_friendly_name=7),  # type: ignore[arg-type]
        None,
        "good-identity-4",
    ]
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, items, ordered=True, factor_friendly_name="Default"
    )
    results = [r async for r in batch]
    assert [r.ok for r in results] == [False] * 5 + [True]
    fields = [r.error.field for r in results[:5] if isinstance(r.error, RequestValidationError)]
    assert fields == ["identity", "ttl", "factor_friendly_name", "factor_friendly_name", "identity"]
    assert verify_emulator.counters.requests == 1  # nothing bad was sent


@pytest.fixture
async def always_429() -> AsyncIterator[tuple[str, list[str]]]:
    """A server answering every create with 429 and ``Retry-After: 999999``."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((await request.post())["Identity"])  # type: ignore[arg-type]
        return web.json_response(
            {"code": 20429, "message": "Too Many Requests", "status": 429},
            status=429,
            headers={"Retry-After": "999999"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


async def test_a_huge_retry_after_pauses_only_up_to_retry_after_max(
    always_429: tuple[str, list[str]],
) -> None:
    base_url, seen = always_429
    async with VerifyClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=base_url, max_retries=0, retry_after_max=0.05, deadline=3
    ) as client:
        batch = client.access_tokens.create_many(
            SERVICE_SID, [f"user-{i:08d}" for i in range(6)], concurrency=2
        )
        async with asyncio.timeout(60):  # a hang guard only: uncapped, this waits 11 days
            results = [r async for r in batch]
    assert len(results) == 6
    # A 429, the deadline spent waiting for the paced re-send, or the deadline cutting a
    # re-send short: the pauses were capped, so the deadline (not Retry-After) ended them.
    assert all(
        isinstance(r.error, (RateLimitError, APITimeoutError, OutcomeUnknownError)) for r in results
    )
    # Re-sent (a 429 was not processed) within the deadline, at most its patience's worth;
    # then each item's next 429 was its result.
    assert 6 < len(seen) <= 6 * (RATE_LIMIT_PATIENCE + 1)


async def test_one_round_trip_of_more_than_100_429s_is_contention_not_failure(
    verify_emulator: VerifyEmulator,
) -> None:
    """Processes starting together can send more than 100 at once, all answered 429 in one
    round trip: every item is re-queued and created (before: the 101st 429 was a failure)."""
    verify_emulator.set_faults(Faults(reject_first=130))
    identities = [f"user-{i:08d}" for i in range(130)]
    async with verify_emulator.client(max_in_flight=130, pool_limit=130) as client:
        batch = client.access_tokens.create_many(
            verify_emulator.service_sid, identities, concurrency=130
        )
        async with asyncio.timeout(60):  # a hang guard only
            results = [r async for r in batch]
    assert verify_emulator.counters.concurrency_limited == 130  # more than NO_PROGRESS in a row
    assert NO_PROGRESS < 130
    assert sorted(r.identity for r in results if r.ok) == identities
    assert not batch.summary.failed


async def test_a_server_that_only_says_429_still_ends_the_batch(
    always_429: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past NO_PROGRESS 429s in a row and NO_PROGRESS_SECONDS with no success, each 429 is
    its item's result: no deadline is needed to end it."""
    monkeypatch.setattr(_limiter, "NO_PROGRESS_SECONDS", 0.5)
    base_url, seen = always_429
    async with VerifyClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=base_url, max_retries=0, deadline=None,
        max_in_flight=20, retry_after_max=0.01,
    ) as client:  # fmt: skip
        batch = client.access_tokens.create_many(
            SERVICE_SID, [f"user-{i:08d}" for i in range(300)], concurrency=20
        )
        async with asyncio.timeout(60):  # a hang guard only
            results = [r async for r in batch]
    assert len(results) == 300
    assert all(isinstance(r.error, RateLimitError) for r in results)
    assert len(seen) > NO_PROGRESS  # re-queued first, then final once stalled
    assert len(seen) < 300 * 3  # most items ended at their first 429 once stalled


async def test_stop_ends_paced_waits_without_sending(always_429: tuple[str, list[str]]) -> None:
    """One request per 1 000 s: the first item is sent and answered 429; its re-send and the
    next item wait for the pace. stop() ends both waits at once, and nothing more is sent."""
    base_url, seen = always_429
    async with VerifyClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=base_url, max_retries=0, retry_after_max=0.01
    ) as client:
        source = Source()
        batch = client.access_tokens.create_many(
            SERVICE_SID, source, concurrency=4, rate_limit=0.001
        )

        async def stop_once_the_first_answer_came() -> None:
            while client.flow.rate_limited < 1:
                await asyncio.sleep(0.01)
            batch.stop()

        stopper = asyncio.create_task(stop_once_the_first_answer_came())
        async with asyncio.timeout(60):  # a hang guard only: the pace is 1 000 s
            results = [result async for result in batch]
        await stopper
    assert len(seen) == 1  # neither the re-send nor the next item was sent
    assert len(results) == source.read == 1  # the waiting item was never read
    assert isinstance(results[0].error, RateLimitError)  # its one answer stands
    assert results[0].attempts == 1
    assert client.flow.in_flight == 0  # every slot was given back


@pytest.mark.parametrize("wait", ["aclose", "finalizer"])
async def test_a_bare_break_takes_nothing_more_and_is_accounted(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient, wait: str
) -> None:
    """README's loop shape (no ``async with``): once the loop is left, no item is taken from
    the input, and the accounting is complete after ``aclose()`` or the loop's finalizer."""
    verify_emulator.set_faults(Faults(latency=0.02))
    source, batch = endless_batch(verify_emulator, verify_client, concurrency=16)
    yielded: list[EnrollmentResult] = []
    async for result in batch:
        yielded.append(result)
        if len(yielded) == 3:
            break
    read_at_break = source.read
    if wait == "aclose":
        await batch.aclose()
    else:
        for _ in range(1000):  # the finalizer closes the abandoned iteration a few turns later
            if batch.undelivered or batch.unfinished:
                break
            await asyncio.sleep(0.01)
    assert source.read == read_at_break
    assert_accounted(verify_emulator, source, yielded, batch)
    accounted = len(batch.undelivered) + len(batch.unfinished) + len(batch.not_sent)
    assert len(yielded) + accounted == read_at_break


async def test_an_item_whose_repr_raises_is_still_one_result(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    items: list[Any] = ["good-identity-1", Unprintable(), "good-identity-2"]
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, items, ordered=True, concurrency=1
    )
    results = [r async for r in batch]
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, RequestValidationError)
    assert results[1].error.field == "identity"
    assert results[1].identity == "<Unprintable (repr failed)>"


async def test_aclose_returns_after_a_second_cancellation_cut_the_clean_up_short(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    verify_emulator.set_faults(Faults(latency=0.05))
    _, batch = endless_batch(verify_emulator, verify_client, concurrency=4)
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in batch:
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    await asyncio.sleep(0)  # the iteration's clean-up starts, waiting for its workers
    task.cancel()  # and is cut short
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(batch.aclose(), 30)  # a guard against hanging, not a timing check
    # Cut off on the wire, finished but not yielded, or taken and cut off before sending.
    assert len(batch.unfinished) + len(batch.undelivered) + len(batch.not_sent) >= 1


async def test_stop_ends_a_wait_for_input_that_has_nothing_to_give(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    """An async input waiting for more (a queue nobody fills) cannot hold a stopped batch."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(2):
        queue.put_nowait(f"user-{i:08d}")

    async def source() -> AsyncIterator[str]:
        while True:
            yield await queue.get()

    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, source(), concurrency=4
    )
    yielded: list[EnrollmentResult] = []
    async with asyncio.timeout(30):  # a hang guard only
        async for result in batch:
            yielded.append(result)
            batch.stop()
    assert sorted(r.identity for r in [*yielded, *batch.undelivered]) == [
        "user-00000000",
        "user-00000001",
    ]
    assert batch.unfinished == ()
    assert verify_emulator.counters.tokens_created == 2


async def test_aclose_from_another_task_ends_the_iteration_and_accounts(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    source, batch = endless_batch(verify_emulator, verify_client, concurrency=8)
    yielded: list[EnrollmentResult] = []

    async def consume() -> None:
        async for result in batch:
            yielded.append(result)
            await asyncio.sleep(0.01)  # a slow consumer

    consumer = asyncio.create_task(consume())
    while len(yielded) < 5:
        await asyncio.sleep(0.01)
    async with asyncio.timeout(30):  # a hang guard only
        await asyncio.gather(batch.aclose(), batch.aclose())  # from here, and twice at once
        await consumer  # its loop simply ended
    assert_accounted(verify_emulator, source, yielded, batch)


async def test_aclose_while_the_consumer_is_in_its_loop_body_ends_its_next_step(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    # The consumer asks for its next result while another task's aclose() is still cleaning
    # up: its loop ends (no "asynchronous generator is already running").
    source, batch = endless_batch(verify_emulator, verify_client, concurrency=8)
    yielded: list[EnrollmentResult] = []
    in_body = asyncio.Event()
    resume = asyncio.Event()

    async def consume() -> None:
        async for result in batch:
            yielded.append(result)
            in_body.set()
            await resume.wait()

    consumer = asyncio.create_task(consume())
    async with asyncio.timeout(30):  # a hang guard only
        await in_body.wait()
        closing = asyncio.create_task(batch.aclose())
        await asyncio.sleep(0)  # the close has begun: it is waiting for the cancelled tasks
        resume.set()
        await consumer  # its loop simply ended
        await closing
    assert len(yielded) == 1
    assert_accounted(verify_emulator, source, yielded, batch)


@pytest.mark.parametrize("steps", range(8))
async def test_aclose_from_another_task_returns_at_every_step_of_a_queued_result(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient, steps: int
) -> None:
    """A result is queued and the consumer has not taken it yet; ``steps`` scheduling points
    later (the consumer taking it, yielding it, running its loop body, asking again ...)
    another task closes the batch: the close returns and every item read is accounted for."""
    source, batch = endless_batch(verify_emulator, verify_client, concurrency=4)
    yielded: list[EnrollmentResult] = []

    async def consume() -> None:
        async for result in batch:
            yielded.append(result)
            await asyncio.sleep(0)  # the loop body: one scheduling point

    consumer = asyncio.create_task(consume())
    async with asyncio.timeout(30):  # a hang guard only
        while batch._ready is None or batch._ready.empty():
            await asyncio.sleep(0)  # until a result waits in the queue
        for _ in range(steps):
            await asyncio.sleep(0)
        await batch.aclose()
        await consumer  # its loop simply ended
    assert_accounted(verify_emulator, source, yielded, batch)


async def test_a_paced_batch_reads_no_item_it_cannot_send_yet(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    """At 5 requests/s, a ``break`` after the first result leaves no never-sent item listed
    as an unknown outcome: items are read only when their turn has come."""
    source = Source()
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, source, concurrency=50, rate_limit=5
    )
    yielded: list[EnrollmentResult] = []
    async with batch:
        async for result in batch:
            yielded.append(result)
            break
    assert source.read <= 3  # the first, and at most the turns that came meanwhile
    assert len(batch.unfinished) <= verify_emulator.counters.requests - 1
    assert_accounted(verify_emulator, source, yielded, batch)


async def test_an_input_raising_cancelled_error_ends_the_batch_with_an_error(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    """Not a cancellation of the batch: an input error, raised after what was taken finished."""

    async def source() -> AsyncIterator[str]:
        yield "user-00000001"
        raise asyncio.CancelledError

    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, source(), concurrency=2
    )
    yielded: list[EnrollmentResult] = []

    async def consume() -> None:
        async for result in batch:
            yielded.append(result)

    async with asyncio.timeout(30):  # a hang guard only
        with pytest.raises(RuntimeError, match="input iterator raised CancelledError"):
            await consume()
    assert [r.identity for r in yielded] == ["user-00000001"]
    assert yielded[0].ok


async def test_a_batch_closed_while_waiting_for_input_gives_its_slot_back(
    verify_emulator: VerifyEmulator,
) -> None:
    """Closed while the input has nothing to give, twice: the client's slots all come back."""

    async def slow_input(n: int) -> AsyncIterator[str]:
        yield f"user-000{n}-aaaa"
        await asyncio.sleep(3600)

    async with verify_emulator.client(max_in_flight=2) as client:
        for n in (1, 2):
            batch = client.access_tokens.create_many(verify_emulator.service_sid, slow_input(n))
            async with batch:
                async for _ in batch:
                    break
            assert client.flow.in_flight == 0
        async with asyncio.timeout(10):  # a hang guard: a leaked slot would starve it
            await client.access_tokens.create(verify_emulator.service_sid, identity="user-0003")


async def test_an_exception_of_on_send_ends_the_batch_even_a_verify_error(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    def journal_full(identity: str) -> None:
        raise ConfigurationError("--out", "cannot write results: No space left on device")

    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, ["user-0001", "user-0002"], on_send=journal_full
    )

    async def consume() -> None:
        async with batch:
            async for _ in batch:
                pass

    with pytest.raises(ConfigurationError, match="No space left"):
        await consume()
    assert verify_emulator.counters.requests == 0  # the write-ahead failed: nothing was sent
    assert verify_client.flow.in_flight == 0


async def test_ordered_results_keep_the_concurrency_bound(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    verify_emulator.set_faults(Faults(latency=0.01))
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, [f"user-{i:08d}" for i in range(20)], concurrency=2,
        ordered=True,
    )  # fmt: skip
    results = [r async for r in batch]
    assert len(results) == 20
    assert verify_emulator.counters.peak_in_flight <= 2
