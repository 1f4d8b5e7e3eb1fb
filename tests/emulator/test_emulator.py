"""The emulator over real sockets: the client end to end, raw HTTP answers, faults, plugin."""

from __future__ import annotations

import base64
import datetime as dt
import re
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from verify_access_tokens import (
    AuthenticationError,
    FactorType,
    NotFoundError,
    RequestValidationError,
    ServerError,
    VerifyClient,
)
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets
IDENTITY = "0b9a1c5e-3f1d-4c1a-9a7e-2f5d8c6b4a31"


@pytest.fixture
async def raw(verify_emulator: VerifyEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    auth = f"{verify_emulator.account_sid}:{verify_emulator.auth_token}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(auth).decode()}
    async with aiohttp.ClientSession(verify_emulator.base_url, headers=headers) as session:
        yield session


async def test_create_then_fetch_round_trip(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    token = await verify_client.access_tokens.create(
        verify_emulator.service_sid, identity=IDENTITY, factor_friendly_name="Ana's phone", ttl=120
    )
    assert token.sid.startswith("YK")
    assert token.account_sid == verify_emulator.account_sid
    assert (token.entity_identity, token.ttl, token.factor_type) == (IDENTITY, 120, FactorType.PUSH)
    assert token.factor_friendly_name == "Ana's phone"
    assert token.url == (
        f"{verify_emulator.base_url}/v2/Services/{token.service_sid}/AccessTokens/{token.sid}"
    )
    assert before <= token.date_created <= dt.datetime.now(dt.UTC)
    claims = verify_emulator.decode_token(token.token)
    assert claims["identity"] == IDENTITY
    assert claims["sub"] == verify_emulator.service_sid
    assert claims["factor_type"] == "push"
    assert claims["exp"] - claims["iat"] == 120
    assert await verify_client.access_tokens.fetch(token.service_sid, token.sid) == token
    counters = verify_emulator.counters
    assert (counters.requests, counters.tokens_created, counters.fetches) == (2, 1, 1)


async def test_default_ttl_is_60(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    token = await verify_client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    assert token.ttl == 60
    assert token.factor_friendly_name is None


async def test_api_key_credentials_work(verify_emulator: VerifyEmulator) -> None:
    client = verify_emulator.client(
        api_key=verify_emulator.api_key, api_secret=verify_emulator.api_secret
    )
    async with client:
        token = await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    assert token.account_sid == verify_emulator.account_sid


async def test_unknown_service_and_token_are_404(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    other = "VA" + "0" * 32
    with pytest.raises(NotFoundError) as info:
        await verify_client.access_tokens.create(other, identity=IDENTITY)
    assert info.value.code == 20404
    with pytest.raises(NotFoundError):
        await verify_client.access_tokens.fetch(verify_emulator.service_sid, "YK" + "0" * 32)
    token = await verify_client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    second = verify_emulator.add_service()
    with pytest.raises(NotFoundError):  # a token is only found under its own service
        await verify_client.access_tokens.fetch(second, token.sid)
    assert verify_emulator.counters.not_found == 3


async def test_wrong_credentials_are_401_with_challenge(
    verify_emulator: VerifyEmulator, raw: aiohttp.ClientSession
) -> None:
    async with verify_emulator.client(auth_token="wrong-token") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    assert info.value.code == 20003
    path = f"/v2/Services/{verify_emulator.service_sid}/AccessTokens"
    for headers in ({"Authorization": "Bearer x"}, {"Authorization": "Basic !!!"}):
        async with raw.post(path, data={}, headers=headers) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert verify_emulator.counters.unauthorized == 3


@pytest.mark.parametrize(
    ("form", "parameter"),
    [
        ({"FactorType": "push"}, "Identity"),
        ({"Identity": "short", "FactorType": "push"}, "Identity"),
        ({"Identity": IDENTITY}, "FactorType"),
        ({"Identity": IDENTITY, "FactorType": "sms"}, "FactorType"),
        ({"Identity": IDENTITY, "FactorType": "push", "Ttl": "abc"}, "Ttl"),
        ({"Identity": IDENTITY, "FactorType": "push", "Ttl": "59"}, "Ttl"),
        ({"Identity": IDENTITY, "FactorType": "push", "Ttl": "301"}, "Ttl"),
        (
            {"Identity": IDENTITY, "FactorType": "push", "FactorFriendlyName": "x" * 65},
            "FactorFriendlyName",
        ),
    ],
)
async def test_raw_invalid_parameters_get_twilio_400(
    verify_emulator: VerifyEmulator,
    raw: aiohttp.ClientSession,
    form: dict[str, str],
    parameter: str,
) -> None:
    async with raw.post(f"/v2/Services/{verify_emulator.service_sid}/AccessTokens", data=form) as r:
        body = await r.json()
    assert r.status == 400
    assert body["code"] == 60200
    assert body["status"] == 400
    assert f"`{parameter}`" in body["message"]
    assert body["more_info"] == "https://www.twilio.com/docs/errors/60200"
    assert verify_emulator.counters.tokens_created == 0


async def test_injected_503_and_counters(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(error_rate=1.0))
    async with verify_emulator.client(max_retries=0) as client:
        with pytest.raises(ServerError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, "YK" + "0" * 32)
    assert info.value.status == 503
    assert verify_emulator.counters.errors_injected == 1
    assert verify_emulator.counters.faults_injected == 1


async def test_rate_limit_answers_429_with_retry_after(
    verify_emulator: VerifyEmulator, raw: aiohttp.ClientSession
) -> None:
    verify_emulator.set_faults(Faults(rate_limit=0.5))
    path = f"/v2/Services/{verify_emulator.service_sid}/AccessTokens/{'YK' + '0' * 32}"
    statuses = []
    for _ in range(3):
        async with raw.get(path) as resp:
            statuses.append(resp.status)
            retry_after = resp.headers.get("Retry-After")
            body = await resp.json()
    assert statuses == [404, 429, 429]
    assert body["code"] == 20429
    assert retry_after is not None
    assert 1 <= int(retry_after) <= 2
    assert verify_emulator.counters.rate_limited == 2
    verify_emulator.set_faults(Faults(rate_limit=0.5, send_retry_after=False))  # a fresh bucket
    async with raw.get(path) as first, raw.get(path) as second:
        assert (first.status, second.status) == (404, 429)
        assert "Retry-After" not in second.headers


@pytest.mark.parametrize(
    "bad",
    [
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"lost_response_rate": 2},
        {"rate_limit": 0},
        {"latency": -1},
        {"latency": float("nan")},
        {"latency": float("inf")},
        {"rate_limit": float("nan")},
        {"rate_limit": float("inf")},
        {"error_rate": float("nan")},
        {"drop_rate": float("nan")},
        {"lost_response_rate": float("nan")},
    ],
)
def test_fault_settings_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Faults(**bad)  # type: ignore[arg-type]


def test_emulator_refuses_bad_service_sids_and_reports_not_running() -> None:
    with pytest.raises(RequestValidationError):
        VerifyEmulator(service_sids=["VA123"])
    with pytest.raises(RuntimeError, match="not running"):
        _ = VerifyEmulator().base_url


def test_decode_rejects_foreign_tokens() -> None:
    a, b = VerifyEmulator(), VerifyEmulator()
    from verify_access_tokens.emulator import _jwt

    forged = _jwt.encode({"identity": "x"}, b"another key")
    for token in (forged, "not.a.jwt", "a.b", _jwt.encode({"x": 1}, b"k")[:-3] + "AAA"):
        with pytest.raises(ValueError, match="not a token signed by this emulator"):
            a.decode_token(token)
    assert b.decode_token(_jwt.encode({"x": 1}, b._signing_key)) == {"x": 1}
    array_claims = _jwt._b64(b"{}") + "." + _jwt._b64(b"[1]")
    signature = _jwt.encode({}, a._signing_key)  # right key, but claims must be an object
    with pytest.raises(ValueError, match="not a token"):
        a.decode_token(array_claims + "." + signature.split(".")[2])


@pytest.mark.verify_emulator(service_sids=["VA" + "1" * 32], seed=3)
async def test_plugin_marker_configures_the_emulator(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient
) -> None:
    assert verify_emulator.service_sid == "VA" + "1" * 32
    assert verify_client.base_url == verify_emulator.base_url
    token = await verify_client.access_tokens.create("VA" + "1" * 32, identity=IDENTITY)
    assert token.service_sid == "VA" + "1" * 32


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    [entry] = [e for e in entry_points(group="pytest11") if e.name == "verify_access_tokens"]
    assert entry.value == "verify_access_tokens.testing"


async def test_every_answer_carries_a_twilio_request_id(
    verify_emulator: VerifyEmulator, verify_client: VerifyClient, caplog: pytest.LogCaptureFixture
) -> None:
    rq = re.compile(r"RQ[0-9a-f]{32}")
    sid = verify_emulator.service_sid
    created = await verify_client.access_tokens.create_with_http_info(sid, identity=IDENTITY)
    fetched = await verify_client.access_tokens.fetch_with_http_info(sid, created.data.sid)
    assert rq.fullmatch(created.request_id or "")
    assert rq.fullmatch(fetched.request_id or "")
    assert created.request_id != fetched.request_id
    caplog.set_level("INFO", logger="verify_access_tokens")
    with pytest.raises(NotFoundError) as info:
        await verify_client.access_tokens.fetch(sid, "YK" + "0" * 32)
    assert rq.fullmatch(info.value.request_id or "")
    assert f"request_id={info.value.request_id}" in caplog.text  # the log line names it too


async def test_a_client_vanishing_mid_request_logs_no_traceback(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that sends half a body and hangs up is nobody's error: no "Error handling
    request" traceback from aiohttp's server logger."""
    import asyncio

    host, port = "127.0.0.1", verify_emulator.port
    _, writer = await asyncio.open_connection(host, port)
    auth = base64.b64encode(
        f"{verify_emulator.account_sid}:{verify_emulator.auth_token}".encode()
    ).decode()
    writer.write(
        (
            f"POST /v2/Services/{verify_emulator.service_sid}/AccessTokens HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Basic {auth}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            "Identity=abc"
        ).encode()
    )
    await writer.drain()
    before = verify_emulator.counters.requests
    while verify_emulator.counters.requests == before:  # the handler is reading the body
        await asyncio.sleep(0.01)
    writer.transport.abort()
    with caplog.at_level("DEBUG", logger="aiohttp"):
        # The emulator is still serving, and the vanished request was handled (quietly).
        async with verify_emulator.client() as client:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    assert not [r for r in caplog.records if r.levelno >= 30 and r.name.startswith("aiohttp")]


def test_the_same_seed_gives_the_same_identity_on_every_start() -> None:
    """A running app keeps its credentials across a restart of a seeded emulator."""
    first, again, other = VerifyEmulator(seed=5), VerifyEmulator(seed=5), VerifyEmulator(seed=6)
    identity = (first.account_sid, first.auth_token, first.service_sid, first.api_key)
    assert identity == (again.account_sid, again.auth_token, again.service_sid, again.api_key)
    assert first.api_secret == again.api_secret
    assert first.account_sid != other.account_sid
    assert first.auth_token != other.auth_token
    unseeded = VerifyEmulator(), VerifyEmulator()
    assert unseeded[0].auth_token != unseeded[1].auth_token


def test_the_emulator_command_takes_its_identity_from_flags() -> None:
    service = "VA" + "5" * 32
    process = subprocess.Popen(
        [sys.executable, "-m", "verify_access_tokens", "emulator", "--port", "0", "--seed", "3",
         "--service-sid", service, "--auth-token", "given-token-0123"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline() for _ in range(6)]
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
    text = "".join(printed)
    assert f"export VERIFY_SERVICE_SID={service}" in text
    assert "export TWILIO_AUTH_TOKEN=given-token-0123" in text
    assert f"export TWILIO_ACCOUNT_SID={VerifyEmulator(seed=3).account_sid}" in text
