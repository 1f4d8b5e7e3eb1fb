"""create_many: one result per item, bounded and lazy, rate-aware, cancellable, resumable."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from helpers.constants import ids
from helpers.leaks import acquired_connections

from verify_access_tokens import (
    ConfigurationError,
    EnrollmentRequest,
    EnrollmentResult,
    OutcomeUnknownError,
    RateLimitError,
    RequestValidationError,
    VerifyClient,
)
from verify_access_tokens._flow import Gate
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets


async def collect(batch: object) -> list[EnrollmentResult]:
    return [r async for r in batch]  # type: ignore[attr-defined]


def other_tasks() -> set[str]:
    """Tasks of this package still alive (the emulator's own server tasks do not count)."""
    names = {t.get_coro().__qualname__ for t in asyncio.all_tasks()}  # type: ignore[union-attr]
    return {n for n in names if n.startswith("EnrollmentBatch")}


async def test_faulty_server_every_identity_exactly_one_result(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(error_rate=0.04, drop_rate=0.03, rate_limit=4000))
    identities = ids(3000)
    async with verify_emulator.client(max_retries=3) as client:
        batch = client.access_tokens.create_many(
            verify_emulator.service_sid, identities, concurrency=48
        )
        results = await collect(batch)
        assert acquired_connections(client) == 0
    assert sorted(r.identity for r in results) == identities
    succeeded = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    assert all(
        r.access_token is not None and r.access_token.entity_identity == r.identity
        for r in succeeded
    )
    assert all(isinstance(r.error, OutcomeUnknownError | RateLimitError) for r in failed)
    assert failed, "faults were injected: some creates must have an unknown outcome"
    counters = verify_emulator.counters
    assert counters.tokens_created == len(succeeded) == batch.summary.succeeded
    assert sum(batch.summary.failed.values()) == len(failed) == batch.summary.failed_total
    assert batch.summary.total == 3000
    assert batch.summary.rate > 0
    assert batch.unfinished == ()


async def test_invalid_items_become_validation_results(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    items: list[Any] = [
        "good-identity-1",
        "bad@example.com",
        "short",
        EnrollmentRequest("good-identity-2", factor_friendly_name="Pixel", ttl=300),
        EnrollmentRequest("good-identity-3", ttl=5),
        42,
        "good-identity-4",
    ]
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid,
        items,
        ordered=True,
        ttl=120,
    )
    results = await collect(batch)
    assert [r.index for r in results] == list(range(7))
    assert [r.ok for r in results] == [True, False, False, True, False, False, True]
    assert all(isinstance(r.error, RequestValidationError) for r in results if not r.ok)
    assert [r.attempts for r in results] == [1, 0, 0, 1, 0, 0, 1]
    assert results[5].identity == "42"
    assert isinstance(results[4].error, RequestValidationError)
    assert results[4].error.field == "ttl"
    assert results[3].access_token is not None
    assert (results[3].access_token.ttl, results[3].access_token.factor_friendly_name) == (
        300,
        "Pixel",
    )
    assert results[0].access_token is not None
    assert results[0].access_token.ttl == 120
    assert verify_emulator.counters.requests == 3
    assert batch.summary.failed == Counter({"RequestValidationError": 4})


async def test_async_iterable_input_in_completion_order(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    async def source() -> AsyncIterator[str]:
        for identity in ids(50):
            yield identity

    results = await collect(
        verify_client.access_tokens.create_many(
            verify_emulator.service_sid, source(), concurrency=5
        )
    )
    assert sorted(r.index for r in results) == list(range(50))
    assert all(r.ok for r in results)


async def test_infinite_input_with_break_stops_everything(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    pulled = 0

    def forever() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield f"endless-{i:08d}"

    seen = 0
    async for _ in verify_client.access_tokens.create_many(
        verify_emulator.service_sid, forever(), concurrency=8
    ):
        seen += 1
        if seen == 100:
            break
    for _ in range(5):  # the abandoned generator is closed on the next loop iterations
        await asyncio.sleep(0)
    assert other_tasks() == set()
    assert acquired_connections(verify_client) == 0
    assert pulled <= 100 + 8 * 3  # lazily pulled: never more than the bounded pipeline holds


async def test_stop_then_resume_enrolls_each_identity_exactly_once(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    verify_emulator.set_faults(Faults(latency=0.002))
    identities = ids(400)
    done: set[str] = set()
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, identities, concurrency=16
    )
    async with batch:
        async for result in batch:
            assert result.ok
            done.add(result.identity)
            if len(done) == 150:
                batch.stop()  # as Ctrl-C does in the CLI: in-flight requests finish
    assert 150 <= len(done) < 400
    assert batch.unfinished == ()
    assert verify_emulator.counters.tokens_created == len(done)
    rest = [i for i in identities if i not in done]
    async for result in verify_client.access_tokens.create_many(verify_emulator.service_sid, rest):
        assert result.ok
        done.add(result.identity)
    assert done == set(identities)
    assert verify_emulator.counters.tokens_created == 400
    created = Counter(t.entity_identity for t in verify_emulator.tokens.values())
    assert set(created.values()) == {1}


async def test_cancelling_the_consumer_reports_unfinished(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    verify_emulator.set_faults(Faults(latency=0.05))
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, ids(1000), concurrency=10
    )
    got: list[EnrollmentResult] = []

    async def consume() -> None:
        async for result in batch:
            got.append(result)

    task = asyncio.create_task(consume())
    while len(got) < 20:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert other_tasks() == set()
    assert acquired_connections(verify_client) == 0
    # Cut off in flight, finished but not yielded, or taken and not yet sent: at most the
    # window of 10 (how many of each depends on timing), and never one that was yielded.
    cut = [*batch.unfinished, *(r.identity for r in batch.undelivered), *batch.not_sent]
    assert 0 < len(cut) <= 10
    assert not {r.identity for r in got} & set(cut)


async def test_input_iterator_error_surfaces_after_in_flight_results(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    def broken() -> Iterator[str]:
        yield from ids(5)
        raise OSError("disk went away")

    got: list[EnrollmentResult] = []

    async def consume() -> None:
        async for result in verify_client.access_tokens.create_many(
            verify_emulator.service_sid, broken()
        ):
            got.append(result)

    with pytest.raises(OSError, match="disk went away"):
        await consume()
    assert len(got) == 5


async def test_bugs_are_not_swallowed(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*_: object, **__: object) -> None:
        raise ZeroDivisionError("bug")

    batch = verify_client.access_tokens.create_many(verify_emulator.service_sid, ids(3))
    monkeypatch.setattr(batch._sender, "send", explode)
    with pytest.raises(ZeroDivisionError):
        await collect(batch)
    assert other_tasks() == set()


async def test_a_fixed_rate_limit_sends_every_item_once(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, ids(30), concurrency=30, rate_limit=100
    )
    results = await collect(batch)
    assert all(r.ok for r in results)
    assert verify_emulator.counters.requests == 30  # its spacing is tested on a fake clock


def test_rate_limit_adaptive_is_refused_naming_what_to_use_instead() -> None:
    client = VerifyClient("AC" + "0" * 32, "t")
    with pytest.raises(ConfigurationError) as info:
        client.access_tokens.create_many("VA" + "0" * 32, [], rate_limit="adaptive")  # type: ignore[arg-type]
    assert info.value.setting == "rate_limit"
    assert "max_in_flight='adaptive'" in str(info.value)


async def test_one_429_does_not_slow_the_rest_of_the_batch(
    verify_emulator: VerifyEmulator,
) -> None:
    """The limiter alone reacts to a 429: it cuts its window once, and grows it back."""
    verify_emulator.set_faults(Faults(reject_first=1))
    async with verify_emulator.client() as client:
        batch = client.access_tokens.create_many(verify_emulator.service_sid, ids(300))
        results = await collect(batch)
        state = client.flow
    assert all(r.ok for r in results)
    assert verify_emulator.counters.concurrency_limited == 1
    assert verify_emulator.counters.requests == 301  # the one 429 was re-sent, nothing else
    assert state.limit is not None
    assert state.limit >= 20  # never paced down to a crawl


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"rate_limit": -1}, "rate_limit"),
        ({"rate_limit": "fast"}, "rate_limit"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": float("nan")}, "rate_limit"),
        ({"rate_limit": float("inf")}, "rate_limit"),
        ({"rate_limit": True}, "rate_limit"),
        ({"ttl": 10}, "ttl"),
    ],
)
def test_bad_batch_settings_raise_immediately(kwargs: dict[str, object], field: str) -> None:
    client = VerifyClient("AC" + "0" * 32, "t")
    with pytest.raises(RequestValidationError) as info:
        client.access_tokens.create_many("VA" + "0" * 32, [], **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


async def test_empty_input_ends_at_once(verify_client: VerifyClient) -> None:
    batch = verify_client.access_tokens.create_many("VA" + "0" * 32, [])
    assert await collect(batch) == []
    assert batch.summary.total == 0
    assert batch.summary.elapsed >= 0


def test_a_gate_refuses_a_rate_that_is_not_positive_and_finite() -> None:
    for rate in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive"):
            Gate(rate)


async def test_async_with_cleans_up_at_once_on_break(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    verify_emulator.set_faults(Faults(latency=0.01))
    batch = verify_client.access_tokens.create_many(
        verify_emulator.service_sid, ids(500), concurrency=8
    )
    async with batch:
        async for _ in batch:
            break
    assert other_tasks() == set()  # no loop iteration needed: __aexit__ closed it
    assert acquired_connections(verify_client) == 0
    assert len(batch.unfinished) <= 8


async def test_a_batch_is_consumed_once(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    batch = verify_client.access_tokens.create_many(verify_emulator.service_sid, ids(3))
    assert len(await collect(batch)) == 3
    with pytest.raises(RuntimeError, match="already been consumed"):
        await collect(batch)
