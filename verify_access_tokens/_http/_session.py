"""The client's aiohttp session: its own (pooled, made on first use) or one the user lent.

The session is created lazily inside the running loop on first use, so a client can be built
at import time (a FastAPI module, pytest collection) and used later. Using it from a second
loop is refused with a clear error rather than aiohttp's obscure one.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import aiohttp
import yarl

from .._exceptions import ClientStateError
from ._compat import new_session


class SessionOwner:
    """Owns the aiohttp session (unless the user lent one), bound to the loop it was made in."""

    def __init__(
        self,
        *,
        proxy: yarl.URL | None = None,
        session: aiohttp.ClientSession | None = None,
        pool_limit: int,
        keepalive_timeout: float,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool_limit = pool_limit
        self._keepalive_timeout = keepalive_timeout
        self._trace_configs = trace_configs
        # A session-wide proxy (credentials inside the URL, turned by aiohttp into
        # Proxy-Authorization); aiohttp's trust_env stays off, so ~/.netrc is never consulted.
        self._proxy = proxy
        self.proxy_display = None if proxy is None else str(proxy.with_user(None))
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def session(self) -> aiohttp.ClientSession:
        """The session for the running loop, created on first use."""
        if self._closed:
            raise ClientStateError("this VerifyClient is closed; create a new one")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ClientStateError(
                "VerifyClient requests must be awaited inside a running event loop"
            ) from None
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise ClientStateError(
                "this VerifyClient is bound to the event loop it was first used in and cannot "
                "be used from another one; create one client per event loop (for example in "
                "your application's startup or FastAPI lifespan)"
            )
        if self._session is not None and self._session.closed:
            raise self._closed_error()  # a lent session its owner closed
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_limit, keepalive_timeout=self._keepalive_timeout
            )
            self._session = new_session(  # with the proxy, and no re-send by aiohttp
                connector=connector,
                trace_configs=self._trace_configs,
                proxy=self._proxy,
                # Timeouts are passed per request: see RequestOptions and request().
                timeout=aiohttp.ClientTimeout(),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the owned session; a lent one is left to its owner. Idempotent.

        Raises:
            ClientStateError: Awaited in another event loop than the one the client was used
                in; the client stays open (its session belongs to that loop).
        """
        if self._closed:
            return
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise ClientStateError(
                "aclose() must be awaited in the event loop this VerifyClient was used in; "
                "the client is still open"
            )
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Only a warning: scheduling a close from __del__ could run on a dead or foreign loop.
        if not self._closed and self._owns_session and self._session is not None:
            _warn(
                "VerifyClient was garbage-collected without being closed; "
                "use 'async with VerifyClient(...)' or 'await client.aclose()'",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )

    def _closed_error(self) -> ClientStateError:
        if self._owns_session:
            return ClientStateError("this VerifyClient was closed while the call was under way")
        return ClientStateError(
            "the aiohttp session lent to this VerifyClient was closed by its owner"
        )
