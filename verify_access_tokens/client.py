"""``VerifyClient``: owns the configuration and the transport, and exposes the resources."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Final, Self

import aiohttp
import attrs

from ._core import _config
from ._core._errors import ConfigurationError
from ._http._retry import RetryPolicy
from ._http._transport import AttemptObserver, RequestOptions, Transport
from .resources import AccessTokens

__all__ = ["VerifyClient"]


class _NotGiven:
    def __repr__(self) -> str:
        return "NOT_GIVEN"


_NOT_GIVEN: Final = _NotGiven()


class VerifyClient:
    """Async client for Twilio Verify V2 Access Tokens.

    Build it anywhere (no event loop needed); its aiohttp session is created inside the running
    loop on first use and pooled across calls. Use it as ``async with VerifyClient() as c`` or
    call ``await c.aclose()``. Credentials come from the arguments or the ``TWILIO_*``
    environment variables.
    """

    access_tokens: AccessTokens

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
        max_retries: int = _config.DEFAULT_MAX_RETRIES,
        deadline: float | None = _config.DEFAULT_DEADLINE,
        retry_after_max: float = _config.DEFAULT_RETRY_AFTER_MAX,
        retry_ambiguous_creates: bool = False,
        pool_limit: int = _config.DEFAULT_POOL_LIMIT,
        keepalive_timeout: float = _config.DEFAULT_KEEPALIVE_TIMEOUT,
        extra_headers: Mapping[str, str] | None = None,
        max_response_bytes: int = _config.DEFAULT_MAX_RESPONSE_BYTES,
        session: aiohttp.ClientSession | None = None,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        proxy: str | None = None,
        proxy_auth: tuple[str, str] | None = None,
        trust_env: bool = False,
    ) -> None:
        env = _config.environment()
        credentials = _config.resolve_credentials(
            account_sid=account_sid,
            auth_token=auth_token,
            api_key=api_key,
            api_secret=api_secret,
            env=env,
        )
        self._account_sid = credentials.account_sid
        self._username = credentials.username
        origin = _config.resolve_base_url(base_url=base_url, region=region, edge=edge, env=env)
        if session is not None and (proxy is not None or proxy_auth is not None or trust_env):
            raise ConfigurationError(
                "session",
                "proxy, proxy_auth and trust_env apply to the client's own session; "
                "configure the session you pass instead",
            )
        self._transport = Transport(
            base_url=origin,
            authorization=credentials.authorization,
            proxy=_config.resolve_proxy(
                proxy=proxy, proxy_auth=proxy_auth, trust_env=trust_env, base_url=origin, env=env
            ),
            session=session,
            pool_limit=_config.pool_limit(pool_limit),
            keepalive_timeout=_config.seconds("keepalive_timeout", keepalive_timeout),
            trace_configs=trace_configs,
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
        timeout: float | aiohttp.ClientTimeout | _NotGiven = _NOT_GIVEN,
        max_retries: int | _NotGiven = _NOT_GIVEN,
        deadline: float | _NotGiven | None = _NOT_GIVEN,
        retry_ambiguous_creates: bool | _NotGiven = _NOT_GIVEN,
        extra_headers: Mapping[str, str] | _NotGiven = _NOT_GIVEN,
        max_response_bytes: int | _NotGiven = _NOT_GIVEN,
    ) -> VerifyClient:
        """A sibling client with other per-call settings, sharing this client's session.

        Closing the sibling does not close the session; closing this client does.
        """
        options = self._options
        retry = options.retry
        if not isinstance(timeout, _NotGiven):
            options = attrs.evolve(options, timeout=_config.attempt_timeout(timeout))
        if not isinstance(deadline, _NotGiven):
            options = attrs.evolve(options, deadline=_config.optional_seconds("deadline", deadline))
        if not isinstance(max_retries, _NotGiven):
            retry = attrs.evolve(retry, max_retries=_config.retries(max_retries))
        if not isinstance(retry_ambiguous_creates, _NotGiven):
            retry = attrs.evolve(retry, retry_ambiguous_creates=bool(retry_ambiguous_creates))
        if not isinstance(extra_headers, _NotGiven):
            options = attrs.evolve(options, extra_headers=_config.extra_headers(extra_headers))
        if not isinstance(max_response_bytes, _NotGiven):
            options = attrs.evolve(
                options, max_response_bytes=_config.max_response_bytes(max_response_bytes)
            )
        return self._sibling(attrs.evolve(options, retry=retry))

    def _with_observer(self, observer: AttemptObserver | None) -> VerifyClient:
        """A sibling whose every attempt is paced and reported to ``observer`` (batches)."""
        return self._sibling(attrs.evolve(self._options, observer=observer))

    def _sibling(self, options: RequestOptions) -> VerifyClient:
        sibling = object.__new__(VerifyClient)
        sibling._account_sid = self._account_sid
        sibling._username = self._username
        sibling._transport = self._transport
        sibling._owns_transport = False
        sibling._options = options
        sibling.access_tokens = AccessTokens(sibling)
        return sibling

    def _options_for_call(self, timeout: float | aiohttp.ClientTimeout | None) -> RequestOptions:
        if timeout is None:
            return self._options
        return attrs.evolve(self._options, timeout=_config.attempt_timeout(timeout))

    # -- introspection ---------------------------------------------------------------------
    @property
    def account_sid(self) -> str:
        return self._account_sid

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def proxy(self) -> str | None:
        """The forward proxy in use, without its credentials (None: direct connections)."""
        return self._transport.proxy_display

    @property
    def max_retries(self) -> int:
        return self._options.retry.max_retries

    @property
    def deadline(self) -> float | None:
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
    def closed(self) -> bool:
        return self._transport.closed

    def __repr__(self) -> str:
        via = "" if self._username == self._account_sid else f", api_key={self._username!r}"
        proxy = self.proxy
        via_proxy = "" if proxy is None else f", proxy={proxy!r}"
        return (
            f"VerifyClient(account_sid={self._account_sid!r}{via}, "
            f"base_url={self._transport.base_url!r}{via_proxy})"
        )

    # -- lifecycle ---------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Release the connection pool. Idempotent; a no-op on ``with_options`` siblings."""
        if self._owns_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
