"""Credentials, environment variables, base URL/region/edge and client settings."""

from __future__ import annotations

import base64
import copy
import math
import pickle

import aiohttp
import pytest
from helpers.constants import ACCOUNT_SID, API_KEY, API_SECRET, AUTH_TOKEN

from verify_access_tokens import ConfigurationError, VerifyClient


def auth_of(client: VerifyClient) -> str:
    header = client._transport._headers["Authorization"]
    return base64.b64decode(header.removeprefix("Basic ")).decode()


def test_explicit_account_credentials() -> None:
    c = VerifyClient(ACCOUNT_SID, AUTH_TOKEN)
    assert c.account_sid == ACCOUNT_SID
    assert auth_of(c) == f"{ACCOUNT_SID}:{AUTH_TOKEN}"


def test_env_account_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    assert auth_of(VerifyClient()) == f"{ACCOUNT_SID}:{AUTH_TOKEN}"


def test_explicit_api_key() -> None:
    c = VerifyClient(api_key=API_KEY, api_secret=API_SECRET, account_sid=ACCOUNT_SID)
    assert auth_of(c) == f"{API_KEY}:{API_SECRET}"
    assert API_KEY in repr(c)


def test_env_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_API_KEY", API_KEY)
    monkeypatch.setenv("TWILIO_API_SECRET", API_SECRET)
    assert auth_of(VerifyClient()) == f"{API_KEY}:{API_SECRET}"


def test_explicit_auth_token_beats_env_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_API_KEY", API_KEY)
    assert auth_of(VerifyClient(ACCOUNT_SID, AUTH_TOKEN)) == f"{ACCOUNT_SID}:{AUTH_TOKEN}"


@pytest.mark.parametrize(
    ("kwargs", "env", "setting"),
    [
        ({}, {}, "TWILIO_ACCOUNT_SID"),
        ({"account_sid": ACCOUNT_SID}, {}, "TWILIO_AUTH_TOKEN"),
        ({"account_sid": "AC123", "auth_token": AUTH_TOKEN}, {}, "account_sid"),
        ({"auth_token": AUTH_TOKEN}, {"TWILIO_ACCOUNT_SID": "ACnope"}, "TWILIO_ACCOUNT_SID"),
        ({"account_sid": ACCOUNT_SID, "auth_token": ""}, {}, "auth_token"),
        ({"account_sid": ACCOUNT_SID, "api_key": "SKbad", "api_secret": "x"}, {}, "api_key"),
        ({"account_sid": ACCOUNT_SID, "api_key": API_KEY}, {}, "TWILIO_API_SECRET"),
        ({"account_sid": ACCOUNT_SID, "auth_token": 123}, {}, "auth_token"),
    ],
)
def test_bad_credentials_name_the_setting_not_the_value(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], env: dict[str, str], setting: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        VerifyClient(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting
    assert AUTH_TOKEN not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_secret_not_echoed_when_sid_malformed() -> None:
    with pytest.raises(ConfigurationError) as info:
        VerifyClient(AUTH_TOKEN, AUTH_TOKEN)  # secret pasted into the sid slot
    assert AUTH_TOKEN not in str(info.value)
    assert AUTH_TOKEN not in repr(info.value)


@pytest.mark.parametrize(
    ("kwargs", "env", "expected"),
    [
        ({}, {}, "https://verify.twilio.com"),
        ({"region": "au1"}, {}, "https://verify.sydney.au1.twilio.com"),
        ({"region": "ie1"}, {}, "https://verify.dublin.ie1.twilio.com"),
        ({"region": "jp1"}, {}, "https://verify.tokyo.jp1.twilio.com"),
        ({}, {"TWILIO_REGION": "us1"}, "https://verify.ashburn.us1.twilio.com"),
        ({"edge": "sydney"}, {}, "https://verify.sydney.us1.twilio.com"),
        ({"edge": "sydney", "region": "au1"}, {}, "https://verify.sydney.au1.twilio.com"),
        (
            {},
            {"TWILIO_REGION": "ie1", "TWILIO_EDGE": "dublin"},
            "https://verify.dublin.ie1.twilio.com",
        ),
        ({"base_url": "https://proxy.example/"}, {"TWILIO_REGION": "ie1"}, "https://proxy.example"),
        ({"base_url": "http://127.0.0.1:8080"}, {}, "http://127.0.0.1:8080"),
        ({"base_url": "http://127.5.0.1:8080"}, {}, "http://127.5.0.1:8080"),
        ({"base_url": "http://localhost:1"}, {}, "http://localhost:1"),
        ({"base_url": "http://[::1]:8080"}, {}, "http://[::1]:8080"),
        ({}, {"VERIFY_ACCESS_TOKENS_BASE_URL": "http://127.0.0.1:9/"}, "http://127.0.0.1:9"),
        (
            {},
            {"VERIFY_ACCESS_TOKENS_BASE_URL": "https://gw.example", "TWILIO_REGION": "ie1"},
            "https://gw.example",
        ),
        (
            {"base_url": "https://arg.example"},
            {"VERIFY_ACCESS_TOKENS_BASE_URL": "https://gw.example"},
            "https://arg.example",
        ),
        (
            {"region": "au1"},
            {"VERIFY_ACCESS_TOKENS_BASE_URL": "https://gw.example"},
            "https://verify.sydney.au1.twilio.com",
        ),
        ({}, {"VERIFY_ACCESS_TOKENS_BASE_URL": ""}, "https://verify.twilio.com"),
    ],
)
def test_base_url_resolution(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, str], env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert VerifyClient(ACCOUNT_SID, AUTH_TOKEN, **kwargs).base_url == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "env", "named"), [
    ({"region": "xx9"}, {}, "region"),
    ({}, {"TWILIO_REGION": "xx9"}, "TWILIO_REGION"),
])  # fmt: skip
def test_a_region_without_a_known_default_edge_asks_for_its_edge(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, str], env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        VerifyClient(ACCOUNT_SID, AUTH_TOKEN, **kwargs)  # type: ignore[arg-type]
    assert info.value.setting == named
    assert "edge" in info.value.rule
    assert VerifyClient(ACCOUNT_SID, AUTH_TOKEN, region="xx9", edge="far").base_url == (
        "https://verify.far.xx9.twilio.com"
    )


def test_base_url_variable_is_refused_over_plain_http_off_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VERIFY_ACCESS_TOKENS_BASE_URL", "http://verify.twilio.com")
    with pytest.raises(ConfigurationError, match="loopback") as info:
        VerifyClient(ACCOUNT_SID, AUTH_TOKEN)
    assert info.value.setting == "VERIFY_ACCESS_TOKENS_BASE_URL"


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"base_url": "http://verify.twilio.com"}, "base_url"),
        ({"base_url": "http://10.0.0.1"}, "base_url"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "verify.twilio.com"}, "base_url"),
        ({"base_url": "https://u:p@verify.twilio.com"}, "base_url"),
        ({"base_url": "https://verify.twilio.com?x=1"}, "base_url"),
        ({"region": "AU1/../"}, "region"),
        ({"edge": "a.b"}, "edge"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"deadline": 0}, "deadline"),
        ({"pool_limit": 0}, "pool_limit"),
        ({"keepalive_timeout": "x"}, "keepalive_timeout"),
        ({"retry_after_max": -5}, "retry_after_max"),
        ({"timeout": math.inf}, "timeout"),
        ({"deadline": math.inf}, "deadline"),
        ({"deadline": math.nan}, "deadline"),
        ({"keepalive_timeout": math.inf}, "keepalive_timeout"),
        ({"retry_after_max": math.inf}, "retry_after_max"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        VerifyClient(ACCOUNT_SID, AUTH_TOKEN, **kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting


def test_timeouts_defaults_and_overrides() -> None:
    c = VerifyClient(ACCOUNT_SID, AUTH_TOKEN)
    # connect 5 s + read 30 s: one attempt may take 35 s, a new socket must connect within 5 s
    assert (c.timeout.total, c.timeout.sock_connect, c.timeout.sock_read) == (35.0, 5.0, None)
    assert (c.max_retries, c.deadline) == (2, 60.0)
    short = VerifyClient(ACCOUNT_SID, AUTH_TOKEN, timeout=3)
    assert (short.timeout.total, short.timeout.sock_connect) == (3.0, 3.0)
    custom = aiohttp.ClientTimeout(total=9, sock_read=2)
    assert VerifyClient(ACCOUNT_SID, AUTH_TOKEN, timeout=custom).timeout is custom
    assert VerifyClient(ACCOUNT_SID, AUTH_TOKEN, deadline=None).deadline is None


def test_with_options_derives_without_touching_parent() -> None:
    parent = VerifyClient(ACCOUNT_SID, AUTH_TOKEN)
    child = parent.with_options(timeout=2, max_retries=5, deadline=7, retry_ambiguous_creates=True)
    assert (child.timeout.total, child.max_retries, child.deadline) == (2.0, 5, 7.0)
    assert child._options.retry.retry_ambiguous_creates is True
    assert (parent.timeout.total, parent.max_retries, parent.deadline) == (35.0, 2, 60.0)
    assert child._transport is parent._transport
    assert child.access_tokens._client is child


def test_repr_shows_no_secret() -> None:
    c = VerifyClient(ACCOUNT_SID, AUTH_TOKEN)
    assert AUTH_TOKEN not in repr(c)
    assert ACCOUNT_SID in repr(c)
    header = c._transport._headers["Authorization"]
    assert repr(header) == "'<redacted>'"
    assert base64.b64encode(AUTH_TOKEN.encode()[:12]).decode()[:8] not in repr(
        c._transport.__dict__
    )


SURROGATE_SECRET = "tok-\udcff-secret"


@pytest.mark.parametrize(
    ("kwargs", "env", "setting"),
    [
        ({"auth_token": SURROGATE_SECRET}, {}, "auth_token"),
        ({"api_key": "SK" + "1" * 32, "api_secret": SURROGATE_SECRET}, {}, "api_secret"),
        ({}, {"TWILIO_AUTH_TOKEN": SURROGATE_SECRET}, "TWILIO_AUTH_TOKEN"),
        ({"auth_token": AUTH_TOKEN, "proxy": "http://127.0.0.1:3128"}, {}, None),
        (
            {
                "auth_token": AUTH_TOKEN,
                "proxy": "http://127.0.0.1:3128",
                "proxy_auth": ("u", "пароль"),
            },
            {},
            "proxy_auth",
        ),
        (
            {
                "auth_token": AUTH_TOKEN,
                "proxy": "http://127.0.0.1:3128",
                "proxy_auth": ("u", "\ud800"),
            },
            {},
            "proxy_auth",
        ),
        ({"auth_token": AUTH_TOKEN, "proxy": "http://u:пароль@127.0.0.1:3128"}, {}, "proxy"),
        ({"auth_token": AUTH_TOKEN, "proxy": "http://пользователь:p@127.0.0.1:3128"}, {}, "proxy"),
    ],
)
def test_unencodable_secrets_are_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, object],
    env: dict[str, str],
    setting: str | None,
) -> None:
    """A secret the client could not put in its header (a lone surrogate; a proxy password
    outside latin-1, the charset aiohttp sends Proxy-Authorization in) fails at build, typed,
    naming the setting and not quoting the value, instead of a UnicodeEncodeError later."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if setting is None:  # the control: a latin-1 proxy setting builds
        VerifyClient(ACCOUNT_SID, **kwargs)  # type: ignore[arg-type]
        return
    with pytest.raises(ConfigurationError) as info:
        VerifyClient(ACCOUNT_SID, **kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting
    for leaked in (SURROGATE_SECRET, "пароль", "пользователь"):
        assert leaked not in str(info.value) + repr(info.value)


@pytest.mark.parametrize(
    ("kwargs", "env", "named"),
    [
        ({"auth_token": AUTH_TOKEN + "\n"}, {}, "auth_token"),
        ({}, {"TWILIO_AUTH_TOKEN": AUTH_TOKEN + "\n"}, "TWILIO_AUTH_TOKEN"),
        ({}, {"TWILIO_AUTH_TOKEN": " " + AUTH_TOKEN}, "TWILIO_AUTH_TOKEN"),
        ({"account_sid": ACCOUNT_SID + "\r\n", "auth_token": AUTH_TOKEN}, {}, "account_sid"),
    ],
)
def test_a_credential_with_surrounding_whitespace_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, str], env: dict[str, str], named: str
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        VerifyClient(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == named
    assert "whitespace" in info.value.rule
    assert AUTH_TOKEN not in str(info.value)


def test_a_client_refuses_to_be_pickled_or_deep_copied_and_says_why() -> None:
    client = VerifyClient(ACCOUNT_SID, AUTH_TOKEN, proxy="http://user:proxy-pass@127.0.0.1:3128")
    for copy_out in (pickle.dumps, copy.deepcopy):
        with pytest.raises(TypeError, match="credentials") as info:
            copy_out(client)
        assert AUTH_TOKEN not in str(info.value)
    sibling = client.with_options(max_retries=0)  # the one copy path still works
    assert sibling.max_retries == 0
    assert sibling.access_tokens._client is sibling
