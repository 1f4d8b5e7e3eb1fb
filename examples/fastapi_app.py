"""FastAPI: the backend a Verify Push mobile app asks for its enrollment access token.

    pip install "verify-access-tokens[fastapi]"
    uvicorn examples.fastapi_app:app

With TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and VERIFY_SERVICE_SID set it talks to Twilio
(VERIFY_ACCESS_TOKENS_BASE_URL overrides the origin); otherwise it starts a local emulator in
the lifespan.
The endpoint itself is `verify_access_tokens.fastapi.access_token_router`; this file only adds
what is yours: the client's lifespan and who the caller is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request

from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import VerifyEmulator
from verify_access_tokens.fastapi import access_token_router

SERVICE_SID = os.environ.get("VERIFY_SERVICE_SID", "VA" + "0" * 32)

# Stand-in for your login system: session token -> user id. Replace with your own check.
SESSIONS = {"demo-session-alice": "alice", "demo-session-bob": "bob"}


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        if "TWILIO_AUTH_TOKEN" in os.environ:
            client = VerifyClient()  # VERIFY_ACCESS_TOKENS_BASE_URL, if set
        else:
            emulator = VerifyEmulator(service_sids=[SERVICE_SID])
            client = (await stack.enter_async_context(emulator)).client()
        app.state.verify = await stack.enter_async_context(client)
        yield  # the client's pooled session serves every request until shutdown


async def verify_client(request: Request) -> VerifyClient:
    client: VerifyClient = request.app.state.verify
    return client


async def signed_in_user(authorization: Annotated[str | None, Header()] = None) -> str:
    """The identity this caller may enroll: their own user id, from their session."""
    scheme, _, session = (authorization or "").partition(" ")
    user = SESSIONS.get(session) if scheme.lower() == "bearer" else None
    if user is None:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    return user


app = FastAPI(title="Verify Push backend", lifespan=lifespan)
app.include_router(
    access_token_router(
        client=verify_client,  # the lifespan's client, one for every request
        service_sid=SERVICE_SID,
        authorize=signed_in_user,  # a user may enroll a phone for themselves only
        ttl=300,
    )
)  # POST /access-token, form-encoded or JSON `identity`, as the Verify Push samples send it
