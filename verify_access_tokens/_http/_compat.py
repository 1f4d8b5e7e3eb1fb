"""Every use of a third-party private attribute, fenced here.

Each helper checks that the attribute still exists and fails loudly if a dependency renamed it,
instead of silently doing nothing; ``tests/test_compat.py`` runs them against the installed
aiohttp, so an upgrade that breaks one fails the suite.
"""

from __future__ import annotations

from typing import Any

import aiohttp

__all__ = ["acquired_connections", "disable_connection_retry", "require"]


def require(obj: object, name: str) -> Any:
    """``getattr(obj, name)``, or a RuntimeError naming the attribute aiohttp no longer has."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise RuntimeError(
            f"aiohttp {aiohttp.__version__}: {type(obj).__name__}.{name} is gone; "
            "verify_access_tokens._http._compat needs updating"
        ) from None


def disable_connection_retry(session: aiohttp.ClientSession) -> None:
    """Stop aiohttp re-sending a request once on a dead pooled connection.

    aiohttp (``ClientSession._request``) silently retries an idempotent request (GET, HEAD,
    OPTIONS, TRACE, PUT, DELETE) once when a reused keep-alive connection turns out closed; the
    retry policy of this package must be the only one, so that attempts are counted and bounded.
    Applied only to the session the client creates, never to a caller's.
    """
    require(session, "_retry_connection")
    session._retry_connection = False


def acquired_connections(session: aiohttp.ClientSession) -> int:
    """Connections currently checked out of the session's pool (0 when idle): a leak probe."""
    connector = session.connector
    if connector is None:
        return 0
    return len(require(connector, "_acquired"))
