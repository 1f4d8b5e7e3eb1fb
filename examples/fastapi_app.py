"""FastAPI: one VerifyClient for the whole app, made in the lifespan and closed on shutdown.

    pip install "verify-access-tokens[examples]"
    uvicorn examples.fastapi_app:app

With TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and VERIFY_SERVICE_SID set it talks to Twilio
(VERIFY_ACCESS_TOKENS_BASE_URL overrides the origin); otherwise it starts a local emulator in
the lifespan.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from verify_access_tokens import (
    APIConnectionError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    RequestValidationError,
    VerifyClient,
    VerifyError,
)
from verify_access_tokens.emulator import VerifyEmulator


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        if "TWILIO_AUTH_TOKEN" in os.environ:
            client = VerifyClient()  # VERIFY_ACCESS_TOKENS_BASE_URL, if set
            app.state.service_sid = os.environ["VERIFY_SERVICE_SID"]
        else:
            emulator = await stack.enter_async_context(VerifyEmulator())
            client = emulator.client()
            app.state.service_sid = emulator.service_sid
        app.state.verify = await stack.enter_async_context(client)
        yield  # the client's pooled session serves every request until shutdown


app = FastAPI(title="Enrollment service", lifespan=lifespan)


def verify_client(request: Request) -> VerifyClient:
    client: VerifyClient = request.app.state.verify
    return client


Verify = Annotated[VerifyClient, Depends(verify_client)]


class EnrollmentIn(BaseModel):
    identity: str = Field(description="your user's immutable, non-PII id (a UUID)")
    device_name: str | None = None


class EnrollmentOut(BaseModel):
    service_sid: str
    sid: str
    token: str = Field(description="hand this to the mobile app's Verify SDK; never log it")
    ttl: int


class EnrollmentStatus(BaseModel):
    service_sid: str
    sid: str
    identity: str
    factor_type: str
    ttl: int
    date_created: str


@app.post("/enrollments", status_code=201)
async def create_enrollment(body: EnrollmentIn, client: Verify, request: Request) -> EnrollmentOut:
    token = await client.access_tokens.create(
        request.app.state.service_sid,
        identity=body.identity,
        factor_friendly_name=body.device_name,
        ttl=300,
    )
    return EnrollmentOut(service_sid=token.service_sid, sid=token.sid, token=token.token,
                         ttl=token.ttl)  # fmt: skip


@app.get("/enrollments/{service_sid}/{sid}")
async def get_enrollment(service_sid: str, sid: str, client: Verify) -> EnrollmentStatus:
    token = await client.access_tokens.fetch(service_sid, sid)
    return EnrollmentStatus(
        service_sid=token.service_sid,
        sid=token.sid,
        identity=token.entity_identity,
        factor_type=str(token.factor_type),
        ttl=token.ttl,
        date_created=token.date_created.isoformat(),
    )


@app.exception_handler(VerifyError)
async def verify_error_response(request: Request, exc: VerifyError) -> JSONResponse:
    """Map the client's errors to answers for *our* callers, without leaking upstream detail."""
    if isinstance(exc, RequestValidationError):
        detail = {"field": exc.field, "message": exc.rule}
        return JSONResponse({"detail": detail}, status_code=422)
    if isinstance(exc, NotFoundError):
        raise HTTPException(404, "no such enrollment")
    if isinstance(exc, RateLimitError):
        retry_after = str(int(exc.retry_after or 1))
        return JSONResponse({"detail": "busy, retry later"}, status_code=429,
                            headers={"Retry-After": retry_after})  # fmt: skip
    if isinstance(exc, OutcomeUnknownError):
        # The token may exist; tell the caller to check or retry deliberately, not blindly.
        return JSONResponse({"detail": "enrollment outcome unknown, retry later"}, status_code=502)
    if isinstance(exc, APIConnectionError):
        return JSONResponse({"detail": "verification service unreachable"}, status_code=503)
    return JSONResponse({"detail": "verification service error"}, status_code=502)
