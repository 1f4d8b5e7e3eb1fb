"""Shared fixtures and constants."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioresponses
import pytest
from helpers.threaded import in_thread
from hostile import HostileServer
from hypothesis import HealthCheck, settings

from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import VerifyEmulator
from verify_access_tokens.testing import aioresponses as compatible_aioresponses

pytest_plugins = ["verify_access_tokens.testing"]

# Property tests check behaviour, not speed: no per-example deadline that a busy CI box could hit.
settings.register_profile("project", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "s3cr3t-auth-token-value-0123456789"
API_KEY = "SK" + "b" * 32
API_SECRET = "s3cr3t-api-secret-value-9876543210"
SERVICE_SID = "VA" + "c" * 32
TOKEN_SID = "YK" + "d" * 32
IDENTITY = "ff483d1ff591898a9942916050d2ca3f"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzZWNyZXQiOnRydWV9.c2lnbmF0dXJlLXNlY3JldC1qd3Q"
BASE_URL = "https://verify.twilio.com"
CREATE_URL = f"{BASE_URL}/v2/Services/{SERVICE_SID}/AccessTokens"
FETCH_URL = f"{CREATE_URL}/{TOKEN_SID}"


def token_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sid": TOKEN_SID,
        "account_sid": ACCOUNT_SID,
        "service_sid": SERVICE_SID,
        "entity_identity": IDENTITY,
        "factor_type": "push",
        "factor_friendly_name": "Ana's phone",
        "token": JWT,
        "url": FETCH_URL,
        "ttl": 300,
        "date_created": "2015-07-30T20:00:00Z",
    }
    body.update(overrides)
    return body


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real Twilio settings."""
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
        "TWILIO_REGION",
        "TWILIO_EDGE",
        "VERIFY_ACCESS_TOKENS_LOG",
        "VERIFY_ACCESS_TOKENS_BASE_URL",
        "VERIFY_SERVICE_SID",
        *(f"{scheme}_proxy" for scheme in ("http", "https", "all", "no")),
        *(f"{scheme}_PROXY" for scheme in ("HTTP", "HTTPS", "ALL", "NO")),
        "NETRC",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mocked() -> Iterator[aioresponses.aioresponses]:
    """aioresponses through the package's public shim (verify_access_tokens.testing)."""
    with compatible_aioresponses() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[VerifyClient]:
    """A client with test credentials and no retry sleeps worth waiting for."""
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_retries=0) as c:
        yield c


@pytest.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    """A misbehaving server on 127.0.0.1 (see tests/hostile.py); set ``.behaviour`` per test."""
    async with HostileServer() as server:
        yield server


@pytest.fixture
def emulator() -> Iterator[VerifyEmulator]:
    """An emulator on its own loop in a thread, serving CLI subprocesses and ``main()``."""
    with in_thread(VerifyEmulator(seed=7)) as emu:
        yield emu
