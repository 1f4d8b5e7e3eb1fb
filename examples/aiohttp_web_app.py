"""aiohttp.web: a handler that mints an enrollment token and answers Verify's failures.

    python examples/aiohttp_web_app.py      # serves on 127.0.0.1:8080 against a local emulator

`endpoint_answer` maps any `VerifyError` to the status, headers (``Retry-After`` kept) and JSON
error body that the FastAPI router answers with, so a handler in another framework needs no
mapping of its own. Who the caller is comes from your own login (here a stand-in header).
"""

from __future__ import annotations

import logging

from aiohttp import web

from verify_access_tokens import VerifyClient, VerifyError, endpoint_answer
from verify_access_tokens.emulator import VerifyEmulator

CLIENT = web.AppKey("client", VerifyClient)
SERVICE_SID = web.AppKey("service_sid", str)
log = logging.getLogger("my_app")


async def access_token(request: web.Request) -> web.Response:
    identity = request.headers.get("X-User-Id", "")  # your login's user id, not the body's
    try:
        token = await request.app[CLIENT].access_tokens.create(
            request.app[SERVICE_SID], identity=identity
        )
    except VerifyError as error:
        log.warning("create failed: %s request_id=%s", type(error).__name__, error.request_id)
        answer = endpoint_answer(error)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)
    return web.json_response({"token": token.token}, headers={"Cache-Control": "no-store"})


def make_app(client: VerifyClient, service_sid: str) -> web.Application:
    app = web.Application()
    app[CLIENT] = client
    app[SERVICE_SID] = service_sid
    app.router.add_post("/access-token", access_token)
    return app


async def main() -> web.Application:
    emulator = VerifyEmulator()
    await emulator.start()
    client = emulator.client()
    app = make_app(client, emulator.service_sid)

    async def close(_: web.Application) -> None:
        await client.aclose()
        await emulator.stop()

    app.on_cleanup.append(close)
    return app


if __name__ == "__main__":
    web.run_app(main(), host="127.0.0.1", port=8080)
