"""The AccessTokens resource against mocked HTTP (aioresponses): requests built, answers parsed."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aioresponses import aioresponses
from helpers.constants import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CREATE_URL,
    FETCH_URL,
    IDENTITY,
    JWT,
    SERVICE_SID,
    TOKEN_SID,
    token_body,
)
from yarl import URL

from verify_access_tokens import (
    AccessToken,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    FactorType,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
    VerifyClient,
    __version__,
)


def sent(mocked: aioresponses, method: str, url: str) -> list[Any]:
    return mocked.requests[(method, URL(url))]


def sent_form(call: Any) -> dict[str, str]:
    """The form a call sent: encoded by the client to bytes, with its Content-Type."""
    assert call.kwargs["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    body = call.kwargs["data"]
    assert isinstance(body, bytes)
    return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))


async def test_create_sends_exact_form_and_parses_token(
    client: VerifyClient, mocked: aioresponses
) -> None:
    mocked.post(CREATE_URL, status=201, payload=token_body())
    token = await client.access_tokens.create(
        SERVICE_SID, identity=IDENTITY, factor_friendly_name="Ana's phone", ttl=300
    )
    [call] = sent(mocked, "POST", CREATE_URL)
    assert sent_form(call) == {
        "Identity": IDENTITY,
        "FactorType": "push",
        "FactorFriendlyName": "Ana's phone",
        "Ttl": "300",
    }
    assert call.kwargs["allow_redirects"] is False
    assert token == AccessToken(
        sid=TOKEN_SID,
        account_sid=ACCOUNT_SID,
        service_sid=SERVICE_SID,
        entity_identity=IDENTITY,
        factor_type=FactorType.PUSH,
        factor_friendly_name="Ana's phone",
        token=JWT,
        url=FETCH_URL,
        ttl=300,
        date_created=dt.datetime(2015, 7, 30, 20, 0, tzinfo=dt.UTC),
    )


async def test_create_omits_optionals_never_sends_none(
    client: VerifyClient, mocked: aioresponses
) -> None:
    mocked.post(CREATE_URL, status=201, payload=token_body(ttl=60, factor_friendly_name=None))
    token = await client.access_tokens.create(SERVICE_SID, identity=IDENTITY, factor_type="push")
    [call] = sent(mocked, "POST", CREATE_URL)
    assert sent_form(call) == {"Identity": IDENTITY, "FactorType": "push"}
    assert token.ttl == 60
    assert token.factor_friendly_name is None


async def test_a_retried_create_sends_the_same_form(mocked: aioresponses) -> None:
    """The form is encoded once per call: every attempt sends it, whatever an answer held."""
    mocked.post(CREATE_URL, status=429, payload={"code": 20429}, headers={"Retry-After": "0"})
    mocked.post(CREATE_URL, status=201, payload=token_body())
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_retries=1) as c:
        await c.access_tokens.create(SERVICE_SID, identity=IDENTITY, ttl=60)
    first, second = sent(mocked, "POST", CREATE_URL)
    expected = {"Identity": IDENTITY, "FactorType": "push", "Ttl": "60"}
    assert sent_form(first) == sent_form(second) == expected


async def test_headers_auth_user_agent_accept(client: VerifyClient, mocked: aioresponses) -> None:
    mocked.get(FETCH_URL, payload=token_body())
    await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    [call] = sent(mocked, "GET", FETCH_URL)
    headers = call.kwargs["headers"]
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith(f"verify-access-tokens/{__version__} aiohttp/")
    assert "Python/3." in headers["User-Agent"]


async def test_api_key_auth_uses_key_and_secret(mocked: aioresponses) -> None:
    key, secret = "SK" + "1" * 32, "api-secret"
    mocked.get(FETCH_URL, payload=token_body())
    async with VerifyClient(api_key=key, api_secret=secret, account_sid=ACCOUNT_SID) as c:
        await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    [call] = sent(mocked, "GET", FETCH_URL)
    expected = base64.b64encode(f"{key}:{secret}".encode()).decode()
    assert call.kwargs["headers"]["Authorization"] == f"Basic {expected}"


async def test_create_accepts_200_too(client: VerifyClient, mocked: aioresponses) -> None:
    mocked.post(CREATE_URL, status=200, payload=token_body())
    response = await client.access_tokens.create_with_http_info(SERVICE_SID, identity=IDENTITY)
    assert response.status == 200
    assert response.data.sid == TOKEN_SID


async def test_with_http_info_exposes_status_headers_request_id(
    client: VerifyClient, mocked: aioresponses
) -> None:
    mocked.post(
        CREATE_URL, status=201, payload=token_body(), headers={"Twilio-Request-Id": "RQ123"}
    )
    mocked.get(FETCH_URL, status=200, payload=token_body(), headers={"Twilio-Request-Id": "RQ9"})
    created = await client.access_tokens.create_with_http_info(SERVICE_SID, identity=IDENTITY)
    fetched = await client.access_tokens.fetch_with_http_info(SERVICE_SID, TOKEN_SID)
    assert (created.status, created.request_id) == (201, "RQ123")
    assert (fetched.status, fetched.request_id) == (200, "RQ9")
    assert fetched.data == created.data
    assert "RQ123" not in repr(created)  # headers stay out of repr


async def test_fetch_returns_token(client: VerifyClient, mocked: aioresponses) -> None:
    mocked.get(FETCH_URL, payload=token_body(factor_type="totp-future"))
    token = await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert token.factor_type == "totp-future"
    assert not isinstance(token.factor_type, FactorType)


async def test_extra_headers_are_sent(mocked: aioresponses) -> None:
    mocked.get(FETCH_URL, payload=token_body())
    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN) as base:
        c = base.with_options(extra_headers={"X-Trace": "t1"})
        await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    [call] = sent(mocked, "GET", FETCH_URL)
    assert call.kwargs["headers"]["X-Trace"] == "t1"
    assert call.kwargs["headers"]["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, APIStatusError),
        (429, RateLimitError),
    ],
)
async def test_twilio_json_errors_map_to_classes(
    client: VerifyClient, mocked: aioresponses, status: int, cls: type[APIStatusError]
) -> None:
    body = {
        "code": 20000 + status,
        "message": f"problem {status}",
        "more_info": f"https://www.twilio.com/docs/errors/{20000 + status}",
        "status": status,
    }
    headers = {"Twilio-Request-Id": "RQabc", "Retry-After": "7"}
    mocked.get(FETCH_URL, status=status, payload=body, headers=headers)
    with pytest.raises(cls) as info:
        await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    err = info.value
    assert type(err) is cls
    assert (err.status, err.code, err.message) == (status, 20000 + status, f"problem {status}")
    assert err.more_info == body["more_info"]
    assert err.request_id == "RQabc"
    assert (err.method, err.url) == ("GET", FETCH_URL)
    assert err.retry_after == 7.0
    assert f"HTTP {status}" in str(err)
    assert f"Twilio code {20000 + status}" in str(err)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (502, "<html><body>Bad Gateway</body></html>", "text/html"),
        (503, "", "text/plain"),
        (504, "{truncated", "application/json"),
        (500, '["not", "an", "object"]', "application/json"),
    ],
)
async def test_proxy_error_pages_map_to_server_error(
    client: VerifyClient, mocked: aioresponses, status: int, body: str, content_type: str
) -> None:
    mocked.get(FETCH_URL, status=status, body=body, content_type=content_type)
    with pytest.raises(ServerError) as info:
        await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert info.value.status == status
    assert info.value.code is None
    assert "not a Twilio error" in info.value.message
    assert "Bad Gateway</body>" not in str(info.value)


async def test_html_error_on_401_still_maps_to_authentication_error(
    client: VerifyClient, mocked: aioresponses
) -> None:
    mocked.get(FETCH_URL, status=401, body="<html>nope</html>", content_type="text/html")
    with pytest.raises(AuthenticationError):
        await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)


async def test_a_success_status_without_a_token_is_a_response_error(
    client: VerifyClient, mocked: aioresponses
) -> None:
    mocked.get(FETCH_URL, status=204, body="")
    with pytest.raises(ResponseValidationError) as info:
        await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert info.value.status == 204
    assert info.value.attempts == 1


async def test_redirect_is_not_followed(client: VerifyClient, mocked: aioresponses) -> None:
    mocked.get(FETCH_URL, status=302, headers={"Location": "https://evil.example/steal"})
    with pytest.raises(APIStatusError) as info:
        await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert info.value.status == 302


async def test_create_5xx_is_outcome_unknown(client: VerifyClient, mocked: aioresponses) -> None:
    mocked.post(CREATE_URL, status=500, payload={"code": 20500, "message": "boom"})
    with pytest.raises(OutcomeUnknownError) as info:
        await client.access_tokens.create(SERVICE_SID, identity=IDENTITY)
    assert isinstance(info.value.cause, ServerError)
    assert info.value.__cause__ is info.value.cause
    assert "may have created" in str(info.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"<html>oops</html>", "$"),
        (b'{"sid": "YK', "$"),
        (b"[]", "$"),
        (b"", "$"),
    ],
)
async def test_bad_success_bodies_raise_response_validation_error(
    client: VerifyClient, mocked: aioresponses, body: bytes, field: str
) -> None:
    mocked.get(FETCH_URL, status=200, body=body)
    with pytest.raises(ResponseValidationError) as info:
        await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert info.value.field == field
    assert info.value.status == 200


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sid": None}, "$.sid"),
        ({"ttl": "300"}, "$.ttl"),
        ({"ttl": True}, "$.ttl"),
        ({"date_created": "yesterday"}, "$.date_created"),
        ({"date_created": "2015-07-30T20:00:00"}, "$.date_created"),
        ({"token": 12}, "$.token"),
        ({"factor_friendly_name": 3}, "$.factor_friendly_name"),
    ],
)
async def test_missing_or_mistyped_fields_name_the_path(
    client: VerifyClient, mocked: aioresponses, overrides: dict[str, Any], field: str
) -> None:
    mocked.post(CREATE_URL, status=201, payload=token_body(**overrides))
    with pytest.raises(OutcomeUnknownError) as info:  # created, but it cannot be returned
        await client.access_tokens.create(SERVICE_SID, identity=IDENTITY)
    cause = info.value.cause
    assert isinstance(cause, ResponseValidationError)
    assert cause.field == field
    assert cause.attempts == info.value.attempts == 1
    assert JWT not in str(info.value)


async def test_missing_field_names_it(client: VerifyClient, mocked: aioresponses) -> None:
    body = token_body()
    del body["account_sid"]
    mocked.get(FETCH_URL, payload=body)
    with pytest.raises(ResponseValidationError) as info:
        await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert info.value.field == "$.account_sid"
    assert "missing" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"identity": "short"}, "identity"),
        ({"identity": "user@example.com"}, "identity"),
        ({"identity": 12345678}, "identity"),
        ({"identity": ""}, "identity"),
        ({"ttl": 59}, "ttl"),
        ({"ttl": 301}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"ttl": "120"}, "ttl"),
        ({"factor_type": "sms"}, "factor_type"),
        ({"factor_friendly_name": ""}, "factor_friendly_name"),
        ({"factor_friendly_name": "x" * 65}, "factor_friendly_name"),
    ],
)
async def test_bad_input_raises_before_the_network(
    client: VerifyClient, mocked: aioresponses, kwargs: dict[str, Any], field: str
) -> None:
    params: dict[str, Any] = {"identity": IDENTITY, **kwargs}
    with pytest.raises(RequestValidationError) as info:
        await client.access_tokens.create(SERVICE_SID, **params)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert not mocked.requests


@pytest.mark.parametrize(
    ("service_sid", "sid", "field"),
    [
        ("VA../../Accounts", TOKEN_SID, "service_sid"),
        (SERVICE_SID + "\n", TOKEN_SID, "service_sid"),
        (SERVICE_SID, "YK" + "d" * 31 + "?", "sid"),
        (SERVICE_SID, "../" + TOKEN_SID, "sid"),
        (SERVICE_SID, None, "sid"),
    ],
)
async def test_malformed_sids_raise_before_the_network(
    client: VerifyClient, mocked: aioresponses, service_sid: Any, sid: Any, field: str
) -> None:
    with pytest.raises(RequestValidationError) as info:
        await client.access_tokens.fetch(service_sid, sid)
    assert info.value.field == field
    assert not mocked.requests
