"""What every part of the emulator answers with: Twilio-shaped errors, sids, hang-ups."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, NoReturn

from aiohttp import web


def hex_sid(prefix: str, rng: random.Random | None = None) -> str:
    bits = (rng or random.SystemRandom()).getrandbits(128)
    return f"{prefix}{bits:032x}"


def twilio_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


def hang_up(request: web.Request) -> NoReturn:
    """Close the connection without an answer, as a crashed proxy or a cut network would."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError  # aiohttp's way to end a handler without answering


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
