"""The emulator's model of Twilio's real limit: requests in flight per account, over sockets.

And the client's side of it: the load headers every answer carries, read leniently.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from verify_access_tokens import APIResponse, RateLimitError, VerifyClient
from verify_access_tokens._load import concurrent_requests, request_duration
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets


@pytest.fixture
async def sessions(verify_emulator: VerifyEmulator) -> AsyncIterator[list[aiohttp.ClientSession]]:
    """Three independent connection pools: the limit is account-wide, not per connection."""
    auth = f"{verify_emulator.account_sid}:{verify_emulator.auth_token}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(auth).decode()}
    opened = [aiohttp.ClientSession(verify_emulator.base_url, headers=headers) for _ in range(3)]
    yield opened
    for session in opened:
        await session.close()


async def test_requests_over_the_limit_in_flight_get_20429_at_once(
    verify_emulator: VerifyEmulator, sessions: list[aiohttp.ClientSession]
) -> None:
    verify_emulator.set_faults(Faults(max_concurrent=4, latency=0.5))
    second = verify_emulator.add_service()
    paths = [
        f"/v2/Services/{sid}/AccessTokens/{'YK' + '0' * 32}"
        for sid in (verify_emulator.service_sid, second)
    ]

    async def get(i: int) -> tuple[int, dict[str, str], dict[str, object]]:
        session = sessions[i % 3]
        async with session.get(paths[i % 2]) as resp:
            return resp.status, dict(resp.headers), await resp.json()

    answers = await asyncio.gather(*(get(i) for i in range(10)))
    limited = [a for a in answers if a[0] == 429]
    assert len(limited) == 6  # across three pools and two services: one account
    assert all(a[0] == 404 for a in answers if a[0] != 429)  # the 4 admitted were processed
    for _, headers, body in limited:
        assert body["code"] == 20429
        assert "Retry-After" not in headers  # Twilio documents none for this 429
        assert int(headers["Twilio-Concurrent-Requests"]) > 4  # this one included
    counters = verify_emulator.counters
    assert counters.concurrency_limited == counters.rate_limited == 6
    assert counters.peak_in_flight >= 5  # the 4 admitted and each 429 as it arrived


async def test_every_answer_carries_the_load_headers(
    verify_emulator: VerifyEmulator, sessions: list[aiohttp.ClientSession]
) -> None:
    verify_emulator.set_faults(Faults(latency=0.05))
    path = f"/v2/Services/{verify_emulator.service_sid}/AccessTokens/{'YK' + '0' * 32}"
    async with sessions[0].get(path) as one, sessions[1].get(path) as two:
        for resp in (one, two):
            assert concurrent_requests(resp.headers) in (1, 2)
            duration = request_duration(resp.headers)
            assert duration is not None
            assert duration >= 0.05


async def test_a_retry_after_can_be_added_to_the_concurrency_429(
    verify_emulator: VerifyEmulator, sessions: list[aiohttp.ClientSession]
) -> None:
    verify_emulator.set_faults(Faults(max_concurrent=1, latency=0.3, concurrency_retry_after=2))
    path = f"/v2/Services/{verify_emulator.service_sid}/AccessTokens/{'YK' + '0' * 32}"

    async def get(session: aiohttp.ClientSession) -> tuple[int, str | None]:
        async with session.get(path) as resp:
            return resp.status, resp.headers.get("Retry-After")

    answers = sorted(await asyncio.gather(get(sessions[0]), get(sessions[1])))
    assert answers == [(404, None), (429, "2")]


async def test_latency_ranges_are_drawn_from_the_seeded_rng(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        if delay:  # aiohttp's own sleep(0)s are not the emulator's latency
            slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    runs = []
    for _ in range(2):
        slept.clear()
        async with (
            VerifyEmulator(faults=Faults(latency=(0.01, 0.2)), seed=7) as emulator,
            emulator.client() as client,
        ):
            for i in range(5):
                await client.access_tokens.create(emulator.service_sid, identity=f"user-{i:08d}")
        runs.append(list(slept))
    assert runs[0] == runs[1]  # reproducible from the seed
    assert len(set(runs[0])) == 5  # spread
    assert all(0.01 <= delay <= 0.2 for delay in runs[0])


@pytest.mark.parametrize(
    "bad",
    [
        {"max_concurrent": 0},
        {"max_concurrent": True},
        {"max_concurrent": 1.5},
        {"concurrency_retry_after": -1},
        {"latency": (0.3, 0.1)},
        {"latency": (0.1, float("inf"))},
    ],
)
def test_concurrency_settings_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Faults(**bad)  # type: ignore[arg-type]


async def test_the_client_exposes_the_load_on_answers_and_errors(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    verify_emulator.set_faults(Faults(max_concurrent=1, latency=1))
    sid = verify_emulator.service_sid
    single = verify_client.with_options(max_retries=0)
    blocker = asyncio.create_task(
        single.access_tokens.create_with_http_info(sid, identity="user-00000001")
    )
    async with asyncio.timeout(30):  # a hang guard only
        while verify_emulator.counters.requests < 1:  # the blocker holds the account's slot
            await asyncio.sleep(0.01)
    async with verify_emulator.client(max_retries=0) as other:  # another process, in effect
        with pytest.raises(RateLimitError) as caught:
            await other.access_tokens.create(sid, identity="user-00000002")
    answer = await blocker
    assert answer.concurrent_requests == 1
    assert answer.request_duration is not None
    assert caught.value.concurrent_requests == 2
    assert caught.value.request_duration is not None


@pytest.mark.parametrize(
    ("headers", "concurrent", "duration"),
    [
        ({}, None, None),
        ({"Twilio-Concurrent-Requests": "17", "Twilio-Request-Duration": "0.250"}, 17, 0.25),
        ({"Twilio-Concurrent-Requests": " 3 ", "Twilio-Request-Duration": "2"}, 3, 2.0),
        ({"Twilio-Concurrent-Requests": "-1", "Twilio-Request-Duration": "-0.1"}, None, None),
        ({"Twilio-Concurrent-Requests": "1e3", "Twilio-Request-Duration": "nan"}, None, None),
        ({"Twilio-Concurrent-Requests": "٣", "Twilio-Request-Duration": "inf"}, None, None),
        ({"Twilio-Concurrent-Requests": "9" * 40, "Twilio-Request-Duration": "9" * 40}, None, None),
        ({"Twilio-Concurrent-Requests": "abc", "Twilio-Request-Duration": "1e9"}, None, None),
    ],
)
def test_load_headers_are_read_leniently(
    headers: dict[str, str], concurrent: int | None, duration: float | None
) -> None:
    proxy = CIMultiDictProxy(CIMultiDict(headers))
    response = APIResponse(data=None, status=200, headers=proxy)
    assert response.concurrent_requests == concurrent
    assert response.request_duration == duration


async def test_reject_first_answers_isolated_429s_then_none(
    verify_emulator: VerifyEmulator, sessions: list[aiohttp.ClientSession]
) -> None:
    verify_emulator.set_faults(Faults(reject_first=2))
    path = f"/v2/Services/{verify_emulator.service_sid}/AccessTokens/{'YK' + '0' * 32}"
    statuses = []
    for _ in range(4):
        async with sessions[0].get(path) as resp:
            statuses.append(resp.status)
    assert statuses == [429, 429, 404, 404]
    assert verify_emulator.counters.concurrency_limited == 2


async def test_a_batch_recovers_from_an_isolated_429_and_fails_nothing(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(reject_first=1, max_concurrent=50, latency=0.01))
    async with verify_emulator.client() as client:
        batch = client.access_tokens.create_many(
            verify_emulator.service_sid, [f"user-{i:08d}" for i in range(300)]
        )
        results = [r async for r in batch]
        assert all(r.ok for r in results)  # the 429 was re-queued, not failed
        assert client.flow.rate_limited >= 1
        assert client.flow.limit > 20  # back in slow start: the account held more
