"""Create an enrollment access token, then fetch it back.

Runs against a local emulator by default; set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and
VERIFY_SERVICE_SID to run it against Twilio instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import VerifyEmulator


async def enroll(client: VerifyClient, service_sid: str) -> None:
    token = await client.access_tokens.create(
        service_sid,
        identity="ff483d1ff591898a9942916050d2ca3f",
        factor_friendly_name="Ana's phone",  # optional
        ttl=300,  # optional, 60..300
    )  # factor_type defaults to FactorType.PUSH
    same = await client.access_tokens.fetch(token.service_sid, token.sid)
    assert same == token
    print(token)  # the JWT and the friendly name are left out of repr
    print(f"token: <{len(token.token)} characters, masked: hand it to the device, never log it>")


async def main() -> None:
    if "TWILIO_AUTH_TOKEN" in os.environ:
        async with VerifyClient() as client:  # credentials from TWILIO_* env vars
            await enroll(client, os.environ["VERIFY_SERVICE_SID"])
        return
    async with VerifyEmulator() as emulator, emulator.client() as client:
        await enroll(client, emulator.service_sid)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
