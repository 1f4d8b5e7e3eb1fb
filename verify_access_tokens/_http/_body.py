"""Reading a response body with a cap on its decoded size."""

from __future__ import annotations

import asyncio
from typing import Final

import aiohttp

__all__ = ["read_body"]

_READ_SIZE: Final = 64 * 1024  # bounds each copy out of aiohttp's buffer, hence each loop step


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The decoded body, or ``None`` (and the connection closed) when it is over ``limit``.

    aiohttp decompresses incrementally under flow control, a bounded slice per read, so reading
    chunk by chunk bounds memory and loop time for a gzip bomb as for a plain huge body.
    """
    length = resp.content_length
    if length is not None and "Content-Encoding" not in resp.headers:
        if length <= limit:
            return await resp.read()  # the usual small answer: aiohttp's own path, unchanged
        resp.close()  # announced too large: not even read
        return None
    chunks = []
    size = 0
    content = resp.content
    while chunk := await content.read(_READ_SIZE):
        size += len(chunk)
        if size > limit:
            resp.close()  # the rest stays unread: the connection cannot go back to the pool
            return None
        chunks.append(chunk)
        if size > _READ_SIZE:
            # Buffered data comes back without a suspension, and each read lets aiohttp inflate
            # the next slice: yield, or a compressed body would hold the loop until the cap.
            await asyncio.sleep(0)
    return b"".join(chunks)
