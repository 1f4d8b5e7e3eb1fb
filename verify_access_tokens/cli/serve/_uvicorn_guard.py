"""``serve``'s one use of uvicorn's internals: bounds on slow clients, and several workers.

uvicorn bounds the idle time between two requests (``timeout_keep_alive``) but not the time a
client takes to send its request: a client trickling one byte every few seconds held a
connection (and a file descriptor) forever. `GuardedH11Protocol` is uvicorn's h11 protocol
with three additions, all in this module, each attribute of uvicorn's it relies on listed in
`UVICORN_ATTRIBUTES` and checked by ``tests/endpoint/test_serve_guard.py``:

- the request line and headers must arrive within ``header_timeout`` of the connection (or of
  the first byte of a next request on a kept-alive connection), the body within
  ``body_timeout`` of the headers; past either, the connection is closed;
- past ``max_connections`` open connections, a new one closes the oldest connection still
  sending its headers or body; when there is none (every connection has a request being
  answered), the new connection's request is answered 503 in the endpoint's error shape;
- during a graceful shutdown, every answer says ``Connection: close`` (uvicorn closes the
  connection without saying so), a connection accepted after it began is closed as uvicorn
  closes idle ones, and a request cut by ``timeout_graceful_shutdown`` is answered 503 in the
  error shape (uvicorn answers a text/plain 500 and logs a traceback);
- `run_workers` runs ``--workers N`` processes on one socket with uvicorn's supervisor.

This is the package's serve-side fence, as ``_http/_compat.py`` is for aiohttp.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import weakref
from collections import OrderedDict
from socket import socket
from typing import Any, Final

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

logger: Final = logging.getLogger("verify_access_tokens.serve")

# Every uvicorn attribute used here: (owner, name). tests/endpoint/test_serve_guard.py checks each.
UVICORN_ATTRIBUTES: Final = (
    (H11Protocol, "__init__"),
    (H11Protocol, "connection_made"),
    (H11Protocol, "data_received"),
    (H11Protocol, "connection_lost"),
    (H11Protocol, "shutdown"),  # called on each open connection when the server stops
    (H11Protocol, "connections"),  # instance: the server's set of open connections
    (H11Protocol, "conn"),  # instance: the h11.Connection (their_state)
    (H11Protocol, "transport"),  # instance
    (H11Protocol, "app"),  # instance: the ASGI app this connection's requests run
    (uvicorn.Config, "bind_socket"),
    (uvicorn.Config, "load"),
    (uvicorn.Config, "loaded_app"),  # instance: what each connection's requests run
    (Multiprocess, "run"),
)


def _error_answer(status: int, message: str) -> Any:
    """An ASGI app answering ``status`` in the endpoint's error shape, closing the connection."""
    body = json.dumps({"error": {"message": message, "moreInfo": None}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return answer


_CLOSE: Final = (b"connection", b"close")
_busy: Final = _error_answer(503, "server busy: too many open connections; retry")
_cut: Final = _error_answer(
    503, "server shutting down: the request was cut before it was answered; retry"
)


class _Draining:
    """The app, drained cleanly while the server stops.

    Every answer then says ``Connection: close``, and a request cut by the shutdown's time
    limit is answered 503 in the error shape. The cut's cancellation ends here: the task has
    nothing left to do, and re-raising would make uvicorn log a traceback and answer text/plain.
    """

    def __init__(self, app: Any, config: GuardedConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def closing(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if self.config.stopping:
                    message = message | {"headers": [*message["headers"], _CLOSE]}
            await send(message)

        try:
            await self.app(scope, receive, closing)
        except asyncio.CancelledError:
            if started:
                logger.warning("a request was cut by the shutdown after its answer began")
                return
            logger.warning("a request was cut by the shutdown; answered 503")
            await _cut(scope, receive, send)


class GuardedConfig(uvicorn.Config):
    """uvicorn's ``Config`` with the guard's limits (module-level, so workers can unpickle it).

    Args:
        app: What uvicorn runs (an app, or an import string for several workers).
        header_timeout: Seconds for the request line and headers.
        body_timeout: Seconds for the body, from the end of the headers.
        max_connections: Open connections at most.
        **options: ``uvicorn.Config``'s own.
    """

    def __init__(
        self,
        app: Any,
        *,
        header_timeout: float,
        body_timeout: float,
        max_connections: int,
        **options: Any,
    ) -> None:
        super().__init__(app, http=GuardedH11Protocol, **options)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections
        self.stopping = False  # set by the first connection uvicorn tells to shut down

    def load(self) -> None:
        """Uvicorn's, with the app wrapped to drain cleanly (`_Draining`)."""
        super().load()
        self.loaded_app = _Draining(self.loaded_app, self)


class Counters:
    """What the guard did in this process (read by tests and the benchmark's server log)."""

    def __init__(self) -> None:
        self.header_timeouts = 0
        self.body_timeouts = 0
        self.evicted = 0
        self.refused = 0
        self.max_lateness = 0.0  # seconds a time-limit close came after its limit
        self.late = 0  # time-limit closes more than a second after their limit

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"slow-client guard: {self.header_timeouts} closed past the header limit, "
            f"{self.body_timeouts} past the body limit (latest {self.max_lateness:.2f} s after "
            f"it, {self.late} more than 1 s after), {self.evicted} closed to make room, "
            f"{self.refused} answered 503"
        )


class _Registry:
    """One server's connections still sending a request, oldest first."""

    def __init__(self) -> None:
        # An OrderedDict, not a dict: taking the oldest after many removals stays O(1).
        self.waiting: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        self.counters = Counters()


_REGISTRIES: weakref.WeakKeyDictionary[Any, _Registry] = weakref.WeakKeyDictionary()


def counters_of(server_state: Any) -> Counters:
    """The guard's counters for one uvicorn server."""
    return _registry(server_state).counters


def _registry(server_state: Any) -> _Registry:
    registry = _REGISTRIES.get(server_state)
    if registry is None:
        registry = _REGISTRIES[server_state] = _Registry()
    return registry


def log_summaries() -> None:
    """Log what the guard did, at INFO, for each server of this process (at shutdown)."""
    for registry in list(_REGISTRIES.values()):
        logger.info("%s", registry.counters.summary())


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with time limits on the request and a cap on connections."""

    def __init__(self, config: Any, server_state: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, server_state, *args, **kwargs)
        self._limits = config
        self._registry = _registry(server_state)
        self._phase: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; past the cap, close the oldest slow one or refuse this one."""
        super().connection_made(transport)
        registry = self._registry
        if self._limits.stopping:  # accepted just before the listening socket closed
            super().shutdown()
            return
        if len(self.connections) > self._limits.max_connections:
            victim = next(iter(registry.waiting), None)
            if victim is not None:
                registry.counters.evicted += 1
                victim._close()
            else:
                registry.counters.refused += 1
                self.app = _busy
        self._enter("headers", self._limits.header_timeout)

    def shutdown(self) -> None:
        """Uvicorn's graceful close, remembered for answers and connections after it."""
        self._limits.stopping = True
        super().shutdown()

    def data_received(self, data: bytes) -> None:
        """Hand the bytes to uvicorn, then follow the request's phase."""
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase is None:  # the first bytes of a next request
                self._enter("headers", self._limits.header_timeout)
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._enter("body", self._limits.body_timeout)
        else:
            self._leave()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection, then let uvicorn end its request."""
        self._leave()
        super().connection_lost(exc)

    def _enter(self, phase: str, seconds: float) -> None:
        self._leave()
        self._phase = phase
        self._registry.waiting[self] = None
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + seconds
        self._timer = loop.call_at(self._deadline, self._expire)

    def _leave(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = None
        self._registry.waiting.pop(self, None)

    def _expire(self) -> None:
        counters = self._registry.counters
        lateness = asyncio.get_running_loop().time() - self._deadline
        counters.max_lateness = max(counters.max_lateness, lateness)
        counters.late += lateness > 1
        if self._phase == "headers":
            counters.header_timeouts += 1
        else:
            counters.body_timeouts += 1
        logger.debug("closed a connection past its %s time limit", self._phase)
        self._close()

    def _close(self) -> None:
        self._leave()
        self.transport.close()


def run_workers(config: uvicorn.Config) -> None:
    """Run ``config.workers`` processes on one listening socket until a signal stops them.

    Args:
        config: With an import string as its app (each worker builds its own).
    """
    sock: socket = config.bind_socket()
    try:
        if "target" in inspect.signature(Multiprocess).parameters:
            # uvicorn up to 0.34 takes the worker's entry point, as its own run() passes it.
            server = uvicorn.Server(config)
            Multiprocess(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]
        else:
            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
