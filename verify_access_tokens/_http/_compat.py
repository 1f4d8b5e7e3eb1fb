"""Every use of a third-party private attribute, fenced here.

Each helper checks that the attribute still exists and fails loudly if a dependency renamed it,
instead of silently doing nothing; ``tests/test_compat.py`` runs them against the installed
aiohttp, so an upgrade that breaks one fails the suite.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import aiohttp
import yarl

__all__ = [
    "acquired_connections",
    "compatible_aioresponses",
    "disable_connection_retry",
    "mock_response_class",
    "require",
]


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


# --- aioresponses, for verify_access_tokens.testing ------------------------------------------
# aioresponses 0.7.x builds aiohttp's ClientResponse itself (``aioresponses.core.ClientResponse``,
# looked up at each mocked answer) without the ``stream_writer`` argument that aiohttp 3.14 made
# required, so every mocked call fails. No fixed release exists yet (and this machine has no
# network to send the fix upstream): the public mock swaps in a ClientResponse that supplies it.


class _SentNothing:
    """What ClientResponse reads from its ``stream_writer``: the count of bytes written.

    It reads only that, and only for a request already sent (``writer=None``, as aioresponses
    builds it).
    """

    output_size = 0


class _MockClientResponse(aiohttp.ClientResponse):
    """aiohttp's ClientResponse with a ``stream_writer`` when the caller gives none."""

    def __init__(self, method: str, url: yarl.URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _SentNothing())
        super().__init__(method, url, **kwargs)


def mock_response_class() -> type[aiohttp.ClientResponse]:
    """A ClientResponse class that aioresponses can build with the installed aiohttp."""
    parameters = inspect.signature(aiohttp.ClientResponse.__init__).parameters
    return _MockClientResponse if "stream_writer" in parameters else aiohttp.ClientResponse


@functools.cache
def compatible_aioresponses() -> type[Any]:
    """``aioresponses.aioresponses``, with `mock_response_class` in place while it is active."""
    import aioresponses
    import aioresponses.core as core

    require(core, "ClientResponse")

    class CompatibleAioresponses(aioresponses.aioresponses):
        _replaced: Any = None

        def start(self) -> None:
            self._replaced = require(core, "ClientResponse")
            setattr(core, "ClientResponse", mock_response_class())  # noqa: B010
            super().start()

        def stop(self) -> None:
            try:
                super().stop()
            finally:
                if self._replaced is not None:
                    setattr(core, "ClientResponse", self._replaced)  # noqa: B010
                    self._replaced = None

    CompatibleAioresponses.__name__ = CompatibleAioresponses.__qualname__ = "aioresponses"
    return CompatibleAioresponses
