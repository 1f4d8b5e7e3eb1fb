"""Every use of a third-party private attribute, and every aiohttp version difference, fenced here.

Each helper checks that the attribute still exists and fails loudly if a dependency renamed it,
instead of silently doing nothing; ``tests/client/test_compat.py`` runs each of them against the
installed aiohttp (CI runs the suite on the lowest supported aiohttp and on the newest), so an
upgrade or a downgrade that breaks one fails the suite.

Differences between the supported aiohttp lines (3.10 and newer):

- ``ClientSession(proxy=...)`` and ``ClientSession._retry_connection`` arrived in 3.11. On 3.10
  the client's own session gets a request class that sends every request through the proxy and
  refuses aiohttp's silent re-send (see `new_session`).
- Decoding bodies, ``Proxy-Authorization`` on reused plain-http proxy connections and the
  truthiness of ``web.Response`` differ too; they are handled without version checks where they
  are used (``_body.py``, ``_transport.py``, the emulator), the same on every line.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Final

import aiohttp
import yarl

__all__ = [
    "SESSION_PROXY",
    "compatible_aioresponses",
    "is_meter_provider_set",
    "mock_response_class",
    "new_session",
    "require",
]

#: Whether ``ClientSession`` takes ``proxy=`` (aiohttp >= 3.11), with ``_retry_connection``.
SESSION_PROXY: Final = "proxy" in inspect.signature(aiohttp.ClientSession).parameters


def require(obj: object, name: str) -> Any:
    """``getattr(obj, name)``, or a RuntimeError naming the attribute aiohttp no longer has."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise RuntimeError(
            f"aiohttp {aiohttp.__version__}: {type(obj).__name__}.{name} is gone; "
            "verify_access_tokens._http._compat needs updating"
        ) from None


def new_session(
    *,
    connector: aiohttp.BaseConnector,
    trace_configs: list[aiohttp.TraceConfig] | None,
    proxy: yarl.URL | None,
    timeout: aiohttp.ClientTimeout,
) -> aiohttp.ClientSession:
    """The client's own session: every request through ``proxy``, and no aiohttp re-send.

    aiohttp (``ClientSession._request``) silently re-sends an idempotent request (GET, HEAD,
    OPTIONS, TRACE, PUT, DELETE) once when a pooled keep-alive connection turns out closed; the
    retry policy of this package must be the only one, so that attempts are counted and bounded.
    Only the session the client creates is set up so, never a caller's.
    """
    if SESSION_PROXY:
        session = aiohttp.ClientSession(
            connector=connector, trace_configs=trace_configs, proxy=proxy, timeout=timeout
        )
        require(session, "_retry_connection")
        session._retry_connection = False
        return session
    # aiohttp 3.10: the proxy and the refused re-send go through the request and response
    # classes, one pair per session (the proxy is the session's).
    request_class = type("_Request310", (_NoResendRequest,), {"default_proxy": proxy})
    return aiohttp.ClientSession(
        connector=connector,
        trace_configs=trace_configs,
        timeout=timeout,
        request_class=request_class,
        response_class=_NoResendResponse,
    )


# --- aiohttp 3.10 ---------------------------------------------------------------------------
# ``_request`` keeps one timer object for a call, across its re-send; the response records the
# failure aiohttp re-sends after (on a request of an idempotent method, which aiohttp always
# re-sends once), under that timer, and the request built for the re-send finds it and raises it
# again instead of being sent: the call ends with its first failure, as on 3.11. The record is
# keyed by ``id()``, holding the timer so that the id cannot be reused meanwhile (aiohttp's timer
# may refuse weak references), and taken out by that re-send; it keeps class and arguments only.

_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_FAILED: dict[int, tuple[object, type[BaseException], tuple[Any, ...]]] = {}


class _NoResendResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, *args: Any, timer: Any = None, **kwargs: Any) -> None:
        super().__init__(method, *args, timer=timer, **kwargs)
        self._vat_timer = timer if method in _IDEMPOTENT else None

    async def start(self, connection: Any) -> aiohttp.ClientResponse:
        try:
            return await super().start(connection)
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            timer = self._vat_timer
            if timer is not None:
                _FAILED[id(timer)] = (timer, type(exc), exc.args)
            raise


class _NoResendRequest(aiohttp.ClientRequest):
    default_proxy: yarl.URL | None = None

    def __init__(self, *args: Any, proxy: Any = None, timer: Any = None, **kwargs: Any) -> None:
        failed = None if timer is None else _FAILED.pop(id(timer), None)
        if failed is not None and failed[0] is timer:
            _, cls, exc_args = failed  # aiohttp is about to re-send: end the call with that failure
            raise cls(*exc_args)
        if proxy is None:
            proxy = self.default_proxy
        super().__init__(*args, proxy=proxy, timer=timer, **kwargs)


# --- OpenTelemetry's API -------------------------------------------------------------------
# Until the app sets a meter provider, the API's global one is a private proxy class: the only
# way to tell "no meter provider yet" without recording into it.


def is_meter_provider_set(provider: object) -> bool:
    """Whether ``provider`` (``metrics.get_meter_provider()``) is one the app set."""
    return not isinstance(provider, _proxy_meter_provider())


@functools.cache
def _proxy_meter_provider() -> type[Any]:
    from opentelemetry.metrics import _internal

    return require(_internal, "_ProxyMeterProvider")  # type: ignore[no-any-return]


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


def _whole_body_reader(loop: Any = None) -> aiohttp.StreamReader:
    """A stream holding a whole mocked body at once.

    aioresponses' own has a 128 KiB high-water mark: a longer mocked body makes it pause a
    protocol it built without a parser, which fails with aiohttp's bare ``AssertionError``.
    """
    from aiohttp.client_proto import ResponseHandler

    return aiohttp.StreamReader(ResponseHandler(loop=loop), limit=2**40, loop=loop)


@functools.cache
def compatible_aioresponses() -> type[Any]:
    """``aioresponses.aioresponses``, with `mock_response_class` in place while it is active."""
    import aioresponses
    import aioresponses.core as core

    require(core, "ClientResponse")

    class CompatibleAioresponses(aioresponses.aioresponses):
        _replaced: Any = None

        def start(self) -> None:
            self._replaced = (
                require(core, "ClientResponse"),
                require(core, "stream_reader_factory"),
            )
            setattr(core, "ClientResponse", mock_response_class())  # noqa: B010
            setattr(core, "stream_reader_factory", _whole_body_reader)  # noqa: B010
            super().start()

        def stop(self) -> None:
            try:
                super().stop()
            finally:
                if self._replaced is not None:
                    response_class, reader_factory = self._replaced
                    setattr(core, "ClientResponse", response_class)  # noqa: B010
                    setattr(core, "stream_reader_factory", reader_factory)  # noqa: B010
                    self._replaced = None

    CompatibleAioresponses.__name__ = CompatibleAioresponses.__qualname__ = "aioresponses"
    return CompatibleAioresponses
