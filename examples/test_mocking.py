"""Mocking the client in your own tests: at the HTTP layer, or at your own seam."""

from unittest import mock

import pytest

from verify_access_tokens import AccessTokens, VerifyClient
from verify_access_tokens.testing import access_token, access_token_body, aioresponses

SERVICE_SID = "VA" + "0" * 32
CREATE_URL = f"https://verify.twilio.com/v2/Services/{SERVICE_SID}/AccessTokens"


async def enroll_user(client: VerifyClient, user_id: str) -> str:
    """Your application code: returns the token to hand to the mobile app."""
    token = await client.access_tokens.create(SERVICE_SID, identity=user_id)
    return token.token


@pytest.mark.asyncio
async def test_enroll_with_aioresponses() -> None:
    body = access_token_body(service_sid=SERVICE_SID, entity_identity="user-0001")
    with aioresponses() as mocked:  # every aiohttp request in this block is mocked
        mocked.post(CREATE_URL, payload=body, status=201)
        async with VerifyClient("AC" + "0" * 32, "test-auth-token") as client:
            assert await enroll_user(client, "user-0001") == body["token"]
    mocked.assert_called_once()


@pytest.mark.asyncio
async def test_enroll_with_a_mocked_create() -> None:
    token = access_token(service_sid=SERVICE_SID, entity_identity="user-0002")
    with mock.patch.object(AccessTokens, "create", autospec=True, return_value=token) as create:
        async with VerifyClient("AC" + "0" * 32, "test-auth-token") as client:
            assert await enroll_user(client, "user-0002") == token.token
    create.assert_awaited_once_with(mock.ANY, SERVICE_SID, identity="user-0002")
