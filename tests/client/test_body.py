"""The client inflates gzip/deflate itself, under the cap, the same on every aiohttp line.

aiohttp up to 3.12 inflates a network chunk whole (a bomb grows memory without bound), and 3.13
stops at 32 MiB with a payload error that read as a dropped connection and was retried; here a
bomb is the body-too-large error after one attempt, and real bodies in every variant decode.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, JWT, SERVICE_SID, TOKEN_SID, token_body
from helpers.hostile import MIB, HostileServer, bomb, gzip_bomb, raw_body
from helpers.leaks import acquired_connections

from verify_access_tokens import APIConnectionError, ResponseValidationError, VerifyClient
from verify_access_tokens._http import _body

pytestmark = pytest.mark.sockets
BODY = json.dumps(token_body()).encode()


def _client(server: HostileServer, **options: Any) -> VerifyClient:
    return VerifyClient(ACCOUNT_SID, AUTH_TOKEN, base_url=server.base_url, **options)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_bomb_past_aiohttp_313s_own_limit_is_body_too_large_after_one_attempt(
    hostile: HostileServer, encoding: str
) -> None:
    """64 MiB decoded (over aiohttp 3.13's 32 MiB): a fetch, which is retried on connection
    errors, is not re-sent; the error names max_response_bytes; the connection is dropped."""
    hostile.behaviour = bomb(64 * MIB, encoding=encoding)
    async with _client(hostile) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
        assert acquired_connections(client) == 0
    assert info.value.attempts == 1
    assert hostile.requests == 1
    assert "max_response_bytes (1048576)" in str(info.value)


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("gzip", gzip.compress(BODY)),
        ("GZip", gzip.compress(BODY)),  # the token is case-insensitive (RFC 9110)
        ("gzip", gzip.compress(BODY[:100]) + gzip.compress(BODY[100:])),  # two members
        ("deflate", zlib.compress(BODY)),  # zlib-wrapped, as RFC 9110 says
        ("deflate", _raw_deflate(BODY)),  # raw deflate, as some servers send it
        ("identity", BODY),
    ],
    ids=["gzip", "gzip-case", "gzip-two-members", "deflate-zlib", "deflate-raw", "identity"],
)
async def test_compressed_answers_are_decoded(
    hostile: HostileServer, encoding: str, payload: bytes
) -> None:
    hostile.behaviour = raw_body(payload, **{"Content-Encoding": encoding})
    async with _client(hostile) as client:
        token = await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert token.token == JWT
    assert hostile.headers[0]["Accept-Encoding"] == "gzip, deflate"


async def test_a_body_that_does_not_inflate_is_a_connection_error(hostile: HostileServer) -> None:
    hostile.behaviour = raw_body(b"\x1f\x8b not gzip at all", **{"Content-Encoding": "gzip"})
    async with _client(hostile, max_retries=0) as client:
        with pytest.raises(APIConnectionError, match="ClientPayloadError"):
            await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
        assert acquired_connections(client) == 0


async def test_an_encoding_not_asked_for_is_left_alone(hostile: HostileServer) -> None:
    """A server that answers ``br`` although only gzip and deflate were offered: the bytes are
    not JSON, which is a validation error, not a crash."""
    hostile.behaviour = raw_body(b"\x0b\x02\x80not brotli", **{"Content-Encoding": "br"})
    async with _client(hostile) as client:
        with pytest.raises(ResponseValidationError):
            await client.access_tokens.fetch(SERVICE_SID, TOKEN_SID)


def test_inflating_hands_out_bounded_slices() -> None:
    """One 64 KiB network read of a bomb inflates to far more: it comes out a slice at a time,
    the rest of that read kept for the next call rather than inflated at once or dropped."""
    data = gzip_bomb(8 * MIB)
    inflater = _body._Inflater("gzip")
    inflater.feed(data)
    sizes = []
    while piece := inflater.next_slice():
        sizes.append(len(piece))
    assert max(sizes) <= _body._READ_SIZE
    assert sum(sizes) == 8 * MIB
