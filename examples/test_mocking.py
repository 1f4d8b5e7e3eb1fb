"""Mocking the client in your own tests: at the HTTP layer, or at your own seam."""

from unittest import mock

import pytest

from verify_access_tokens import AccessTokens, RateLimitError, VerifyClient
from verify_access_tokens.testing import (
    access_token,
    access_token_body,
    aioresponses,
    twilio_error_body,
)

SERVICE_SID = "VA" + "0" * 32
BASE_URL = (
    "https://verify.twilio.com"  # given to the client: no TWILIO_*/VERIFY_* variable moves it
)
CREATE_URL = f"{BASE_URL}/v2/Services/{SERVICE_SID}/AccessTokens"


async def enroll_user(client: VerifyClient, user_id: str) -> str | None:
    """Your application code: the token to hand to the mobile app, or None when Twilio is busy."""
    try:
        token = await client.access_tokens.create(SERVICE_SID, identity=user_id)
    except RateLimitError:
        return None
    return token.token


def make_client() -> VerifyClient:
    return VerifyClient("AC" + "0" * 32, "test-auth-token", base_url=BASE_URL, max_retries=0)


@pytest.mark.asyncio
async def test_enroll_with_aioresponses() -> None:
    body = access_token_body(service_sid=SERVICE_SID, entity_identity="user-0001")
    with aioresponses() as mocked:  # every aiohttp request in this block is mocked
        mocked.post(CREATE_URL, payload=body, status=201)
        async with make_client() as client:
            assert await enroll_user(client, "user-0001") == body["token"]
    mocked.assert_called_once()


@pytest.mark.asyncio
async def test_a_busy_twilio_with_aioresponses() -> None:
    with aioresponses() as mocked:
        mocked.post(CREATE_URL, payload=twilio_error_body(429), status=429)
        async with make_client() as client:
            assert await enroll_user(client, "user-0001") is None


@pytest.mark.asyncio
async def test_enroll_with_a_mocked_create() -> None:
    token = access_token(service_sid=SERVICE_SID, entity_identity="user-0002")
    with mock.patch.object(AccessTokens, "create", autospec=True, return_value=token) as create:
        async with make_client() as client:
            assert await enroll_user(client, "user-0002") == token.token
    create.assert_awaited_once_with(mock.ANY, SERVICE_SID, identity="user-0002")


@pytest.mark.asyncio
async def test_a_busy_twilio_with_an_autospec_client() -> None:
    client = mock.create_autospec(VerifyClient, instance=True)
    client.access_tokens.create.side_effect = RateLimitError(retry_after=2.0)
    assert await enroll_user(client, "user-0003") is None
