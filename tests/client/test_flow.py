"""Flow control: the adaptive limit's decisions and the limiter's waiting room, on a fake clock.

Twilio limits an account by its requests in flight; these tests pin how the client finds and
shares that limit without measuring any time: the limit takes its clock as arguments, and the
limiter's deadline runs on a loop clock the test moves by hand.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from helpers.clock import FakeClock
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, CREATE_URL, IDENTITY, SERVICE_SID, token_body

from verify_access_tokens import (
    APITimeoutError,
    ConfigurationError,
    LimiterState,
    OutcomeUnknownError,
    VerifyClient,
)
from verify_access_tokens._flow import Gate, Limiter, Slot, TurnRefused, make_limiter
from verify_access_tokens._flow._limits import (
    ADAPTIVE_DECREASE,
    ADAPTIVE_INITIAL,
    AdaptiveLimit,
    FixedLimit,
)
from verify_access_tokens.emulator import VerifyEmulator
from verify_access_tokens.testing import aioresponses


def answer(limit: AdaptiveLimit, *, at: float, sent_at: float | None = None, in_flight: int = -1,
           limited: bool = False) -> None:  # fmt: skip
    """One answer; by default the window was full (in_flight = window - 1 after release)."""
    limit.on_answer(
        sent_at=at - 0.2 if sent_at is None else sent_at,
        now=at,
        rate_limited=limited,
        in_flight=int(limit.value) - 1 if in_flight < 0 else in_flight,
    )


# -- the adaptive limit ----------------------------------------------------------------------
def test_slow_start_doubles_the_window_each_round_trip() -> None:
    limit = AdaptiveLimit()
    start = limit.value
    for _ in range(int(start)):  # one round trip: an answer per request of the window
        answer(limit, at=1.0)
    assert limit.value == 2 * start == 2 * ADAPTIVE_INITIAL


def test_a_429_cuts_the_window_once_per_round_trip() -> None:
    limit = AdaptiveLimit(initial=100)
    answer(limit, at=10.0, sent_at=9.8, limited=True)
    assert limit.value == pytest.approx(100 * ADAPTIVE_DECREASE)
    assert not limit.slow_start
    # More 429s for requests sent before the cut: the same congestion, already answered.
    for _ in range(30):
        answer(limit, at=10.1, sent_at=9.9, limited=True)
    assert limit.value == pytest.approx(100 * ADAPTIVE_DECREASE)
    # A 429 for a request sent after the cut is news: a second cut.
    answer(limit, at=10.4, sent_at=10.2, limited=True)
    assert limit.value == pytest.approx(100 * ADAPTIVE_DECREASE**2)


def test_the_window_never_drops_below_one_nor_rises_above_its_maximum() -> None:
    limit = AdaptiveLimit(initial=3, maximum=50)
    for i in range(20):
        answer(limit, at=float(i), sent_at=float(i) - 0.5, limited=True)
    assert limit.value == 1.0
    for i in range(2000):
        answer(limit, at=100.0 + i)
    assert limit.value == 50


def test_after_an_isolated_429_the_window_returns_within_a_few_round_trips() -> None:
    limit = AdaptiveLimit(initial=100)
    answer(limit, at=1.0, sent_at=0.9, limited=True)
    assert limit.value == pytest.approx(70)
    rounds = 0
    while limit.value < 95:
        rounds += 1
        for _ in range(int(limit.value)):
            answer(limit, at=1.0 + rounds * 0.2)
    assert rounds <= 4  # binary increase: half the remaining distance per round trip
    # At the old level it probes on, faster and faster: a freed account is found again.
    for extra in range(1, 11):
        for _ in range(int(limit.value)):
            answer(limit, at=3.0 + extra * 0.2)
    assert limit.value > 120


def test_a_window_not_in_use_does_not_grow() -> None:
    limit = AdaptiveLimit(initial=20)
    for i in range(1000):  # a quiet backend: one request at a time
        answer(limit, at=float(i), in_flight=0)
    assert limit.value == 20


def test_two_windows_sharing_an_account_converge_to_fair_shares() -> None:
    """Two clients, one account of 100: multiplicative cuts equalise their windows (AIMD)."""
    big, small = AdaptiveLimit(initial=90), AdaptiveLimit(initial=10)
    big.slow_start = small.slow_start = False
    now = 0.0
    for _ in range(400):  # round trips
        now += 0.2
        over = big.value + small.value > 100
        for limit in (big, small):
            for _ in range(int(limit.value)):
                answer(limit, at=now, sent_at=now - 0.2, limited=over)
    assert big.value + small.value <= 110
    jain = (big.value + small.value) ** 2 / (2 * (big.value**2 + small.value**2))
    assert jain > 0.9


def test_a_fixed_limit_learns_nothing() -> None:
    limit = FixedLimit(7)
    limit.on_answer(sent_at=0.0, now=1.0, rate_limited=True, in_flight=6)
    assert limit.value == limit.maximum == 7


# -- the limiter -----------------------------------------------------------------------------
def answered(slot: Slot, *, limited: bool = False, now: float = 0.0) -> None:
    slot.answered(sent_at=0.0, now=now, rate_limited=limited)


async def test_waiters_are_served_first_come_first_served() -> None:
    limiter = Limiter(FixedLimit(1))
    held = await limiter.acquire()
    order: list[int] = []

    async def wait(i: int) -> None:
        slot = await limiter.acquire()
        order.append(i)
        answered(slot)

    tasks = [asyncio.create_task(wait(i)) for i in range(5)]
    await asyncio.sleep(0)
    assert limiter.state() == LimiterState(limit=1, in_flight=1, waiting=5, rate_limited=0)
    answered(held)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert limiter.in_flight == 0


async def test_a_starved_waiter_ends_at_its_deadline_holding_no_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock(monkeypatch)
    limiter = Limiter(FixedLimit(1))
    held = await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire(deadline_at=clock.now + 5))
    await clock.advance(4)
    assert not waiter.done()
    await clock.advance(2)
    with pytest.raises(TimeoutError):
        await waiter
    assert limiter.state().waiting == 0
    answered(held)
    assert limiter.in_flight == 0  # the timed-out waiter was not handed the slot


async def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    limiter = Limiter(FixedLimit(1))
    held = await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    answered(held)  # granted to `first` ...
    first.cancel()  # ... which is cancelled before it runs: the slot goes to `second`
    await asyncio.sleep(0)
    await second
    assert limiter.in_flight == 1


async def test_a_decrease_holds_new_requests_until_enough_have_returned() -> None:
    limit = AdaptiveLimit(initial=4)
    limiter = Limiter(limit)
    slots = [await limiter.acquire() for _ in range(4)]
    answered(slots[0], limited=True, now=1.0)  # window 4 -> 2.8: limit 2
    assert limiter.limit == 2
    assert limiter.rate_limited == 1
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()  # 3 in flight, limit 2
    slots[1].unused()
    await asyncio.sleep(0)
    assert not waiter.done()  # 2 in flight, limit 2
    slots[2].unused()
    await waiter
    assert limiter.in_flight == 2


async def test_a_slot_is_released_once_whatever_is_called_after() -> None:
    limiter = Limiter(FixedLimit(2))
    slot = await limiter.acquire()
    answered(slot, limited=True)
    slot.unused()
    answered(slot, limited=True)
    assert limiter.in_flight == 0
    assert limiter.rate_limited == 1  # what the first release taught, once


async def test_unbounded_flow_control_hands_out_slots_and_reports_no_limit() -> None:
    limiter = make_limiter(None, math.inf)  # max_in_flight=None, a pool without a bound
    slots = [await limiter.acquire() for _ in range(1000)]
    assert limiter.state() == LimiterState(limit=None, in_flight=1000, waiting=0, rate_limited=0)
    for slot in slots:
        slot.unused()
    assert limiter.in_flight == 0


def test_the_pool_caps_every_limit() -> None:
    assert make_limiter("adaptive", 100).maximum == 100
    assert make_limiter(500, 100).limit == 100
    assert make_limiter(None, 30).limit == 30
    assert make_limiter(None, math.inf).maximum == math.inf


# -- the client ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "fast", "Adaptive"])
def test_max_in_flight_is_checked_when_the_client_is_built(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_in_flight=bad)  # type: ignore[arg-type]


async def test_siblings_share_one_limiter_and_report_it() -> None:
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_in_flight=3) as client:
        sibling = client.with_options(max_retries=0)
        assert client.max_in_flight == 3
        assert sibling.flow == client.flow == LimiterState(3, 0, 0, 0)
        assert sibling._limiter is client._limiter


async def test_a_call_that_waits_out_its_deadline_for_a_slot_was_never_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock(monkeypatch)
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_in_flight=1, deadline=5) as client:
        await client._limiter.acquire()  # another call holds the only slot
        with aioresponses() as mocked:
            mocked.post(CREATE_URL, status=201, payload=token_body())
            call = asyncio.create_task(client.access_tokens.create(SERVICE_SID, identity=IDENTITY))
            for _ in range(100):  # until the call waits for the slot, its deadline set
                if client.flow.waiting:
                    break
                await asyncio.sleep(0)
            assert client.flow.waiting == 1
            await clock.advance(6)
            monkeypatch.undo()  # the real clock again, for the client's clean-up
            with pytest.raises(APITimeoutError) as caught:
                await call
            assert not mocked.requests  # nothing left the machine
        error = caught.value
        assert not isinstance(error, OutcomeUnknownError)
        assert error.request_sent is False
        assert "waiting for its turn (1 in flight, limit 1)" in str(error)
        assert client.flow.waiting == 0


def test_an_account_holding_more_than_at_its_429_resumes_slow_start() -> None:
    limit = AdaptiveLimit(initial=20)
    answer(limit, at=1.0, sent_at=0.9, limited=True)  # no header: nothing learned of the account
    assert limit.account_limit is None
    limit.on_answer(sent_at=1.0, now=1.2, rate_limited=True, in_flight=13, concurrent=2)
    assert limit.account_limit == 1  # full at 2, this one included: an isolated 429
    grown = limit.value
    limit.on_answer(sent_at=1.2, now=1.4, rate_limited=False, in_flight=13, concurrent=9)
    assert limit.slow_start  # the account held 9 after saying "full" at 2
    assert limit.account_limit is None
    assert limit.value == grown + 1


def test_a_known_account_limit_holds_the_window_when_full_and_adds_one_when_not() -> None:
    limit = AdaptiveLimit(initial=60)
    limit.on_answer(sent_at=0.9, now=1.0, rate_limited=True, in_flight=59, concurrent=101)
    assert limit.account_limit == 100
    cut = limit.value
    for i in range(200):  # the account is full: growing would only earn the next 429
        limit.on_answer(
            sent_at=1.0 + i, now=1.2 + i, rate_limited=False, in_flight=41, concurrent=100
        )
    assert limit.value == cut
    assert not limit.slow_start
    for _ in range(int(limit.value)):  # one round trip with room on the account: +1 (AIMD)
        limit.on_answer(sent_at=300.0, now=300.2, rate_limited=False, in_flight=41, concurrent=80)
    assert limit.value == pytest.approx(cut + 1, abs=0.05)


def test_a_429_while_this_clients_own_requests_fill_the_account_keeps_its_limit() -> None:
    # Alone on an account of 50: slow start overshot to 80 in flight, and 30 were refused.
    limit = AdaptiveLimit(initial=80)
    limit.on_answer(sent_at=0.9, now=1.0, rate_limited=True, in_flight=79, concurrent=51)
    assert limit.account_limit == 50
    assert limit.value == pytest.approx(80 * ADAPTIVE_DECREASE)  # 56: a cut, never deeper
    limit.on_answer(sent_at=1.1, now=1.3, rate_limited=True, in_flight=55, concurrent=51)
    assert limit.value == 50  # not 39: nobody else needs the room
    # Sharing it (its own 30 of the 50 in flight), the cut is the usual one.
    shared = AdaptiveLimit(initial=40)
    shared.on_answer(sent_at=0.9, now=1.0, rate_limited=True, in_flight=30, concurrent=51)
    assert shared.value == pytest.approx(40 * ADAPTIVE_DECREASE)


def test_the_window_never_grows_above_a_known_account_limit() -> None:
    limit = AdaptiveLimit(initial=49)
    limit.on_answer(sent_at=0.9, now=1.0, rate_limited=True, in_flight=20, concurrent=51)
    assert limit.account_limit == 50
    for i in range(400):  # answers showing room (arrivals early in a wave see fewer)
        limit.on_answer(
            sent_at=1.0 + i * 0.01, now=1.2 + i * 0.01, rate_limited=False,
            in_flight=int(limit.value) - 1, concurrent=30,
        )  # fmt: skip
    assert limit.value == 50


def test_alone_on_an_account_with_room_the_window_takes_half_the_room_per_round_trip() -> None:
    """The clients sharing the account have finished: the one left fills it within a few
    round trips, not one request per round trip."""
    limit = AdaptiveLimit(initial=30)
    limit.on_answer(sent_at=0.9, now=1.0, rate_limited=True, in_flight=29, concurrent=101)
    assert limit.account_limit == 100
    rounds = 0
    while limit.value < 90:
        rounds += 1
        window = int(limit.value)
        for k in range(window):  # a round trip: the account's whole load is this client's
            limit.on_answer(
                sent_at=1.0 + rounds * 0.2 + k * 1e-4, now=1.2 + rounds * 0.2 + k * 1e-4,
                rate_limited=False, in_flight=window - 1, concurrent=window - k % 5,
            )  # fmt: skip
        assert rounds < 10
    assert rounds <= 6  # +1 per round trip would take about 70
    # Sharing it (the account holds twice this client's load), +1 per round trip only.
    shared = AdaptiveLimit(initial=30)
    shared.on_answer(sent_at=0.9, now=1.0, rate_limited=True, in_flight=29, concurrent=101)
    start = shared.value
    for rounds in range(1, 6):
        window = int(shared.value)
        for k in range(window):
            shared.on_answer(
                sent_at=1.0 + rounds * 0.2 + k * 1e-4, now=1.2 + rounds * 0.2 + k * 1e-4,
                rate_limited=False, in_flight=window - 1, concurrent=2 * window,
            )  # fmt: skip
    assert start + 2 < shared.value <= start + 5  # about one per round trip


def test_a_round_trip_that_saw_the_account_full_gives_no_room_bonus() -> None:
    """The answer showing the account at its limit counts in the round trip's peak, though
    it grows nothing itself: one such answer means the account had no room."""
    limit = AdaptiveLimit(initial=60)
    limit.on_answer(sent_at=0.9, now=1.0, rate_limited=True, in_flight=40, concurrent=101)
    start = limit.value
    for rounds in range(1, 4):
        window = int(limit.value)
        for k in range(window):
            count = 100 if k == window // 2 else 30 + k % 12  # else all its own (42)
            limit.on_answer(
                sent_at=1.0 + rounds * 0.2 + k * 1e-4, now=1.2 + rounds * 0.2 + k * 1e-4,
                rate_limited=False, in_flight=window - 1, concurrent=count,
            )  # fmt: skip
    assert limit.value <= start + 3.5  # +1 per round trip, no half-the-room jumps


@pytest.mark.sockets
async def test_a_paced_batch_holds_no_slot_while_it_waits_for_its_turn(
    verify_emulator: VerifyEmulator,
) -> None:
    """A FastAPI route's single create shares the client with a slow paced batch."""
    async with verify_emulator.client(max_in_flight=2, deadline=3) as client:
        sid = verify_emulator.service_sid
        batch = client.access_tokens.create_many(
            sid, [f"paced-user-{i:04d}" for i in range(6)], concurrency=4, rate_limit=0.2
        )
        async with batch:
            consumer = asyncio.create_task(anext(aiter(batch)))
            while verify_emulator.counters.tokens_created < 1:  # the first was sent unpaced
                await asyncio.sleep(0.01)
            # Three more items wait 5 s each for their turn; they hold none of the 2 slots, so
            # this call is sent at once (holding them, it would run out its 3 s deadline).
            token = await client.access_tokens.create(sid, identity="route-user-0001")
            assert token.entity_identity == "route-user-0001"
            assert client.flow.in_flight == 0
            await consumer
            batch.stop()


async def test_a_gate_closed_at_the_deadline_refuses_the_turn_instead_of_cancelling() -> None:
    """The deadline's timeout and close() cancel the waiter in the same loop turn: it ends in
    TurnRefused (the batch's stop), never as a cancelled task the batch would wait for."""
    loop = asyncio.get_running_loop()
    gate = Gate(rate=0.5)  # one turn per 2 s
    await gate.wait(None, None)  # the first turn: the next one is 2 s away
    deadline = loop.time() + 0.2

    async def waiter() -> str:
        try:
            await gate.wait(deadline, None)
        except TurnRefused:
            return "refused"
        except TimeoutError:
            return "timed out"
        return "turn"

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # the waiter arms its timeout first
    loop.call_at(deadline, gate.close)  # stop() at the deadline's instant
    async with asyncio.timeout(10):  # a hang guard only
        assert await task in {"refused", "timed out"}
    assert not task.cancelled()
