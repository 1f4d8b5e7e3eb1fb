"""Probes of aiohttp's state for tests, through the package's fence (``_http/_compat.require``)."""

from __future__ import annotations

import aiohttp

from verify_access_tokens import VerifyClient
from verify_access_tokens._http import _compat


def session_acquired(session: aiohttp.ClientSession) -> int:
    """Connections checked out of ``session``'s pool (0 when idle): a leak probe."""
    connector = session.connector
    if connector is None:
        return 0
    return len(_compat.require(connector, "_acquired"))


def acquired_connections(client: VerifyClient) -> int:
    """0 when every response was released (or no session was made yet)."""
    session = client._transport._session
    return 0 if session is None else session_acquired(session)


def aiohttp_resends(session: aiohttp.ClientSession) -> bool:
    """Whether aiohttp may re-send an idempotent request on ``session`` by itself."""
    if _compat.SESSION_PROXY:
        return bool(_compat.require(session, "_retry_connection"))
    return not issubclass(_compat.require(session, "_request_class"), _compat._NoResendRequest)
