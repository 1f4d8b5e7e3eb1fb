"""The fixtures every folder of tests/ shares; the helpers they use are in tests/helpers/.

pytest puts this folder on ``sys.path`` (the default "prepend" import mode), so a test imports a
helper as ``from helpers.constants import ACCOUNT_SID``; test modules import no other test module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aioresponses
import pytest
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN
from helpers.hostile import HostileServer
from helpers.threaded import in_thread
from hypothesis import HealthCheck, settings

from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import VerifyEmulator
from verify_access_tokens.testing import aioresponses as compatible_aioresponses

pytest_plugins = ["verify_access_tokens.testing"]

# Property tests check behaviour, not speed: no per-example deadline that a busy CI box could hit.
settings.register_profile("project", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")


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
    """A misbehaving server on 127.0.0.1 (helpers/hostile.py); set ``.behaviour`` per test."""
    async with HostileServer() as server:
        yield server


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[VerifyEmulator]:
    """An emulator on its own loop in a thread, serving CLI subprocesses and ``main()`` (which
    runs its own ``asyncio.run()``); its credentials exported as an operator does, for ``main()``
    in this process (``helpers.cli.cli`` gives a subprocess only the ones it is passed)."""
    with in_thread(VerifyEmulator(seed=7)) as emu:
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", emu.account_sid)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", emu.auth_token)
        yield emu
