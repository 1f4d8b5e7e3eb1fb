"""verify_access_tokens.testing for tests that mock: the aioresponses shim and valid answers."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect

import aiohttp
import aioresponses as upstream
import pytest
from aioresponses import core as upstream_core
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, CREATE_URL, SERVICE_SID

from verify_access_tokens import (
    AccessToken,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    FactorType,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    ResponseValidationError,
    VerifyClient,
)
from verify_access_tokens._http import _compat
from verify_access_tokens.emulator import VerifyEmulator
from verify_access_tokens.testing import (
    _marker_options,
    access_token,
    access_token_body,
    aioresponses,
    twilio_error_body,
)


async def create() -> AccessToken:
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_retries=0) as client:
        return await client.access_tokens.create(SERVICE_SID, identity="user-0001")


async def test_the_shim_mocks_a_create_with_a_valid_body() -> None:
    body = access_token_body(service_sid=SERVICE_SID, entity_identity="user-0001")
    with aioresponses() as mocked:
        mocked.post(CREATE_URL, payload=body, status=201)
        token = await create()
    assert token.to_dict() == body
    assert token.factor_type is FactorType.PUSH
    assert token.url == f"{CREATE_URL}/{body['sid']}"
    assert token.expires_at > dt.datetime.now(dt.UTC)  # created now, valid for 300 s


async def test_the_shim_works_as_a_decorator_and_restores_aioresponses() -> None:
    @aioresponses()
    async def mocked_test(mocked: upstream.aioresponses) -> AccessToken:
        assert upstream_core.ClientResponse is _compat.mock_response_class()
        mocked.post(CREATE_URL, payload=access_token_body(ttl=60))
        return await create()

    assert (await mocked_test()).ttl == 60
    assert upstream_core.ClientResponse is aiohttp.ClientResponse


# aiohttp 3.14 made ClientResponse's `stream_writer` required; older lines need no shim.
NEEDS_SHIM = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


async def test_aioresponses_alone_fails_where_the_shim_is_needed() -> None:
    """Why the shim exists. When this fails, aioresponses builds responses itself again:
    delete the shim (verify_access_tokens._http._compat) and make `aioresponses` an alias."""
    with upstream.aioresponses() as mocked:
        mocked.post(CREATE_URL, payload=access_token_body())
        if NEEDS_SHIM:
            with pytest.raises(TypeError, match="stream_writer"):
                await create()
        else:
            assert (await create()).ttl == 300


def test_the_aiohttp_internals_the_shim_needs_still_exist() -> None:
    """ClientResponse reads only `output_size` from its `stream_writer` for a request already
    sent; aioresponses looks its response class up as `aioresponses.core.ClientResponse`."""
    assert (_compat.mock_response_class() is not aiohttp.ClientResponse) == NEEDS_SHIM
    assert _compat.require(upstream_core, "ClientResponse") is aiohttp.ClientResponse
    with aioresponses() as mocked:
        mocked.get("http://mocked.test/", body=b"ok", status=203, headers={"X-A": "1"})

        async def get() -> tuple[int, bytes, str]:
            async with (
                aiohttp.ClientSession() as session,
                session.get("http://mocked.test/") as resp,
            ):
                return resp.status, await resp.read(), resp.headers["X-A"]

        assert asyncio.run(get()) == (203, b"ok", "1")


def test_access_token_body_is_what_create_parses() -> None:
    body = access_token_body()
    assert set(body) == {
        "sid", "account_sid", "service_sid", "entity_identity", "factor_type",
        "factor_friendly_name", "token", "url", "ttl", "date_created",
    }  # fmt: skip
    token = access_token()
    assert token.to_dict()["sid"] == body["sid"]
    assert token.token.count(".") == 2
    assert token.token.startswith("eyJ")
    assert access_token_body() is not access_token_body()  # a new dict each time


def test_access_token_overrides_and_url() -> None:
    token = access_token(sid="YK" + "1" * 32, factor_friendly_name="Ana's phone", ttl=120)
    assert (token.factor_friendly_name, token.ttl) == ("Ana's phone", 120)
    assert token.url.endswith("/AccessTokens/YK" + "1" * 32)
    assert (
        access_token_body(url="https://elsewhere.example/x")["url"] == "https://elsewhere.example/x"
    )


def test_a_bad_field_name_is_named_with_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown field 'identity'; fields: sid, account_sid"):
        access_token_body(identity="user-0001")


def test_an_invalid_value_is_kept_so_a_test_can_mock_a_bad_answer() -> None:
    assert access_token_body(ttl="300")["ttl"] == "300"


async def test_access_token_equals_what_the_client_parses_from_the_body() -> None:
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    overrides = {"service_sid": SERVICE_SID, "factor_friendly_name": "Ana's phone"}
    with aioresponses() as mocked:
        mocked.post(
            CREATE_URL, payload=access_token_body(**overrides, date_created=created.isoformat())
        )
        parsed = await create()
    assert access_token(**overrides, date_created=created) == parsed
    assert access_token(**overrides, date_created="2026-01-02T03:04:05Z") == parsed
    assert access_token(factor_type="totp-next").factor_type == "totp-next"  # unknown: a str


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        (pytest.mark.verify_emulator(seed=1, fault=2), "unknown keyword 'fault'; it takes"),
        (pytest.mark.verify_emulator(1), "positional arguments; it takes the keywords host,"),
    ],
)
def test_the_marker_check_fails_the_test_in_one_line(
    mark: pytest.MarkDecorator, message: str
) -> None:
    with pytest.raises(pytest.fail.Exception, match=message) as info:
        _marker_options(mark.mark, VerifyEmulator)
    assert "\n" not in str(info.value)
    assert info.value.pytrace is False
    assert _marker_options(pytest.mark.verify_emulator(seed=1).mark, VerifyEmulator) == {"seed": 1}


async def test_a_mocked_body_over_128_kib_reaches_the_client_whole() -> None:
    """aioresponses' own stream would fail with aiohttp's bare AssertionError past 128 KiB."""
    assert _compat.require(upstream_core, "stream_reader_factory") is not None
    body = access_token_body(service_sid=SERVICE_SID, entity_identity="user-0001")
    body["padding"] = "x" * (256 * 1024)  # an unknown key: ignored by the parser
    with aioresponses() as mocked:
        mocked.post(CREATE_URL, payload=body, status=201)
        token = await create()
    assert token.entity_identity == "user-0001"
    with aioresponses() as mocked:  # past max_response_bytes: the client's own typed error
        body["padding"] = "x" * (2 * 1024 * 1024)
        mocked.post(CREATE_URL, payload=body, status=201)
        with pytest.raises(OutcomeUnknownError) as caught:
            await create()
    assert isinstance(caught.value.cause, ResponseValidationError)


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [(429, RateLimitError, 20429), (401, AuthenticationError, 20003), (404, NotFoundError, 20404)],
)
async def test_twilio_error_body_mocks_the_matching_error(
    status: int, error: type[APIStatusError], code: int
) -> None:
    with aioresponses() as mocked:
        mocked.post(
            CREATE_URL,
            payload=twilio_error_body(status),
            status=status,
            headers={"Retry-After": "2"},
        )
        with pytest.raises(error) as caught:
            await create()
    assert caught.value.code == code
    assert caught.value.more_info == f"https://www.twilio.com/docs/errors/{code}"
    if status == 429:
        assert caught.value.retry_after == 2.0
    assert twilio_error_body(409, 12345, "custom") == {
        "code": 12345,
        "message": "custom",
        "more_info": "https://www.twilio.com/docs/errors/12345",
        "status": 409,
    }


async def test_a_mocked_connection_reset_is_a_typed_error() -> None:
    with aioresponses() as mocked:
        mocked.post(CREATE_URL, exception=ConnectionResetError("reset by peer"))
        with pytest.raises(OutcomeUnknownError) as caught:  # it may have been sent
            await create()
    assert isinstance(caught.value.cause, APIConnectionError)
    assert "reset by peer" in str(caught.value)
