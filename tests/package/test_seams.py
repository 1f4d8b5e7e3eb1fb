"""The package's seams: public surface, one copy path, no import cycles (fence: test_compat)."""

from __future__ import annotations

import inspect

import aiohttp
import pytest
from aioresponses import aioresponses
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, FETCH_URL, SERVICE_SID, TOKEN_SID

from verify_access_tokens import ConfigurationError, ResponseValidationError, VerifyClient
from verify_access_tokens._http._types import NOT_GIVEN

# Settings of the session or the identity: siblings share them, so with_options cannot change them.
SESSION_LEVEL = {
    "account_sid",
    "auth_token",
    "api_key",
    "api_secret",
    "base_url",
    "region",
    "edge",
    "pool_limit",
    "max_in_flight",  # one limiter per client, shared by its siblings
    "keepalive_timeout",
    "session",
    "trace_configs",
    "tracer_provider",  # one set of instruments per client, shared by its siblings
    "meter_provider",
    "proxy",
    "proxy_auth",
    "trust_env",
}


def test_with_options_covers_every_per_call_setting() -> None:
    """openai's test_copy_signature: a new __init__ setting must be added to with_options or
    listed here as session-level, never forgotten."""
    init = inspect.signature(VerifyClient.__init__).parameters
    copy = inspect.signature(VerifyClient.with_options).parameters
    per_call = set(init) - {"self"} - SESSION_LEVEL
    assert per_call == set(copy) - {"self"}
    for name in per_call:
        assert copy[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        wider = set(str(copy[name].annotation).split(" | "))
        accepted = set(str(init[name].annotation).split(" | "))
        if init[name].default is None:
            accepted.discard("None")  # there None only means "the default"
        assert accepted <= wider, name
        assert "NotGiven" in wider, name
        assert copy[name].default is NOT_GIVEN, name


def test_with_options_sets_retry_after_max_and_keeps_the_rest() -> None:
    parent = VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_retries=5, extra_headers={"X-A": "1"})
    child = parent.with_options(retry_after_max=3)
    assert child.retry_after_max == 3.0
    assert parent.retry_after_max == 60.0
    assert child.max_retries == 5
    assert child._options.extra_headers == {"X-A": "1"}
    assert child.access_tokens._client is child
    with pytest.raises(ConfigurationError, match="retry_after_max"):
        parent.with_options(retry_after_max=0)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("pool_limit", 1),
        ("keepalive_timeout", 5.0),
        ("trace_configs", []),
        ("proxy", "http://127.0.0.1:3128"),
        ("proxy_auth", ("user", "pass")),
        ("trust_env", True),
    ],
)
async def test_session_with_a_session_setting_is_refused(setting: str, value: object) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigurationError, match=setting) as info:
            VerifyClient(ACCOUNT_SID, AUTH_TOKEN, session=session, **{setting: value})  # type: ignore[arg-type]
    assert info.value.setting == "session"


async def test_unparsable_2xx_keeps_request_method_url_and_attempts(mocked: aioresponses) -> None:
    request_id = "RQ" + "e" * 32
    mocked.get(FETCH_URL, status=200, body=b"[]", headers={"Twilio-Request-Id": request_id})
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    error = info.value
    assert (error.method, error.url, error.request_id) == ("GET", FETCH_URL, request_id)
    assert error.attempts == 1
    assert error.status == 200


async def test_unparsable_2xx_drops_a_request_id_of_another_shape(mocked: aioresponses) -> None:
    mocked.get(FETCH_URL, status=200, body=b"[]", headers={"Twilio-Request-Id": AUTH_TOKEN})
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert info.value.request_id is None
