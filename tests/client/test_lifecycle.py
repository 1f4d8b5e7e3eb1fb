"""Closing is a state, not a crash: calls and batches that meet a closed client end typed."""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest

from verify_access_tokens import ClientStateError, VerifyClient
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets


async def test_aclose_with_100_calls_in_flight_ends_each_in_client_state_error(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(latency=2))
    client = verify_emulator.client(max_in_flight=40)
    sid = verify_emulator.service_sid
    calls = [
        asyncio.create_task(client.access_tokens.fetch(sid, "YK" + f"{i:032x}")) for i in range(100)
    ]
    async with asyncio.timeout(30):  # a hang guard only
        while verify_emulator.counters.requests < 40:  # 40 on the wire, 60 waiting for a slot
            await asyncio.sleep(0.01)
    await client.aclose()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, ClientStateError) for o in outcomes), {type(o) for o in outcomes}
    assert client.flow.in_flight == 0
    assert client.flow.waiting == 0


async def test_a_batch_running_while_its_client_closes_accounts_for_every_item(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(latency=0.2))
    client = verify_emulator.client()
    identities = [f"user-{i:08d}" for i in range(200)]
    batch = client.access_tokens.create_many(verify_emulator.service_sid, identities)
    results = []
    async with batch:
        async for result in batch:
            results.append(result)
            if len(results) == 30:
                await client.aclose()
    ended = [r for r in results if r.error is not None]
    assert ended
    assert all(isinstance(r.error, ClientStateError) for r in ended)
    assert len(results) + len(batch.undelivered) + len(batch.unfinished) == batch.summary.total
    assert not batch.unfinished  # nothing cut off: every item taken has its result


async def test_a_lent_session_closed_by_its_owner_is_a_client_state_error(
    verify_emulator: VerifyEmulator,
) -> None:
    session = aiohttp.ClientSession()
    client = verify_emulator.client(session=session)
    await session.close()
    with pytest.raises(ClientStateError, match="lent to this VerifyClient was closed"):
        await client.access_tokens.create(verify_emulator.service_sid, identity="user-00000001")
    await client.aclose()


async def test_aclose_from_another_loop_is_refused_and_leaves_the_client_open(
    verify_emulator: VerifyEmulator,
) -> None:
    client = verify_emulator.client()
    await client.access_tokens.create(verify_emulator.service_sid, identity="user-00000001")
    caught: list[BaseException] = []

    def close_elsewhere() -> None:
        try:
            asyncio.run(client.aclose())
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=close_elsewhere)
    thread.start()
    thread.join()
    assert len(caught) == 1
    assert isinstance(caught[0], ClientStateError)
    assert "still open" in str(caught[0])
    assert not client.closed
    await client.access_tokens.create(verify_emulator.service_sid, identity="user-00000002")
    await client.aclose()
    assert client.closed
    assert isinstance(client, VerifyClient)
