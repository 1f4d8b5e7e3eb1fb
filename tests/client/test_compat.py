"""The aiohttp fence (verify_access_tokens/_http/_compat.py), against the installed aiohttp.

CI runs the suite on the lowest declared aiohttp and on the newest, so each helper is checked on
both ends of the supported range; the aiohttp 3.10 path is also forced on the installed version
(where aiohttp would re-send by itself), so it is checked on every line.
"""

from __future__ import annotations

import aiohttp
import pytest
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, NOWHERE
from helpers.forward_proxy import ForwardProxy
from helpers.leaks import acquired_connections, aiohttp_resends, session_acquired

from verify_access_tokens import APIConnectionError, VerifyClient
from verify_access_tokens._http import _compat
from verify_access_tokens.emulator import Faults, VerifyEmulator


def test_session_proxy_is_detected_by_version() -> None:
    major, minor = (int(part) for part in aiohttp.__version__.split(".")[:2])
    assert _compat.SESSION_PROXY is ((major, minor) >= (3, 11))


async def test_private_attributes_exist_in_the_installed_aiohttp() -> None:
    """Fails when aiohttp renames a private attribute the package relies on."""
    async with aiohttp.ClientSession() as session:
        assert aiohttp_resends(session) is True  # aiohttp's default
        assert session_acquired(session) == 0
        assert session.connector is not None
        assert isinstance(_compat.require(session.connector, "_acquired"), set)
        if _compat.SESSION_PROXY:
            assert isinstance(_compat.require(session, "_retry_connection"), bool)
        else:
            assert _compat.require(session, "_request_class") is aiohttp.ClientRequest


def test_require_fails_loudly_on_a_renamed_attribute() -> None:
    with pytest.raises(RuntimeError, match=r"object\._gone is gone"):
        _compat.require(object(), "_gone")


async def test_acquired_connections_of_a_closed_connector() -> None:
    session = aiohttp.ClientSession()
    await session.close()
    session._connector = None  # what aiohttp leaves after close() on some versions
    assert session_acquired(session) == 0


async def test_own_session_does_not_let_aiohttp_resend() -> None:
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN) as client:
        assert aiohttp_resends(client._transport.session()) is False


async def test_a_lent_session_is_never_modified() -> None:
    async with aiohttp.ClientSession() as session:
        classes = (session._request_class, session._response_class)
        async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN, session=session) as client:
            assert client._transport.session() is session
        assert aiohttp_resends(session) is True
        assert (session._request_class, session._response_class) == classes


@pytest.fixture(params=["installed", "3.10 path"])
def aiohttp_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each end-to-end check below, with the session as the installed aiohttp gets it and as
    aiohttp 3.10 gets it (request and response classes), whichever aiohttp is installed."""
    if request.param == "3.10 path":
        monkeypatch.setattr(_compat, "SESSION_PROXY", False)
    return str(request.param)


@pytest.mark.sockets
async def test_a_dropped_connection_is_not_resent_by_aiohttp(
    verify_emulator: VerifyEmulator, aiohttp_path: str
) -> None:
    """A fetch (idempotent, which aiohttp would send again once) is sent once per attempt."""
    verify_emulator.set_faults(Faults(drop_rate=1.0))
    async with verify_emulator.client(max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, NOWHERE)
        assert acquired_connections(client) == 0
        assert aiohttp_resends(client._transport.session()) is False
    assert info.value.attempts == 1
    assert info.value.request_sent is True
    assert verify_emulator.counters.requests == 1


@pytest.mark.sockets
async def test_the_own_session_sends_through_the_proxy(
    verify_emulator: VerifyEmulator, aiohttp_path: str
) -> None:
    async with ForwardProxy() as proxy, verify_emulator.client(proxy=proxy.url) as client:
        token = await client.access_tokens.create(verify_emulator.service_sid, identity="a" * 16)
        assert await client.access_tokens.fetch(token.service_sid, token.sid) == token
    assert proxy.counters.forwarded == 2
