"""Reading the access-token request's body: form-encoded or JSON, 16 KiB at most.

Private to `verify_access_tokens.fastapi`; parsed with the standard library (``urllib.parse``,
``json``), so ``python-multipart`` is not needed.
"""

# No ``from __future__ import annotations``, like the router module FastAPI introspects.
import json
import urllib.parse
from typing import Final

from fastapi import Request

from ._errors import EndpointError

MAX_BODY_BYTES: Final = 16 * 1024


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 past ``MAX_BODY_BYTES`` before reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > MAX_BODY_BYTES:
        raise EndpointError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise EndpointError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def identity_from(body: bytes, content_type: str) -> object:
    media_type = content_type.partition(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EndpointError(400, "request body is not UTF-8") from None
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            # Every object's keys, kept in pairs: a repeated top-level "identity" must be
            # refused as in a form, not read as its last value (what a WAF saw may differ).
            document = json.loads(text, object_pairs_hook=lambda pairs: pairs)
        except (ValueError, RecursionError):
            raise EndpointError(400, "request body is not valid JSON") from None
        if not isinstance(document, list) or not all(isinstance(p, tuple) for p in document):
            return None  # not an object
        values = [value for key, value in document if key == "identity"]
        if len(values) > 1:
            raise EndpointError(400, "identity: given more than once")
        return values[0] if values else None
    if media_type != "application/x-www-form-urlencoded":  # a missing type too: say the type
        raise EndpointError(
            415, "send identity form-encoded (application/x-www-form-urlencoded) or as JSON"
        )
    try:
        # Strict: invalid percent-encoded UTF-8 (identity=%ff%fe) would otherwise decode to
        # replacement characters, and different bytes to the same identity.
        form = urllib.parse.parse_qs(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise EndpointError(
            400, "request body has percent-encoded bytes that are not UTF-8"
        ) from None
    values = form.get("identity", [])
    if len(values) > 1:
        raise EndpointError(400, "identity: given more than once")
    return values[0] if values else None
