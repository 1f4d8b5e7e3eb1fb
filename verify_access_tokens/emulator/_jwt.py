"""Compact HS256 JSON Web Tokens, enough for the emulator to mint verifiable enrollment tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

_HEADER = {"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def encode(claims: dict[str, Any], key: bytes) -> str:
    signing_input = _b64(_json(_HEADER)) + "." + _b64(_json(claims))
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def decode(token: str, key: bytes) -> dict[str, Any]:
    """The claims of a token this key signed; ``ValueError`` if malformed or forged."""
    try:
        header, payload, signature = token.split(".")
        expected = hmac.new(key, f"{header}.{payload}".encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise ValueError("bad signature")
        claims = json.loads(_unb64(payload))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"not a token signed by this emulator: {exc}") from None
    if not isinstance(claims, dict):
        raise ValueError("not a token signed by this emulator: claims are not an object")
    return claims
