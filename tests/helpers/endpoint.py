"""The endpoint (``verify_access_tokens.fastapi``) inside an app, and what a phone expects of it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Header

from verify_access_tokens import VerifyClient
from verify_access_tokens.emulator import VerifyEmulator
from verify_access_tokens.fastapi import access_token_router


def accepted_by_android_sample(body: dict[str, Any]) -> bool:
    """The Android sample's rule: all four fields non-blank, and factorType is push."""
    fields = ("token", "serviceSid", "identity", "factorType")
    return all(isinstance(body.get(f), str) and body[f].strip() for f in fields) and (
        body["factorType"] == "push"
    )


def error_message(response: httpx.Response, status: int) -> str:
    """The message of ``response``, checked to be ``status`` in the endpoint's one error shape
    (``{"error": {"message", "moreInfo"}}``, no traceback)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "moreInfo"}
    assert "Traceback" not in response.text
    message: str = body["error"]["message"]
    return message


@contextlib.asynccontextmanager
async def router_app(
    emulator: VerifyEmulator, client: VerifyClient | None = None, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose lifespan owns the client, with the router mounted beside a route of the
    app's own (``POST /plain``, a required header), and an httpx client through its ASGI
    transport. ``options`` go to ``access_token_router`` (``provider``: its ``client=``)."""
    verify = client if client is not None else emulator.client(max_retries=0)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with verify:
            yield

    options.setdefault("service_sid", emulator.service_sid)
    if "authorize" not in options:
        options.setdefault("allow_any_identity", True)
    app = FastAPI(lifespan=lifespan)
    app.include_router(access_token_router(client=options.pop("provider", verify), **options))

    @app.post("/plain")
    async def plain(authorization: Annotated[str, Header()]) -> dict[str, str]:
        return {"ok": authorization}

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://backend") as http,
    ):
        yield http
    assert verify.closed  # the app's lifespan closed the one client
