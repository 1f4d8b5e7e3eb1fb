"""The emulator's fake API: its aiohttp.web application, state and lifecycle.

Faults are injected by ``_faults.FaultInjector``, which the middleware consults.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as _dt
import hmac
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .. import AccessToken, RequestValidationError, VerifyClient
from .._core import _validation as v
from . import _jwt
from ._counters import Counters
from ._faults import FaultInjector, Faults
from ._wire import dumps, hex_sid, twilio_error

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class VerifyEmulator:
    """An in-process Verify server on 127.0.0.1 (a random free port unless ``port`` is given).

    It accepts the Account SID + Auth Token it holds, and one API key (``api_key``,
    ``api_secret``) it makes up. Use it as ``async with VerifyEmulator() as emu`` or call
    ``start()`` and ``stop()``.

    Args:
        host: Address to listen on (default ``"127.0.0.1"``).
        port: Port to listen on (default 0: a free one, read back from ``port`` once started).
        account_sid: The account it accepts (default: a random ``AC`` sid).
        auth_token: Its Auth Token (default: a random one).
        service_sids: The Verify Services that exist (default: one random ``VA`` sid).
        faults: What goes wrong on purpose (default ``Faults()``: nothing).
        seed: Seed of its identity (the account SID, Auth Token, API key and service SID it
            makes up: the same on every start, so a running app keeps working across a
            restart), of the fault decisions and of the sids it makes up afterwards (tokens,
            ``add_service``); default ``None``: not reproducible.

    Attributes:
        host (str): The address it listens on.
        port (int): The port it listens on; the one chosen, once started with ``port=0``.
        account_sid (str): The Account SID it accepts (``AC`` + 32 hex).
        auth_token (str): The Auth Token it accepts with ``account_sid``.
        api_key (str): The API key SID it accepts (``SK`` + 32 hex), made up per emulator.
        api_secret (str): That API key's secret.
        services: The sids of the Verify Services that exist; ``add_service`` adds one.
        counters (Counters): What it saw and did so far: assert on it in tests.
        tokens: Every token it created, by sid (``YK…``), as `AccessToken` models.
        app (aiohttp.web.Application): Its aiohttp application, to serve it with a runner of
            your own instead of ``start()``.

    Raises:
        RequestValidationError: A sid of ``service_sids`` is malformed.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_sid: str | None = None,
        auth_token: str | None = None,
        service_sids: Iterable[str] | None = None,
        faults: Faults | None = None,
        seed: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        # Its own stream of the seed: the identity does not move with the faults' decisions.
        made_up = random.Random(f"identity {seed}") if seed is not None else random.SystemRandom()
        self.account_sid = account_sid or hex_sid("AC", made_up)
        self.auth_token = auth_token or f"{made_up.getrandbits(128):032x}"
        self.api_key = hex_sid("SK", made_up)
        self.api_secret = f"{made_up.getrandbits(192):048x}"
        self.services: set[str] = set(service_sids or [hex_sid("VA", made_up)])
        for sid in self.services:
            v.check_service_sid(sid)
        self.counters = Counters()
        self.tokens: dict[str, AccessToken] = {}
        self._rng = random.Random(seed)
        self._sid_rng = random.Random(seed)
        self._faults = FaultInjector(faults or Faults(), self.counters, self._rng)
        self._signing_key = secrets.token_bytes(32)
        self._runner: web.AppRunner | None = None
        self.app = self._make_app()

    # -- public helpers -------------------------------------------------------------------
    @property
    def service_sid(self) -> str:
        """One service that exists (the first, in sorted order)."""
        return min(self.services)

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running emulator.

        Raises:
            RuntimeError: The emulator is not running.
        """
        if self._runner is None:
            raise RuntimeError("the emulator is not running; use 'async with' or start()")
        return f"http://{self.host}:{self.port}"

    def add_service(self, sid: str | None = None) -> str:
        """Make one more Verify Service exist.

        Args:
            sid: Its sid (``VA`` + 32 hex); default ``None``: a new one, from ``seed``.

        Returns:
            The service's sid.

        Raises:
            RequestValidationError: ``sid`` is malformed.
        """
        sid = v.check_service_sid(sid or hex_sid("VA", self._sid_rng))
        self.services.add(sid)
        return sid

    @property
    def faults(self) -> Faults:
        """The faults in effect (change them with ``set_faults``)."""
        return self._faults.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the faults in effect, while running too; the next request sees them.

        Args:
            faults: The new faults (``Faults()`` for none).
        """
        self._faults.replace(faults)

    def decode_token(self, token: str) -> dict[str, Any]:
        """The claims of a token this emulator minted.

        Args:
            token: The JWT, an `AccessToken`'s ``token``.

        Returns:
            The JWT's claims.

        Raises:
            ValueError: ``token`` was not minted (signed) by this emulator.
        """
        return _jwt.decode(token, self._signing_key)

    def client(self, **kwargs: Any) -> VerifyClient:
        """A `VerifyClient` pointed at this emulator, with its credentials.

        Args:
            **kwargs: Passed on to `VerifyClient`; ``account_sid`` and ``auth_token`` default to
                the emulator's (no auth token when ``api_key`` is given).

        Returns:
            A new client; close it (``async with`` or ``aclose()``).

        Raises:
            RuntimeError: The emulator is not running.
        """
        kwargs.setdefault("account_sid", self.account_sid)
        if "api_key" not in kwargs:
            kwargs.setdefault("auth_token", self.auth_token)
        return VerifyClient(base_url=self.base_url, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start listening; ``port`` is then the bound one.

        Raises:
            OSError: The address is busy or not on this machine.
        """
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        # The bound address, public since aiohttp 3.8: the port is the real one when 0 was asked.
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop the server; a no-op when it is not running."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the application ------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults_and_auth])
        app.on_response_prepare.append(_add_request_id)
        app.router.add_post("/v2/Services/{service_sid}/AccessTokens", self._create)
        app.router.add_get("/v2/Services/{service_sid}/AccessTokens/{sid}", self._fetch)
        return app

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        for user, secret in ((self.account_sid, self.auth_token), (self.api_key, self.api_secret)):
            if hmac.compare_digest(username, user) and hmac.compare_digest(password, secret):
                return True
        return False

    @web.middleware
    async def _faults_and_auth(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            return await self._answer(request, handler)
        except ConnectionResetError:
            # The client went away mid-request (a cancelled batch, a killed CLI): nobody is
            # left to answer, and it is no error of the emulator's, so no traceback is logged.
            raise asyncio.CancelledError from None

    async def _answer(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        counters, faults = self.counters, self._faults
        counters.requests += 1
        faults.in_flight += 1
        counters.peak_in_flight = max(counters.peak_in_flight, faults.in_flight)
        loop = asyncio.get_running_loop()
        arrived_at, in_flight = loop.time(), faults.in_flight
        try:
            response = await self._process(request, handler)
        finally:
            faults.in_flight -= 1
        # What Twilio's answers carry so that clients can see the account's load: its requests
        # in flight when this one arrived (itself included), and the seconds spent answering.
        response.headers["Twilio-Concurrent-Requests"] = str(in_flight)
        response.headers["Twilio-Request-Duration"] = f"{loop.time() - arrived_at:.3f}"
        return response

    async def _process(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        over = self._faults.over_concurrency()
        if over is not None:
            return over
        injected = await self._faults.before_auth(request)
        if injected is not None:
            return injected
        if not self._authorized(request):
            self.counters.unauthorized += 1
            return twilio_error(
                401,
                20003,
                "Authenticate",
                {"WWW-Authenticate": 'Basic realm="Twilio API"'},
            )
        limited = self._faults.rate_limited()
        if limited is not None:  # not `or`: before aiohttp 3.12 an empty web.Response is falsy
            return limited
        return await handler(request)

    def _not_found(self, what: str) -> web.Response:
        self.counters.not_found += 1
        return twilio_error(404, 20404, f"The requested resource {what} was not found")

    def _bad_request(self, error: RequestValidationError) -> web.Response:
        self.counters.bad_requests += 1
        return twilio_error(400, 60200, f"Invalid parameter `{error.field}`: {error.rule}")

    def _known_service(self, request: web.Request) -> str | None:
        sid = request.match_info["service_sid"]
        return sid if sid in self.services else None

    async def _create(self, request: web.Request) -> web.Response:
        service_sid = self._known_service(request)
        if service_sid is None:
            return self._not_found(request.path)
        form = await request.post()
        try:
            identity = v.check_identity(form.get("Identity"), "Identity")
            factor_type = v.check_factor_type(form.get("FactorType"), "FactorType")
            friendly_name = v.check_friendly_name(
                form.get("FactorFriendlyName"), "FactorFriendlyName"
            )
            raw_ttl = form.get("Ttl")
            if raw_ttl is not None and not (isinstance(raw_ttl, str) and raw_ttl.isdecimal()):
                raise RequestValidationError("Ttl", "must be an integer")
            ttl = v.check_ttl(int(raw_ttl) if raw_ttl is not None else None, "Ttl") or v.TTL_MIN
        except RequestValidationError as error:
            return self._bad_request(error)
        sid = hex_sid("YK", self._sid_rng)
        now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
        claims = {
            "jti": sid,
            "iss": self.account_sid,
            "sub": service_sid,
            "identity": identity,
            "factor_type": factor_type.value,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + ttl,
        }
        token = AccessToken(
            sid=sid,
            account_sid=self.account_sid,
            service_sid=service_sid,
            entity_identity=identity,
            factor_type=factor_type,
            factor_friendly_name=friendly_name,
            token=_jwt.encode(claims, self._signing_key),
            url=f"{request.url.origin()}/v2/Services/{service_sid}/AccessTokens/{sid}",
            ttl=ttl,
            date_created=now,
        )
        self.tokens[sid] = token
        self.counters.tokens_created += 1
        self._faults.maybe_lose_answer(request)
        return web.json_response(token.to_dict(), status=201, dumps=dumps)

    async def _fetch(self, request: web.Request) -> web.Response:
        service_sid = self._known_service(request)
        token = self.tokens.get(request.match_info["sid"])
        if service_sid is None or token is None or token.service_sid != service_sid:
            return self._not_found(request.path)
        self.counters.fetches += 1
        return web.json_response(token.to_dict(), dumps=dumps)


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries a fresh ``Twilio-Request-Id`` (``RQ`` + 32 hex), as Twilio's do."""
    response.headers["Twilio-Request-Id"] = hex_sid("RQ")
