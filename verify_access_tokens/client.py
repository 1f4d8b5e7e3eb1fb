"""``VerifyClient``: owns the configuration and the transport, and exposes the resources."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp
import attrs

from ._core import _config, _connection
from ._core._constants import (
    DEFAULT_DEADLINE,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_LIMIT,
    DEFAULT_RETRY_AFTER_MAX,
)
from ._exceptions import ConfigurationError
from ._flow import Limiter, LimiterState, Slot, make_limiter, pool_size_of
from ._http._retry import RetryPolicy
from ._http._telemetry import telemetry_for
from ._http._transport import Transport
from ._http._types import NOT_GIVEN, NotGiven, RawResponse, RequestOptions
from .resources import AccessTokens
from .resources._resource import ResourceAttribute

__all__ = ["VerifyClient"]


class VerifyClient:
    """Async client for Twilio Verify V2 Access Tokens.

    Build it anywhere (no event loop needed); its aiohttp session is created inside the running
    loop on first use and pooled across calls. Use it as ``async with VerifyClient() as c`` or
    call ``await c.aclose()``. Credentials come from the arguments or the ``TWILIO_*``
    environment variables. A lent ``session`` is used as it is, never modified nor closed, and
    cannot be combined with the settings of the client's own session.
    """

    access_tokens = ResourceAttribute(AccessTokens)
    """Verify's enrollment Access Tokens: ``create``, ``fetch`` and ``create_many``."""

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        base_url: str | None = None,
        region: str | None = None,
        edge: str | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        deadline: float | None = DEFAULT_DEADLINE,
        retry_after_max: float = DEFAULT_RETRY_AFTER_MAX,
        retry_ambiguous_creates: bool = False,
        max_in_flight: int | Literal["adaptive"] | None = "adaptive",
        pool_limit: int | None = None,
        keepalive_timeout: float | None = None,
        extra_headers: Mapping[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        session: aiohttp.ClientSession | None = None,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        proxy: str | None = None,
        proxy_auth: tuple[str, str] | None = None,
        trust_env: bool = False,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        """Check every setting now, so that a misconfiguration fails here, not on a request.

        Every argument is optional: credentials and the origin fall back to the environment
        variables named below, the rest to the defaults stated.

        Args:
            account_sid: Account SID (``AC`` + 32 hex); default ``TWILIO_ACCOUNT_SID``.
            auth_token: Auth Token; default ``TWILIO_AUTH_TOKEN``. Not needed with an API key.
            api_key: API Key SID (``SK`` + 32 hex), used instead of the Auth Token when given;
                default ``TWILIO_API_KEY`` when no ``auth_token`` is passed.
            api_secret: The API key's secret; default ``TWILIO_API_SECRET``.
            base_url: Origin of the API, http(s) without query, fragment or credentials; plain
                ``http://`` only for loopback hosts. Default ``VERIFY_ACCESS_TOKENS_BASE_URL``,
                else the one ``region``/``edge`` select, else ``https://verify.twilio.com``.
            region: Twilio region (``TWILIO_REGION``): ``https://verify.{region}.twilio.com``.
            edge: Twilio edge (``TWILIO_EDGE``): ``https://verify.{edge}.{region}.twilio.com``
                (region ``us1`` if none is given).
            timeout: Limit of one attempt in seconds (default 35: connect 5 s + read 30 s), or an
                ``aiohttp.ClientTimeout`` used as it is.
            max_retries: Retries per call, ``0`` disables them (default 2).
            deadline: Total time budget of one call in seconds, retries and sleeps included
                (default 60); ``None`` for no budget.
            retry_after_max: Longest ``Retry-After`` honoured in seconds (default 60); a longer
                one is cut to this.
            retry_ambiguous_creates: Re-send, within ``max_retries``, a ``create`` whose
                outcome is unknown (default ``False``: Verify has no idempotency key, so a
                re-send may mint a second token). An unknown outcome left when retries are
                spent is an `OutcomeUnknownError` either way.
            max_in_flight: Requests this client and its ``with_options`` siblings have in
                flight at once, whatever calls them (single calls, batches, the FastAPI
                router): ``"adaptive"`` (default) finds the account's free concurrency from
                Twilio's 429s, an ``int`` is a fixed bound, ``None`` none of the client's own.
                Never more than the connection pool's size. Calls over it wait, first come
                first served, and the wait counts against ``deadline``.
            pool_limit: Connections of the client's own pool (default 100, Twilio's default
                concurrency limit of an account).
            keepalive_timeout: Seconds an idle pooled connection is kept (default 30).
            extra_headers: Headers added to every request (default none): ``str`` names and
                values, no control characters, none of the headers the client sets itself.
            max_response_bytes: Largest decoded response body read (default 1 MiB); a longer
                one is cut off and raises.
            session: An ``aiohttp.ClientSession`` to lend (default: the client's own, pooled);
                used as it is, never modified nor closed.
            trace_configs: aiohttp ``TraceConfig`` hooks for the client's own session.
            proxy: HTTP forward proxy, ``http://[user:password@]host:port`` (default none:
                direct connections); its credentials never appear in reprs, logs or errors.
            proxy_auth: ``(login, password)`` for ``proxy``, when its URL holds none.
            trust_env: Read ``HTTPS_PROXY``/``HTTP_PROXY`` and ``NO_PROXY`` once, now (default
                ``False``); an explicit ``proxy`` wins. ``~/.netrc`` is never read.
            tracer_provider: An OpenTelemetry ``TracerProvider`` for this client's spans
                (default ``None``: the global one, once the app sets it). Needs the ``otel``
                extra.
            meter_provider: An OpenTelemetry ``MeterProvider`` for this client's metrics
                (default ``None``: the global one). Needs the ``otel`` extra.

        Raises:
            ConfigurationError: A credential, the origin or a setting is missing or malformed
                (the error names the argument or variable, never its value), or ``session`` is
                combined with ``pool_limit``, ``keepalive_timeout``, ``trace_configs``,
                ``proxy``, ``proxy_auth`` or ``trust_env``, which it would silently drop.
        """
        env = os.environ
        credentials = _connection.resolve_credentials(
            account_sid=account_sid,
            auth_token=auth_token,
            api_key=api_key,
            api_secret=api_secret,
            env=env,
        )
        self._account_sid = credentials.account_sid
        self._username = credentials.username
        origin = _connection.resolve_base_url(base_url=base_url, region=region, edge=edge, env=env)
        if session is not None:
            _refuse_own_session_settings(
                pool_limit=pool_limit,
                keepalive_timeout=keepalive_timeout,
                trace_configs=trace_configs,
                proxy=proxy,
                proxy_auth=proxy_auth,
                trust_env=trust_env or None,
            )
        checked_pool_limit = _config.pool_limit(
            DEFAULT_POOL_LIMIT if pool_limit is None else pool_limit
        )
        self._max_in_flight = _config.max_in_flight(max_in_flight)
        limiter = make_limiter(
            self._max_in_flight, pool_size_of(session) if session else checked_pool_limit
        )
        self._transport = Transport(
            base_url=origin,
            authorization=credentials.authorization,
            proxy=_connection.resolve_proxy(
                proxy=proxy, proxy_auth=proxy_auth, trust_env=trust_env, base_url=origin, env=env
            ),
            session=session,
            pool_limit=checked_pool_limit,
            keepalive_timeout=_config.seconds(
                "keepalive_timeout",
                DEFAULT_KEEPALIVE_TIMEOUT if keepalive_timeout is None else keepalive_timeout,
            ),
            trace_configs=trace_configs,
            limiter=limiter,
            telemetry=telemetry_for(origin, limiter, tracer_provider, meter_provider),
        )
        self._owns_transport = True
        self._options = RequestOptions(
            timeout=_config.attempt_timeout(timeout),
            deadline=_config.optional_seconds("deadline", deadline),
            retry=RetryPolicy(
                max_retries=_config.retries(max_retries),
                retry_after_max=_config.seconds("retry_after_max", retry_after_max),
                retry_ambiguous_creates=bool(retry_ambiguous_creates),
            ),
            extra_headers=_config.extra_headers(extra_headers),
            max_response_bytes=_config.max_response_bytes(max_response_bytes),
        )
        self.access_tokens = AccessTokens(self)

    # -- derived clients -------------------------------------------------------------------
    def with_options(
        self,
        *,
        timeout: float | aiohttp.ClientTimeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        retry_after_max: float | NotGiven = NOT_GIVEN,
        retry_ambiguous_creates: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | NotGiven = NOT_GIVEN,
        max_response_bytes: int | NotGiven = NOT_GIVEN,
    ) -> VerifyClient:
        """A sibling client with other per-call settings, sharing this client's session.

        Closing the sibling does not close the session; closing this client does. An argument
        not given keeps this client's value; each is checked as in the constructor.

        Args:
            timeout: Limit of one attempt in seconds, or an ``aiohttp.ClientTimeout``.
            max_retries: Retries per call (``0`` disables them).
            deadline: Total time budget of one call in seconds, or ``None`` for no budget.
            retry_after_max: Longest ``Retry-After`` honoured, in seconds.
            retry_ambiguous_creates: Re-send a ``create`` whose outcome is unknown.
            extra_headers: Headers added to every request (they replace this client's).
            max_response_bytes: Largest decoded response body read.

        Returns:
            A new client sharing this client's session, pool and proxy.

        Raises:
            ConfigurationError: A setting is malformed; it names the setting.
        """
        options = self._options
        retry = options.retry
        if not isinstance(timeout, NotGiven):
            options = attrs.evolve(options, timeout=_config.attempt_timeout(timeout))
        if not isinstance(deadline, NotGiven):
            options = attrs.evolve(options, deadline=_config.optional_seconds("deadline", deadline))
        if not isinstance(max_retries, NotGiven):
            retry = attrs.evolve(retry, max_retries=_config.retries(max_retries))
        if not isinstance(retry_after_max, NotGiven):
            retry = attrs.evolve(
                retry, retry_after_max=_config.seconds("retry_after_max", retry_after_max)
            )
        if not isinstance(retry_ambiguous_creates, NotGiven):
            retry = attrs.evolve(retry, retry_ambiguous_creates=bool(retry_ambiguous_creates))
        if not isinstance(extra_headers, NotGiven):
            options = attrs.evolve(options, extra_headers=_config.extra_headers(extra_headers))
        if not isinstance(max_response_bytes, NotGiven):
            options = attrs.evolve(
                options, max_response_bytes=_config.max_response_bytes(max_response_bytes)
            )
        return self._sibling(attrs.evolve(options, retry=retry))

    def _sibling(self, options: RequestOptions) -> VerifyClient:
        """The one copy path: every attribute is carried over, then options and resources replaced.

        So a setting added to ``__init__`` cannot be forgotten here.
        """
        sibling = object.__new__(type(self))
        sibling.__dict__.update(self.__dict__)
        sibling._owns_transport = False
        sibling._options = options
        sibling.access_tokens = AccessTokens(sibling)
        return sibling

    def _request(
        self,
        method: str,
        path: str,
        *,
        template: str,
        idempotent: bool,
        form: Mapping[str, str] | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
        options: RequestOptions | None = None,
        slot: Slot | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> Awaitable[RawResponse]:
        """The resources' one way to send.

        This client's options (``timeout`` for this call, or a batch's ``options``), its
        limiter (``slot``: the first attempt's, already taken), and ``on_send``, called right
        before the first attempt leaves.
        """
        if options is None:
            options = self._options
        if timeout is not None:
            options = attrs.evolve(options, timeout=_config.attempt_timeout(timeout))
        return self._transport.request(
            method,
            path,
            template=template,
            options=options,
            idempotent=idempotent,
            form=form,
            slot=slot,
            on_send=on_send,
        )

    @property
    def _limiter(self) -> Limiter:
        """The flow control every call of this client and its siblings goes through."""
        return self._transport.limiter

    # -- introspection ---------------------------------------------------------------------
    @property
    def account_sid(self) -> str:
        """The Account SID requests are made for (``AC`` + 32 hex)."""
        return self._account_sid

    @property
    def base_url(self) -> str:
        """The origin requests go to, without a trailing slash."""
        return self._transport.base_url

    @property
    def proxy(self) -> str | None:
        """The forward proxy in use, without its credentials (None: direct connections)."""
        return self._transport.proxy_display

    @property
    def max_retries(self) -> int:
        """Retries per call (``0``: none)."""
        return self._options.retry.max_retries

    @property
    def retry_after_max(self) -> float:
        """Longest ``Retry-After`` wait honoured, in seconds (a longer one is cut to this)."""
        return self._options.retry.retry_after_max

    @property
    def deadline(self) -> float | None:
        """Total time budget of one call in seconds, retries included (None: no budget)."""
        return self._options.deadline

    @property
    def max_response_bytes(self) -> int:
        """Largest decoded response body read; a longer one is cut off (see the README)."""
        return self._options.max_response_bytes

    @property
    def timeout(self) -> aiohttp.ClientTimeout:
        """Limits of one attempt (``total`` is the whole attempt)."""
        return self._options.timeout

    @property
    def max_in_flight(self) -> int | Literal["adaptive"] | None:
        """The ``max_in_flight`` setting: an ``int``, ``"adaptive"`` or ``None``."""
        return self._max_in_flight

    @property
    def flow(self) -> LimiterState:
        """Flow control now: the in-flight limit, requests in flight and waiting, 429s seen.

        Shared by this client and its ``with_options`` siblings; cheap to read (metrics,
        health checks).
        """
        return self._transport.limiter.state()

    @property
    def closed(self) -> bool:
        """Whether the client was closed; a closed client raises `ClientStateError` on use."""
        return self._transport.closed

    def __repr__(self) -> str:
        """Account SID, API key SID, origin and proxy; never a secret nor proxy credentials."""
        via = "" if self._username == self._account_sid else f", api_key={self._username!r}"
        proxy = self.proxy
        via_proxy = "" if proxy is None else f", proxy={proxy!r}"
        return (
            f"VerifyClient(account_sid={self._account_sid!r}{via}, "
            f"base_url={self._transport.base_url!r}{via_proxy})"
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Refused: a pickle would carry the credentials in clear, and a pool cannot travel.

        Raises:
            TypeError: Always; build a client in each process instead.
        """
        raise TypeError(
            "a VerifyClient cannot be pickled or deep-copied: it holds credentials (which a "
            "pickle would carry in clear) and a connection pool; build one in each process"
        )

    # -- lifecycle ---------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Release the connection pool. Idempotent; a no-op on ``with_options`` siblings."""
        if self._owns_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        """Return the client itself; its session is created on first use."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client (`aclose`), whatever happened in the block."""
        await self.aclose()


def _refuse_own_session_settings(**settings: object) -> None:
    """Settings of the client's own session, given with a lent one, would be silently dropped."""
    clashes = [name for name, value in settings.items() if value is not None]
    if clashes:
        raise ConfigurationError(
            "session",
            f"{', '.join(clashes)} apply to the client's own session; "
            "configure the session you pass instead",
        )
