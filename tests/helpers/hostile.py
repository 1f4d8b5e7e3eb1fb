"""A small hostile HTTP server on 127.0.0.1 for end-to-end tests (and benchmarks/bench_hostile.py).

It answers every request with whatever ``server.behaviour`` says: a huge or endless body, a
gzip bomb, deeply nested JSON, an echo of the request's Authorization header, an odd status.
Real sockets, real aiohttp client parsing: what a broken proxy or an attacker could send.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from helpers import threaded

Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]
MIB = 1024 * 1024


def gzip_bomb(decoded_size: int, encoding: str = "gzip") -> bytes:
    """``decoded_size`` zero bytes, gzip- or deflate-compressed (1 GiB of zeros is about 1 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    block = bytes(MIB)
    parts = [compressor.compress(block) for _ in range(decoded_size // MIB)]
    parts.append(compressor.compress(bytes(decoded_size % MIB)))
    parts.append(compressor.flush())
    return b"".join(parts)


def json_body(data: Any, status: int = 200, **headers: str) -> Behaviour:
    text = json.dumps(data)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=status, text=text, content_type="application/json", headers=headers
        )

    return handler


def raw_body(
    body: bytes, status: int = 200, content_type: str = "application/json", **headers: str
) -> Behaviour:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    return handler


def nested(depth: int = 5000, status: int = 200) -> Behaviour:
    """A small body of ``depth`` nested arrays inside an object (json.loads recursion)."""
    body = b'{"message": ' + b"[" * depth + b"]" * depth + b"}"
    return raw_body(body, status)


def huge(size: int, status: int = 200, chunked: bool = False) -> Behaviour:
    """``size`` bytes of JSON-ish filler, streamed in 64 KiB writes (never held in memory)."""
    chunk = b" " * (64 * 1024)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = size
        await response.prepare(request)
        sent = 0
        try:
            while sent < size:
                part = chunk[: size - sent]
                await response.write(part)
                sent += len(part)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up, as it should
        return response

    return handler


def endless(status: int = 200) -> Behaviour:
    """A chunked body that never ends."""
    return huge(1 << 62, status, chunked=True)


def bomb(decoded_size: int = 1024 * MIB, status: int = 200, encoding: str = "gzip") -> Behaviour:
    payload = gzip_bomb(decoded_size, encoding)
    return raw_body(payload, status, **{"Content-Encoding": encoding})


def echo_authorization(status: int = 401) -> Behaviour:
    """A proxy that quotes the request's credentials back: in Twilio's JSON, reason and headers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        body = {"code": 20003, "message": f"bad header {auth} ({auth.split(' ')[-1]})"}
        return web.Response(
            status=status,
            reason=f"Denied {auth}",
            text=json.dumps(body),
            content_type="application/json",
            headers={"Twilio-Request-Id": f"RQ{auth}", "X-Echo": auth},
        )

    return handler


def echo_credentials(transform: Callable[[str], str], status: int = 401) -> Behaviour:
    """A server that quotes every form of the request's credentials (header value, base64,
    ``user:secret``, secret) after ``transform`` (upper-cased, percent-encoded ...)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        encoded = auth.partition(" ")[2]
        pair = base64.b64decode(encoded).decode()
        forms = " ".join(transform(form) for form in (auth, encoded, pair, pair.partition(":")[2]))
        return web.Response(
            status=status,
            reason=f"Denied {forms}",
            text=json.dumps({"code": 20003, "message": f"bad {forms}", "more_info": forms}),
            content_type="application/json",
            headers={"Twilio-Request-Id": transform(auth)},
        )

    return handler


def long_status_line(status: int = 500) -> Behaviour:
    """A status line over aiohttp's 8190-byte limit that starts by quoting the Authorization:
    aiohttp's parser error keeps only its first 100 bytes, cutting the base64 in two."""

    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        return web.Response(status=status, reason=f"PPPPPP{auth}" + "a" * 9000)

    return handler


def cut_mid_headers() -> Behaviour:
    """A status line and some headers (a cookie, a JWT, the request's Authorization), then the
    connection closes before the blank line that ends the headers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        assert request.transport is not None
        request.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Set-Cookie: session=eyJhbGciOiJIUzI1NiJ9.c2Vzc2lvbg.c2ln; HttpOnly\r\n"
            + f"X-Echo: {auth}\r\nX-Partial: ".encode()
        )
        request.transport.close()
        raise asyncio.CancelledError  # aiohttp's way to end a handler without answering

    return handler


class HostileServer:
    """``async with HostileServer() as server``; set ``server.behaviour``; ``server.base_url``."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour: Behaviour = behaviour or json_body({})
        self.requests = 0
        self.peers: list[object] = []  # the client's (host, port) per request: connection reuse
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )
        self.headers.append(dict(request.headers))
        await request.read()
        return await self.behaviour(request)

    async def __aenter__(self) -> HostileServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def in_thread(
    behaviour: Behaviour | None = None,
) -> contextlib.AbstractContextManager[HostileServer]:
    """A hostile server on its own loop in a thread, for code that runs ``asyncio.run()``."""
    return threaded.in_thread(HostileServer(behaviour))
