"""Retry policy, backoff, Retry-After, deadline and cancellation, over real sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import time

import attrs
import pytest
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, CREATE_URL, NOWHERE, SERVICE_SID, token_body
from helpers.leaks import acquired_connections
from hypothesis import given
from hypothesis import strategies as st

from verify_access_tokens import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
    VerifyClient,
)
from verify_access_tokens._exceptions import APIStatusError
from verify_access_tokens._http._error_mapping import parse_retry_after
from verify_access_tokens._http._retry import RetryPolicy
from verify_access_tokens.emulator import Faults, VerifyEmulator
from verify_access_tokens.testing import aioresponses

IDENTITY = "abcdef0123456789"
POLICY = RetryPolicy(max_retries=2, retry_after_max=60.0)


def fast(client: VerifyClient) -> VerifyClient:
    """Keep real backoff logic but shrink its scale, so tests do not sleep for seconds."""
    retry = attrs.evolve(client._options.retry, backoff_base=0.01, backoff_max=0.05)
    client._options = attrs.evolve(client._options, retry=retry)
    return client


def status(code: int, retry_after: float | None = None) -> APIStatusError:
    return APIStatusError(status=code, message="x", method="GET", url="u", retry_after=retry_after)


# --- pure policy ---------------------------------------------------------------------------
@given(st.integers(0, 10**8))
def test_retry_after_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)
    assert parse_retry_after(f" {seconds} ") == float(seconds)


@given(st.integers(-3600, 3600))
def test_retry_after_http_date(offset: int) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    header = email.utils.format_datetime(now + dt.timedelta(seconds=offset), usegmt=True)
    assert parse_retry_after(header, now=now) == max(float(offset), 0.0)


@given(st.text())
def test_retry_after_garbage_never_raises(text: str) -> None:
    value = parse_retry_after(text)
    assert value is None or value >= 0.0


@pytest.mark.parametrize("text", ["", "  ", "soon", "-5", "1e3", "٣", "99999999999", None])
def test_retry_after_unusable_values(text: str | None) -> None:
    assert parse_retry_after(text) is None


def test_retry_after_naive_date_is_taken_as_utc() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:09 -0000", now=now) == 9.0


@given(st.integers(1, 50), st.integers(0, 2**32))
def test_backoff_is_jittered_exponential_and_capped(retry: int, seed: int) -> None:
    delay = POLICY.backoff_delay(retry, rng=random.Random(seed))
    cap = min(0.5 * 2 ** (retry - 1), 8.0)
    assert cap / 2 <= delay <= cap <= 8.0


@given(st.floats(0, 10**6, allow_nan=False))
def test_retry_after_wins_but_is_capped(retry_after: float) -> None:
    assert POLICY.backoff_delay(1, retry_after=retry_after) == min(retry_after, 60.0)


@pytest.mark.parametrize(
    ("error", "idempotent", "opt_in", "expected"),
    [
        (status(429), False, False, True),
        (status(503), True, False, True),
        (status(503), False, False, False),
        (status(503), False, True, True),
        (status(408), True, False, True),
        (status(400), True, True, False),
        (status(404), True, False, False),
        (APIConnectionError("x", method="POST", url="u", request_sent=False), False, False, True),
        (APIConnectionError("x", method="POST", url="u", request_sent=True), False, False, False),
        (APIConnectionError("x", method="POST", url="u", request_sent=True), False, True, True),
        (APITimeoutError("x", method="GET", url="u"), True, False, True),
        (BadRequestError(status=400, message="m", method="GET", url="u"), True, False, False),
    ],
)
def test_what_is_retryable(
    error: Exception, idempotent: bool, opt_in: bool, expected: bool
) -> None:
    policy = attrs.evolve(POLICY, retry_ambiguous_creates=opt_in)
    assert policy.is_retryable(error, idempotent=idempotent) is expected  # type: ignore[arg-type]


def test_what_is_ambiguous() -> None:
    assert RetryPolicy.is_ambiguous(status(500))
    assert RetryPolicy.is_ambiguous(status(408))
    assert not RetryPolicy.is_ambiguous(status(429))
    assert not RetryPolicy.is_ambiguous(status(400))
    assert not RetryPolicy.is_ambiguous(
        APIConnectionError("x", method="P", url="u", request_sent=False)
    )
    assert RetryPolicy.is_ambiguous(APITimeoutError("x", method="P", url="u"))
    assert not RetryPolicy.is_ambiguous(ValueError())  # type: ignore[arg-type]


# --- over real sockets against the emulator's faults ---------------------------------------
pytestmark = pytest.mark.sockets


async def test_429_with_retry_after_is_retried_until_success(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(rate_limit=2.0))  # bucket of 2, then 1 per 0.5 s
    async with verify_emulator.client(max_retries=3) as client:
        results = [
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
            for _ in range(3)
        ]
        assert acquired_connections(client) == 0
    assert len({t.sid for t in results}) == 3
    assert verify_emulator.counters.rate_limited >= 1
    assert verify_emulator.counters.tokens_created == 3


async def test_429_without_retry_after_uses_backoff(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(rate_limit=1.0, send_retry_after=False))
    async with fast(verify_emulator.client(max_retries=2)) as client:
        await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        with pytest.raises(RateLimitError) as info:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        assert acquired_connections(client) == 0
    assert info.value.retry_after is None
    assert info.value.attempts == 3
    assert verify_emulator.counters.requests == 4
    assert verify_emulator.counters.tokens_created == 1


async def test_fetch_retries_503_then_raises_server_error(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(error_rate=1.0))
    async with fast(verify_emulator.client(max_retries=2)) as client:
        with pytest.raises(ServerError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, NOWHERE)
        assert acquired_connections(client) == 0
    assert info.value.attempts == 3
    assert verify_emulator.counters.requests == 3


async def test_fetch_retries_dropped_connections(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(drop_rate=1.0))
    async with fast(verify_emulator.client(max_retries=2)) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, NOWHERE)
        assert acquired_connections(client) == 0
    assert info.value.request_sent is True
    assert verify_emulator.counters.requests == 3
    assert verify_emulator.counters.dropped == 3


async def test_fetch_recovers_after_transient_faults(verify_emulator: VerifyEmulator) -> None:
    async with fast(verify_emulator.client(max_retries=6)) as client:
        token = await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        verify_emulator.set_faults(Faults(error_rate=0.5, drop_rate=0.3))
        verify_emulator._rng.seed(11)
        for _ in range(5):
            assert await client.access_tokens.fetch(token.service_sid, token.sid) == token
        assert acquired_connections(client) == 0
    assert verify_emulator.counters.faults_injected > 0


@pytest.mark.parametrize("faults", [Faults(error_rate=1.0), Faults(drop_rate=1.0)])
async def test_ambiguous_create_is_not_resent_by_default(
    verify_emulator: VerifyEmulator, faults: Faults
) -> None:
    verify_emulator.set_faults(faults)
    async with fast(verify_emulator.client(max_retries=5)) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        assert acquired_connections(client) == 0
    assert info.value.attempts == 1
    assert verify_emulator.counters.requests == 1


async def test_ambiguous_create_is_resent_with_opt_in(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(error_rate=1.0))
    client = fast(verify_emulator.client(max_retries=3))
    async with client:
        brave = client.with_options(retry_ambiguous_creates=True)
        with pytest.raises(OutcomeUnknownError) as info:
            await brave.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    assert isinstance(info.value.cause, ServerError)
    assert info.value.attempts == 4
    assert verify_emulator.counters.requests == 4


async def test_per_call_max_retries_zero_disables(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(error_rate=1.0))
    async with verify_emulator.client(max_retries=5) as client:
        with pytest.raises(ServerError):
            await client.with_options(max_retries=0).access_tokens.fetch(
                verify_emulator.service_sid, NOWHERE
            )
    assert verify_emulator.counters.requests == 1


async def test_deadline_bounds_the_whole_call(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(latency=30.0))  # a server that never answers in time
    async with verify_emulator.client(timeout=1.0, max_retries=5, deadline=2.5) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.access_tokens.fetch(verify_emulator.service_sid, NOWHERE)
        elapsed = time.monotonic() - started
        assert acquired_connections(client) == 0
    assert elapsed < 2.5 + 1.5  # generous tolerance: the point is "bounded", not "fast"
    assert verify_emulator.counters.requests <= 3


async def test_retry_after_beyond_deadline_returns_rate_limit_error_at_once(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(rate_limit=0.05))  # next slot in ~20 s
    async with verify_emulator.client(max_retries=3, deadline=2.0) as client:
        await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        assert time.monotonic() - started < 1.5  # no pointless wait that cannot fit
    assert info.value.retry_after is not None
    assert info.value.retry_after >= 10
    assert info.value.attempts == 1


async def test_cancellation_mid_request_propagates_and_releases(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(latency=5.0))
    async with verify_emulator.client() as client:
        task = asyncio.create_task(
            client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        )
        while verify_emulator.counters.requests == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert acquired_connections(client) == 0


async def test_cancellation_mid_backoff_propagates(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(error_rate=1.0))
    async with verify_emulator.client(max_retries=3) as client:  # real backoff: >= 0.25 s
        task = asyncio.create_task(client.access_tokens.fetch(verify_emulator.service_sid, NOWHERE))
        while verify_emulator.counters.requests == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the first attempt failed; the client is sleeping
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert acquired_connections(client) == 0
    assert verify_emulator.counters.requests == 1


async def test_mixed_outcomes_leave_no_connection_acquired(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(error_rate=0.2, drop_rate=0.2, latency=0.01))
    # A generous timeout: on a loaded machine a short one would turn every create into an
    # unknown outcome; the dropped connections fail on their own.
    async with fast(verify_emulator.client(max_retries=2, timeout=10)) as client:
        calls = [
            client.access_tokens.create(verify_emulator.service_sid, identity=f"{IDENTITY}{i}")
            for i in range(40)
        ]
        tasks = [asyncio.create_task(c) for c in calls]
        await asyncio.sleep(0.02)
        for t in tasks[::7]:
            t.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert acquired_connections(client) == 0
    kinds = {type(o).__name__ for o in outcomes}
    assert "AccessToken" in kinds
    assert kinds <= {"AccessToken", "OutcomeUnknownError", "CancelledError"}


async def test_lost_response_shows_why_creates_are_not_resent(
    verify_emulator: VerifyEmulator,
) -> None:
    """The token exists but its answer was lost: a blind retry would mint a duplicate."""
    verify_emulator.set_faults(Faults(lost_response_rate=1.0))
    async with fast(verify_emulator.client(max_retries=2)) as client:
        with pytest.raises(OutcomeUnknownError):
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        assert verify_emulator.counters.tokens_created == 1  # default: one token, outcome unknown
        brave = client.with_options(retry_ambiguous_creates=True)
        with pytest.raises(OutcomeUnknownError):
            await brave.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        assert acquired_connections(client) == 0
    assert verify_emulator.counters.tokens_created == 1 + 3  # the opt-in minted three more
    assert verify_emulator.counters.responses_lost == 4


async def test_a_create_re_sent_after_an_unknown_outcome_says_it_may_be_duplicated() -> None:
    """Success after an ambiguous attempt: the answer says so; a clean failure after one is
    still an unknown outcome, since the first attempt may have made the token."""
    async with VerifyClient(
        ACCOUNT_SID, AUTH_TOKEN, retry_ambiguous_creates=True, max_retries=2
    ) as client:
        client_fast = client
        with aioresponses() as mocked:
            mocked.post(CREATE_URL, status=503, payload={"code": 20503, "message": "busy"})
            mocked.post(CREATE_URL, status=201, payload=token_body())
            answer = await client_fast.access_tokens.create_with_http_info(
                SERVICE_SID, identity=IDENTITY
            )
        assert answer.possible_duplicate is True
        assert answer.attempts == 2
        with aioresponses() as mocked:
            mocked.post(CREATE_URL, status=503, payload={"code": 20503, "message": "busy"})
            mocked.post(CREATE_URL, status=400, payload={"code": 60200, "message": "bad"})
            with pytest.raises(OutcomeUnknownError) as caught:
                await client_fast.access_tokens.create(SERVICE_SID, identity=IDENTITY)
        assert isinstance(caught.value.cause, BadRequestError)
        with aioresponses() as mocked:
            mocked.post(CREATE_URL, status=201, payload=token_body())
            clean = await client.access_tokens.create_with_http_info(SERVICE_SID, identity=IDENTITY)
        assert clean.possible_duplicate is False


def test_a_batchs_429s_are_re_sent_apart_from_max_retries_within_its_patience() -> None:
    policy = RetryPolicy(max_retries=0, retry_after_max=60.0, rate_limit_patience=3)
    limited = RateLimitError(retry_after=999.0)
    for n in (1, 2, 3):  # re-sent, with max_retries=0: a pause of 0.05-2 s, Retry-After cut
        delay = policy.retry_delay(limited, attempts=n, rate_limited=n, idempotent=False)
        assert delay is not None
        assert 0.05 <= delay <= 2.0
    assert policy.retry_delay(limited, attempts=4, rate_limited=4, idempotent=False) is None
    stalled = policy.retry_delay(
        limited, attempts=1, rate_limited=1, idempotent=False, stalled=True
    )
    assert stalled is None  # only 429s for long: the server is not merely busy
    server = ServerError(status=503)  # the other failures keep max_retries
    assert policy.retry_delay(server, attempts=4, rate_limited=3, idempotent=True) is None
    single = RetryPolicy(max_retries=1, retry_after_max=60.0)  # a single call: within max_retries
    assert single.retry_delay(limited, attempts=1, rate_limited=1, idempotent=False) == 60.0
    assert single.retry_delay(limited, attempts=2, rate_limited=2, idempotent=False) is None
