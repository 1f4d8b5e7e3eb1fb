"""Leak probe for tests: connections a client holds checked out of its pool."""

from __future__ import annotations

from verify_access_tokens import VerifyClient
from verify_access_tokens._http._compat import acquired_connections as _acquired


def acquired_connections(client: VerifyClient) -> int:
    """0 when every response was released (or no session was made yet)."""
    session = client._transport._session
    return 0 if session is None else _acquired(session)
