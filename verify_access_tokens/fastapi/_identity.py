"""Whom a request asks a token for: the body's ``identity``, the hook's, and what Twilio sees.

Private to `verify_access_tokens.fastapi`, which re-exports the public dependencies. Bodies
are form-encoded or JSON, 16 KiB at most, parsed with the standard library (``urllib.parse``,
``json``), so ``python-multipart`` is not needed.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependencies' annotations.
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Sequence
from typing import Annotated, Final

from fastapi import Depends, Request

from .._core._validation import is_encodable
from ._errors import EndpointError

MAX_BODY_BYTES: Final = 16 * 1024
MAX_IDENTITY_CHARS: Final = 256


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
            # Every object's keys, kept in pairs: a repeated top-level "identity" is refused
            # as in a form, not read as its last value.
            document = json.loads(text, object_pairs_hook=lambda pairs: pairs)
        except (ValueError, RecursionError):
            raise EndpointError(400, "request body is not valid JSON") from None
        if not isinstance(document, list) or not all(isinstance(p, tuple) for p in document):
            return None  # not an object
        return _one([value for key, value in document if key == "identity"])
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
    return _one(form.get("identity", []))


def _one(values: Sequence[object]) -> object:
    """The identity, or ``None``; given twice, refused (what a WAF saw may differ)."""
    if len(values) > 1:
        raise EndpointError(400, "identity: given more than once")
    return values[0] if values else None


def identity_hash(identity: str, key: bytes | None = None) -> str:
    """The identity sent to Twilio: sha256 hex of ``identity``, or HMAC-SHA256 hex with ``key``.

    64 hex characters satisfy Verify's identity rule and keep the user's id (often PII) out of
    Twilio. A server-side ``key`` makes the mapping impossible to reverse by guessing ids.

    The router's 200 answer carries this value as ``identity``, and Twilio's Entity is
    named by it: compute it the same way to find a user's Entity or factors later.

    Args:
        identity: The app's own user id.
        key: HMAC key, kept server-side (default ``None``: plain sha256); the same bytes as
            the router's ``identity_hash_key``.

    Returns:
        64 lowercase hex characters.

    Example:
        ```python
        identity_hash("alice")  # '2bd806c9...d6e90' (64 hex characters)
        ```
    """
    data = identity.encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


async def offered_identity(request: Request) -> str | None:
    """FastAPI dependency: the ``identity`` the body names (form or JSON), or ``None``.

    An empty body, or one without an identity (or a blank one), is ``None``: with an
    authorization hook, the login says who the caller is. FastAPI caches it per request.

    Args:
        request: The incoming request; its body is form-encoded or JSON, 16 KiB at most.

    Returns:
        The identity, as sent, or ``None``.

    Raises:
        EndpointError: 400 for a non-string, too long or repeated identity or a body that is
            not UTF-8 (or not JSON when it says so, or with percent-encoded bytes that are not
            UTF-8), 413 for a body over 16 KiB, 415 for a body of a missing or another type.
    """
    body = await read_body(request)
    if not body:
        return None
    value = identity_from(body, request.headers.get("content-type", ""))
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise EndpointError(400, f"identity: must be a string, not {type(value).__name__}")
    if len(value) > MAX_IDENTITY_CHARS:
        raise EndpointError(400, f"identity: longer than {MAX_IDENTITY_CHARS} characters")
    try:
        value.encode("utf-8")  # hashed and compared as UTF-8 bytes downstream
    except UnicodeEncodeError:
        raise EndpointError(400, "identity: not valid Unicode (a lone surrogate)") from None
    return value


async def requested_identity(
    identity: Annotated[str | None, Depends(offered_identity)],
) -> str:
    """FastAPI dependency: the ``identity`` the caller asks a token for; 400 when missing.

    As `offered_identity`, which it reads (once per request, cached by FastAPI), so an
    authorization hook may depend on it too without reading the body twice.

    Args:
        identity: What the body names (`offered_identity`).

    Returns:
        The identity, as sent.

    Raises:
        EndpointError: 400 for a missing or blank identity; the errors of `offered_identity`.
    """
    if identity is None:
        raise EndpointError(400, "identity: missing")
    return identity


def matching_identity(allowed: str | None, offered: str | None) -> str:
    """The identity to mint for: the hook's answer, which the body may repeat but not change.

    Raises:
        EndpointError: 403 when the hook answered anything but a non-blank string of valid
            Unicode (``None``, ``""`` from a ``claims.get("sub", "")``, a lone surrogate), or
            the body names another identity.
    """
    if not isinstance(allowed, str) or not allowed.strip() or not is_encodable(allowed):
        raise EndpointError(403, "not allowed to enroll this identity")
    if offered is None:
        return allowed  # the login alone says who the caller is
    if not hmac.compare_digest(allowed.encode(), offered.encode()):
        raise EndpointError(403, "not allowed to enroll this identity")
    return offered
