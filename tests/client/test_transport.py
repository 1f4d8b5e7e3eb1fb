"""The session wrapper over real sockets on 127.0.0.1: pooling, timeouts, lifecycle, loops."""

from __future__ import annotations

import asyncio
import gc
import types
from urllib.parse import urlencode

import aiohttp
import attrs
import pytest
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, FETCH_URL, SERVICE_SID, TOKEN_SID, token_body
from helpers.leaks import acquired_connections
from helpers.network import free_port
from hypothesis import given
from hypothesis import strategies as st

from verify_access_tokens import (
    APIConnectionError,
    APITimeoutError,
    ClientStateError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    VerifyClient,
)
from verify_access_tokens._flow import Gate
from verify_access_tokens._http._wire import encode_form
from verify_access_tokens.emulator import Faults, VerifyEmulator
from verify_access_tokens.models import FactorType
from verify_access_tokens.testing import aioresponses

pytestmark = [pytest.mark.sockets, pytest.mark.verify_emulator(seed=7)]
IDENTITY = "abcdef0123456789"


def connection_counter() -> tuple[aiohttp.TraceConfig, dict[str, int]]:
    counts = {"created": 0, "reused": 0}
    trace = aiohttp.TraceConfig()

    async def created(*_: object) -> None:
        counts["created"] += 1

    async def reused(*_: object) -> None:
        counts["reused"] += 1

    trace.on_connection_create_end.append(created)
    trace.on_connection_reuseconn.append(reused)
    return trace, counts


async def test_sequential_calls_reuse_one_pooled_connection(
    verify_emulator: VerifyEmulator,
) -> None:
    trace, counts = connection_counter()
    async with verify_emulator.client(trace_configs=[trace]) as client:
        token = await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        for _ in range(9):
            await client.access_tokens.fetch(token.service_sid, token.sid)
        assert acquired_connections(client) == 0
    assert counts == {"created": 1, "reused": 9}


async def test_pool_limit_bounds_open_connections(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(latency=0.02))
    trace, counts = connection_counter()
    async with verify_emulator.client(trace_configs=[trace], pool_limit=2) as client:
        await asyncio.gather(
            *(
                client.access_tokens.create(verify_emulator.service_sid, identity=f"{IDENTITY}{i}")
                for i in range(10)
            )
        )
    assert counts["created"] <= 2
    assert verify_emulator.counters.tokens_created == 10


async def test_session_is_created_lazily_in_the_running_loop(
    verify_emulator: VerifyEmulator,
) -> None:
    client = verify_emulator.client()
    assert client._transport._session is None
    async with client:
        await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        assert client._transport._session is not None
        assert client._transport._loop is asyncio.get_running_loop()


async def test_read_timeout_on_fetch_is_api_timeout_error(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(latency=2.0))
    async with verify_emulator.client(max_retries=0) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, TOKEN_SID, timeout=0.2)
        assert info.value.request_sent is True
        assert acquired_connections(client) == 0


async def test_read_timeout_on_create_is_outcome_unknown(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(latency=2.0))
    async with verify_emulator.client(max_retries=3, timeout=0.2) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    assert isinstance(info.value.cause, APITimeoutError)
    assert verify_emulator.counters.requests == 1  # never re-sent


async def test_connect_failure_is_provably_unsent_and_retried_for_create() -> None:
    trace = aiohttp.TraceConfig()
    attempts: list[int] = []

    async def on_start(*_: object) -> None:
        attempts.append(1)

    trace.on_request_start.append(on_start)
    client = VerifyClient(
        ACCOUNT_SID,
        AUTH_TOKEN,
        base_url=f"http://127.0.0.1:{free_port()}",
        max_retries=2,
        trace_configs=[trace],
    )
    async with client.with_options(deadline=30) as c:
        with pytest.raises(APIConnectionError) as info:
            await c.access_tokens.create(SERVICE_SID, identity=IDENTITY)
    await client.aclose()
    assert info.value.request_sent is False
    assert not isinstance(info.value, OutcomeUnknownError)
    assert len(attempts) == 3


async def test_aclose_is_idempotent_and_closed_client_refuses(
    verify_emulator: VerifyEmulator,
) -> None:
    client = verify_emulator.client()
    await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    session = client._transport._session
    await client.aclose()
    await client.aclose()
    assert client.closed
    assert session is not None
    assert session.closed
    with pytest.raises(ClientStateError, match="closed"):
        await client.access_tokens.fetch(verify_emulator.service_sid, TOKEN_SID)


async def test_closing_an_unused_client_is_fine() -> None:
    client = VerifyClient(ACCOUNT_SID, AUTH_TOKEN)
    await client.aclose()
    assert client.closed


async def test_user_session_is_used_and_never_closed(verify_emulator: VerifyEmulator) -> None:
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        async with verify_emulator.client(session=session) as client:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
            with pytest.raises(NotFoundError):  # our mapping, despite raise_for_status=True
                await client.access_tokens.fetch(verify_emulator.service_sid, TOKEN_SID)
        assert not session.closed
        assert client._transport._session is session


async def test_sibling_close_keeps_parent_session_open(verify_emulator: VerifyEmulator) -> None:
    async with verify_emulator.client() as parent:
        child = parent.with_options(max_retries=0)
        await child.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        await child.aclose()
        token = await parent.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        assert (await child.access_tokens.fetch(token.service_sid, token.sid)) == token


async def test_unclosed_client_warns_resource_warning(verify_emulator: VerifyEmulator) -> None:
    client = verify_emulator.client()
    await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    session = client._transport._session
    assert session is not None
    del client
    with pytest.warns(ResourceWarning, match="without being closed"):
        gc.collect()
    await session.close()


def test_unused_client_collected_without_warning() -> None:
    client = VerifyClient(ACCOUNT_SID, AUTH_TOKEN)  # FastAPI-module style: built, never used
    del client
    gc.collect()  # filterwarnings=error turns any ResourceWarning into a failure


def test_use_from_a_second_event_loop_is_a_clear_error() -> None:
    client = VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_retries=0)

    async def first_loop() -> None:
        with aioresponses() as mocked:
            mocked.get(FETCH_URL, payload=token_body())
            await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)

    async def second_loop() -> None:
        with pytest.raises(ClientStateError, match="bound to the event loop"):
            await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)

    asyncio.run(first_loop())
    asyncio.run(second_loop())
    session = client._transport._session
    assert session is not None
    # The session belongs to the first (now closed) loop: close it by hand, as its owner would.
    session._connector = None
    session._closed = True
    client._transport._closed = True


def test_calling_outside_a_loop_is_a_clear_error() -> None:
    client = VerifyClient(ACCOUNT_SID, AUTH_TOKEN)
    coro = client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert isinstance(coro, types.CoroutineType)
    with pytest.raises(ClientStateError, match="running event loop"):
        coro.send(None)


async def test_aiohttp_client_timeout_is_passed_through(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(latency=2.0))
    custom = aiohttp.ClientTimeout(sock_read=0.2)
    async with verify_emulator.client(timeout=custom, max_retries=0) as client:
        with pytest.raises(APITimeoutError, match="SocketTimeoutError"):
            await client.access_tokens.fetch(verify_emulator.service_sid, TOKEN_SID)


async def test_deadline_inside_an_attempt_makes_create_outcome_unknown(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(latency=2.0))
    async with verify_emulator.client(timeout=30, deadline=0.3) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    assert isinstance(info.value.cause, APITimeoutError)
    assert info.value.attempts == 1


async def test_deadline_spent_waiting_for_the_gate_sends_nothing(
    verify_emulator: VerifyEmulator,
) -> None:
    async with verify_emulator.client(deadline=0.1) as client:
        gate = Gate(rate=0.001)  # a batch's pace: one turn per 1 000 s
        await gate.wait(None, None)  # the first turn is taken
        options = attrs.evolve(client._options, gate=gate)
        with pytest.raises(APITimeoutError, match="before the request was sent") as info:
            await client._request(
                "POST",
                f"/v2/Services/{verify_emulator.service_sid}/AccessTokens",
                template="/v2/Services/{ServiceSid}/AccessTokens",
                idempotent=False,
                form={"Identity": IDENTITY, "FactorType": "push"},
                options=options,
            )
    assert not isinstance(info.value, OutcomeUnknownError)  # provably nothing was created
    assert info.value.request_sent is False
    assert info.value.attempts == 0
    assert verify_emulator.counters.requests == 0


async def test_a_closed_gate_ends_a_retry_with_its_last_answer(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(reject_first=1))
    async with verify_emulator.client(retry_after_max=0.01) as client:
        gate = Gate(rate=0.001)
        await gate.wait(None, None)  # the pace now holds the retry for 1 000 s
        options = attrs.evolve(client._options, gate=gate)
        call = asyncio.create_task(
            client.access_tokens._create_in_batch(
                verify_emulator.service_sid,
                FactorType.PUSH,
                options,
                IDENTITY,
                None,
                None,
                await client._limiter.acquire(),
                lambda: None,
            )
        )
        while client.flow.rate_limited < 1:
            await asyncio.sleep(0.01)
        gate.close()  # what a batch's stop() does
        async with asyncio.timeout(10):  # a hang guard only
            with pytest.raises(RateLimitError) as info:
                await call
    assert info.value.attempts == 1
    assert verify_emulator.counters.requests == 1
    assert client.flow.in_flight == 0


async def test_a_request_waiting_for_a_pooled_connection_at_the_deadline_was_not_sent(
    verify_emulator: VerifyEmulator,
) -> None:
    """Two clients share a lent session of 2 connections: the two requests that waited in
    aiohttp's pool when the deadline came never reached the server, and say so."""
    verify_emulator.set_faults(Faults(latency=2.0))
    connector = aiohttp.TCPConnector(limit=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = [
            verify_emulator.client(session=session, deadline=1.0, max_retries=0) for _ in "ab"
        ]
        calls = [
            client.access_tokens.create(verify_emulator.service_sid, identity=f"user-0000000{i}{n}")
            for n, client in enumerate(clients)
            for i in range(2)
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        for client in clients:
            await client.aclose()
    unsent = [o for o in outcomes if isinstance(o, APITimeoutError) and not o.request_sent]
    unknown = [o for o in outcomes if isinstance(o, OutcomeUnknownError)]
    assert (len(unsent), len(unknown)) == (2, 2), outcomes
    assert verify_emulator.counters.requests == 2


async def test_a_lent_session_without_a_pool_bound_and_no_in_flight_limit_works(
    verify_emulator: VerifyEmulator,
) -> None:
    unbounded = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=unbounded) as session,
        verify_emulator.client(session=session, max_in_flight=None) as client,
    ):
        token = await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        assert client.flow.limit is None
    assert token.entity_identity == IDENTITY


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)  # no lone surrogates


@given(st.dictionaries(st.sampled_from(["Identity", "FactorType", "Ttl", "X_y.z~-"]), _TEXT))
def test_encode_form_is_urlencode(form: dict[str, str]) -> None:
    """The hand-rolled fast path sends exactly the bytes ``urlencode`` would."""
    assert encode_form(form) == urlencode(form).encode()
