"""Reading a response body with a cap on its decoded size.

The transport asks aiohttp for the raw bytes (``auto_decompress=False``) and this module inflates
gzip and deflate itself, never more than one slice past the cap. aiohttp's own decoding differs
by version: up to 3.12 it inflates each network chunk whole (a 1 MB gzip bomb grows memory by
hundreds of MB), 3.13 stops at 32 MiB with a payload error (which would read as a dropped
connection, and be retried), 3.14 inflates under flow control. Decoding here is the same on all.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Final

import aiohttp

__all__ = ["ACCEPT_ENCODING", "read_body"]

_READ_SIZE: Final = 64 * 1024  # bounds each copy out of aiohttp's buffer, hence each loop step

#: What the client asks for: the encodings `read_body` inflates.
ACCEPT_ENCODING: Final = "gzip, deflate"

_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS


class _Inflater:
    """Incremental gzip/deflate decoding, handing out at most ``_READ_SIZE`` bytes at a time."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding == "gzip"
        self._decoder: zlib._Decompress | None = None
        self._pending = b""

    def feed(self, data: bytes) -> None:
        """Queue raw bytes; called once `next_slice` has used up the previous ones."""
        self._pending = data

    def next_slice(self) -> bytes:
        """Up to ``_READ_SIZE`` decoded bytes of the input fed so far; ``b""`` once it is used."""
        while self._pending:
            if self._decoder is None:
                self._decoder = self._new_decoder(self._pending)
            decoder = self._decoder
            piece = decoder.decompress(self._pending, _READ_SIZE)
            if decoder.eof:
                # A gzip body may be several members in a row (RFC 1952); anything after a
                # deflate stream is ignored, as aiohttp does.
                self._pending = decoder.unused_data if self._gzip else b""
                self._decoder = None
            else:
                self._pending = decoder.unconsumed_tail
            if piece:
                return piece
        return b""

    def _new_decoder(self, first: bytes) -> zlib._Decompress:
        if self._gzip:
            return zlib.decompressobj(_GZIP_WBITS)
        # "deflate" is meant to be zlib-wrapped (RFC 9110), but some servers send raw deflate:
        # told apart by the zlib header's compression method nibble, as aiohttp does.
        return zlib.decompressobj(zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS)


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The decoded body, or ``None`` (and the connection closed) when it is over ``limit``.

    Raw bytes are read 64 KiB at a time under aiohttp's flow control and inflated a bounded
    slice at a time, so memory and loop time stay bounded for a gzip bomb as for a plain huge
    body. A body that cannot be inflated is an `aiohttp.ClientPayloadError`, as aiohttp's own.
    """
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    inflater = _Inflater(encoding) if encoding in ("gzip", "deflate") else None
    length = resp.content_length
    if length is not None and inflater is None:
        if length <= limit:
            return await resp.read()  # the usual small answer: aiohttp's own path, unchanged
        resp.close()  # announced too large: not even read
        return None
    chunks = []
    size = 0
    content = resp.content
    try:
        while raw := await content.read(_READ_SIZE):
            if inflater is not None:
                inflater.feed(raw)
            piece = raw if inflater is None else inflater.next_slice()
            while piece:
                size += len(piece)
                if size > limit:
                    resp.close()  # the rest stays unread: the connection cannot go back
                    return None
                chunks.append(piece)
                if size > _READ_SIZE:
                    # Buffered data comes back without a suspension, and inflating takes
                    # time: yield, or a compressed body would hold the loop until the cap.
                    await asyncio.sleep(0)
                piece = b"" if inflater is None else inflater.next_slice()
    except zlib.error as exc:
        resp.close()
        raise aiohttp.ClientPayloadError(f"cannot decode Content-Encoding {encoding}") from exc
    return b"".join(chunks)
