"""The tests' credentials, sids and answer bodies: valid-looking values, never real ones."""

from __future__ import annotations

from typing import Any

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "s3cr3t-auth-token-value-0123456789"
API_KEY = "SK" + "b" * 32
API_SECRET = "s3cr3t-api-secret-value-9876543210"
SERVICE_SID = "VA" + "c" * 32
TOKEN_SID = "YK" + "d" * 32
NOWHERE = "YK" + "0" * 32  # a token sid nothing was created under
IDENTITY = "ff483d1ff591898a9942916050d2ca3f"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzZWNyZXQiOnRydWV9.c2lnbmF0dXJlLXNlY3JldC1qd3Q"
BASE_URL = "https://verify.twilio.com"
CREATE_URL = f"{BASE_URL}/v2/Services/{SERVICE_SID}/AccessTokens"
FETCH_URL = f"{CREATE_URL}/{TOKEN_SID}"


def token_body(**overrides: Any) -> dict[str, Any]:
    """Twilio's JSON for the token above, with ``overrides``."""
    body: dict[str, Any] = {
        "sid": TOKEN_SID,
        "account_sid": ACCOUNT_SID,
        "service_sid": SERVICE_SID,
        "entity_identity": IDENTITY,
        "factor_type": "push",
        "factor_friendly_name": "Ana's phone",
        "token": JWT,
        "url": FETCH_URL,
        "ttl": 300,
        "date_created": "2015-07-30T20:00:00Z",
    }
    body.update(overrides)
    return body


def ids(n: int) -> list[str]:
    """``n`` valid identities, in sorted order: ``user-000000``, ``user-000001`` ..."""
    return [f"user-{i:06d}" for i in range(n)]
