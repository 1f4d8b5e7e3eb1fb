"""How to test your own code with the installed pytest plugin (the ``testing`` extra).

python -m pytest examples/test_my_app.py

README's plugin snippet is this file's code up to the first test, as pasted into a project.
"""

from __future__ import annotations

import pytest

from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import Faults, VerifyEmulator


async def enroll_user(client: VerifyClient, service_sid: str, user_id: str) -> str:
    """Your application code: returns the token to hand to the mobile app."""
    token = await client.access_tokens.create(service_sid, identity=user_id)
    return token.token


@pytest.mark.asyncio  # with anyio's plugin: @pytest.mark.anyio + an "asyncio" anyio_backend
@pytest.mark.verify_emulator(faults=Faults(rate_limit=5), seed=1)
async def test_enrollment_survives_rate_limits(
    verify_client: VerifyClient, verify_emulator: VerifyEmulator
) -> None:
    for i in range(8):  # more than the emulator allows per second: the client waits and retries
        await enroll_user(verify_client, verify_emulator.service_sid, f"user-{i:04d}-abcd")
    assert verify_emulator.counters.rate_limited > 0
    assert verify_emulator.counters.tokens_created == 8


@pytest.mark.asyncio
async def test_enroll_user(verify_client: VerifyClient, verify_emulator: VerifyEmulator) -> None:
    jwt = await enroll_user(verify_client, verify_emulator.service_sid, "user-0001-abcd")
    assert verify_emulator.decode_token(jwt)["identity"] == "user-0001-abcd"
    assert verify_emulator.counters.tokens_created == 1
