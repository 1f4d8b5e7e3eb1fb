"""An ``--authorize`` hook for ``verify-access-tokens serve``: the identity from your app's login.

Run from this folder (the hook is imported as uvicorn imports ``module:app``)::

    export APP_SESSION_SECRET=change-me-to-32-random-bytes
    verify-access-tokens serve --emulator --authorize serve_authorize:authorize

The mobile app sends the session token its login gave it, ``Authorization: Bearer <session>``,
and a POST with no body: the token is minted for the session's user. Here a session is
``<user id>.<expiry, unix seconds>.<HMAC-SHA256 hex>`` signed with ``APP_SESSION_SECRET``, as
`issue_session` makes it; put your own check in `authorize` (a session-store lookup, a JWT
verification), keeping its shape: return the user id, or raise 401.
"""

import hashlib
import hmac
import os
import time
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from verify_access_tokens.fastapi import EndpointError

_SECRET = os.environ["APP_SESSION_SECRET"].encode()
# auto_error=False: a missing header is this hook's 401, with its own message. HTTPBearer also
# declares the scheme in the OpenAPI document (`serve --docs`).
_bearer = HTTPBearer(auto_error=False)


def _signature(user_id: str, expires: str) -> str:
    return hmac.new(_SECRET, f"{user_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def issue_session(user_id: str, lifetime: int = 3600) -> str:
    """What your app's login hands the phone (here, for the example and its test)."""
    expires = str(int(time.time()) + lifetime)
    return f"{user_id}.{expires}.{_signature(user_id, expires)}"


async def authorize(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The logged-in user's id: the identity the enrollment token is minted for."""
    refused = EndpointError(401, "log in first", headers={"WWW-Authenticate": "Bearer"})
    if credentials is None:
        raise refused
    try:  # HTTP headers arrive as latin-1 text: back to the UTF-8 the session was signed in
        session = credentials.credentials.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise refused from None
    user_id, _, rest = session.rpartition(".")
    user_id, _, expires = user_id.rpartition(".")
    signed = hmac.compare_digest(rest.encode(), _signature(user_id, expires).encode())
    if not (user_id and signed and expires.isdigit() and int(expires) > time.time()):
        raise refused
    return user_id
