"""A ready backend endpoint for Twilio's Verify Push mobile SDKs, as a FastAPI router.

A mobile app using the Verify Push SDK cannot hold Twilio credentials, so it asks its own
backend for an enrollment access token. `access_token_router` is that backend endpoint,
with the contract of Twilio's sample apps and ``verify-push-backend`` template: ``POST`` with a
form-encoded (or JSON) ``identity``; 200 ``{"token", "serviceSid", "identity", "factorType"}``;
errors as ``{"error": {"message", "moreInfo"}}``.

Needs the ``fastapi`` extra (``pip install "verify-access-tokens[fastapi]"``). Importing
``verify_access_tokens`` never imports this module. Request bodies are parsed with the standard
library (``urllib.parse``, ``json``), so ``python-multipart`` is not needed.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at runtime,
# and they name dependencies local to the router factory.
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Route

from verify_access_tokens import (
    AccessToken,
    ConfigurationError,
    RequestValidationError,
    VerifyClient,
    VerifyError,
)

# The one import of the package's internals: its request rules, so a bad setting fails at
# construction with the same rule the client would apply on every request.
from .._core import _validation
from ._errors import NO_STORE, EndpointError, JSONErrorRoute, upstream_failure, warn_loudly
from ._identity import MAX_BODY_BYTES as MAX_BODY_BYTES  # re-exported
from ._identity import (
    identity_hash,
    matching_identity,
    offered_identity,
    requested_identity,
)
from ._openapi import HOOK_PARAMETERS, error_response, require_identity, route_openapi

EndpointError.__module__ = __name__  # documented and raised as verify_access_tokens.fastapi's

__all__ = [
    "EndpointError",
    "access_token_router",
    "identity_hash",
    "offered_identity",
    "requested_identity",
]

_ALLOWED: Final = "POST"


ClientProvider = Callable[..., VerifyClient | Awaitable[VerifyClient]]
AuthorizationHook = Callable[..., str | Awaitable[str | None] | None]


def access_token_router(
    *,
    client: VerifyClient | ClientProvider,
    service_sid: str,
    authorize: AuthorizationHook | None = None,
    allow_any_identity: bool = False,
    path: str = "/access-token",
    hash_identities: bool = True,
    identity_hash_key: bytes | None = None,
    ttl: int | None = None,
    factor_friendly_name: str | None = None,
) -> APIRouter:
    """An ``APIRouter`` with ``POST {path}`` minting Verify Push enrollment access tokens.

    Args:
        client: A FastAPI dependency returning the app's `VerifyClient` (for example one
            reading ``request.app.state``, where the app's lifespan put the client it opened),
            or the client itself when it is made and closed on the serving event loop. One
            client serves every request; none is made per request. A closed client, or one
            bound to another event loop, answers 503 and logs an ERROR.
        service_sid: The Verify Service tokens are made in (``VA`` + 32 hex).
        authorize: A FastAPI dependency returning the (unhashed) identity this caller may get a
            token for, from your app's own login: the body's ``identity`` is then optional
            (the token is for the hook's identity); a body naming another identity, or an
            answer that is not a non-blank string (``None``, ``""``), is refused with 403. It
            may raise ``HTTPException`` or `EndpointError` (for example 401) to refuse first.
            Depend on `offered_identity` or `requested_identity` to see what was asked for.
        allow_any_identity: ``True`` instead of a hook mints tokens for whatever identity a
            caller names, which lets anyone enroll their phone as someone else's factor: an
            explicit opt-in for demos or a backend reachable only by trusted callers; it logs a
            warning at startup. Default ``False``.
        path: The endpoint's path, starting with ``/`` (default ``"/access-token"``).
        hash_identities: Send ``sha256(identity)`` hex to Twilio, or HMAC-SHA256 with
            ``identity_hash_key`` (default ``True``); off, the identity must satisfy Verify's
            rule itself.
        identity_hash_key: HMAC key for ``hash_identities`` (default ``None``: plain sha256).
        ttl: Passed to every create, 60 to 300 seconds (default ``None``: Twilio's 60).
        factor_friendly_name: Passed to every create, 1-64 characters (default ``None``).

    Returns:
        The router; include it with ``app.include_router``.

    Raises:
        ConfigurationError: A bad setting (naming the argument), at construction: a malformed
            ``service_sid``, ``ttl`` or ``factor_friendly_name``; neither or both of
            ``authorize`` and ``allow_any_identity``; an ``identity_hash_key`` that is empty or
            without ``hash_identities``; a ``path`` not starting with ``/``.
    """
    _check_settings(
        service_sid, ttl, factor_friendly_name, authorize, allow_any_identity,
        hash_identities, identity_hash_key, path,
    )  # fmt: skip

    # The router's own dependencies are coroutines: FastAPI runs a plain `def` in a worker
    # thread, a hop per request that costs more than everything else the endpoint does.
    async def _given() -> VerifyClient:
        assert isinstance(client, VerifyClient)
        return client

    provider: ClientProvider = _given if isinstance(client, VerifyClient) else client

    async def _anyone(identity: Annotated[str, Depends(requested_identity)]) -> str:
        return identity

    hook: AuthorizationHook = authorize if authorize is not None else _anyone

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if authorize is None:
            warn_loudly(
                "%s mints enrollment tokens for ANY identity a caller names "
                "(allow_any_identity=True, no authorization hook): anyone who can reach it "
                "can enroll a device as another user's factor",
                path,
            )
        yield

    router = APIRouter(route_class=JSONErrorRoute, lifespan=lifespan)

    async def access_token(
        allowed: Annotated[str | None, Depends(hook)],
        offered: Annotated[str | None, Depends(offered_identity)],
        verify: Annotated[VerifyClient, Depends(provider)],
    ) -> JSONResponse:
        identity = matching_identity(allowed, offered)
        sent = identity_hash(identity, identity_hash_key) if hash_identities else identity
        try:
            token: AccessToken = await verify.access_tokens.create(
                service_sid, identity=sent, ttl=ttl, factor_friendly_name=factor_friendly_name
            )
        except VerifyError as exc:
            # For the log: a prefix of what Twilio saw (a hash), never the identity itself.
            reference = (sent if hash_identities else identity_hash(identity))[:8]
            raise upstream_failure(exc, reference) from None
        body = {
            "token": token.token,
            "serviceSid": token.service_sid,
            "identity": token.entity_identity,
            "factorType": str(token.factor_type),
        }
        return JSONResponse(body, headers=NO_STORE)

    _add_routes(router, path, access_token, hook=authorize is not None)
    return router


def _check_settings(
    service_sid: str,
    ttl: int | None,
    factor_friendly_name: str | None,
    authorize: AuthorizationHook | None,
    allow_any_identity: bool,
    hash_identities: bool,
    identity_hash_key: bytes | None,
    path: str,
) -> None:
    """`access_token_router`'s checks: a bad setting fails at construction, naming it."""
    try:
        _validation.check_service_sid(service_sid)
        _validation.check_ttl(ttl)
        _validation.check_friendly_name(factor_friendly_name)
    except RequestValidationError as exc:
        raise ConfigurationError(exc.field, exc.rule) from None
    if (authorize is None) == (not allow_any_identity):
        raise ConfigurationError(
            "authorize",
            "pass an authorization dependency, or allow_any_identity=True (unsafe outside a "
            "demo or a trusted network), not both",
        )
    if identity_hash_key is not None and (
        not hash_identities or not isinstance(identity_hash_key, bytes) or not identity_hash_key
    ):
        raise ConfigurationError("identity_hash_key", "needs hash_identities=True and bytes")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigurationError("path", "must be a str starting with '/'")


def _add_routes(router: APIRouter, path: str, endpoint: Any, *, hook: bool) -> None:
    """POST ``path`` (and its other spelling) to ``endpoint``; 405 for every other method."""
    # The path with and without its trailing slash: no redirect built from the Host header.
    for spelling in (path, _other_spelling(path)) if path != "/" else (path,):
        documented = spelling == path
        openapi = route_openapi(hook=hook)
        router.add_api_route(
            spelling,
            endpoint,
            methods=["POST"],
            response_class=JSONResponse,
            summary="Mint a Verify Push enrollment access token",
            openapi_extra=openapi,
            include_in_schema=documented,
        )
        route = router.routes[-1]
        assert isinstance(route, APIRoute)
        if _takes_request_parameters(route.dependant):
            # Declared on the route, so FastAPI does not add its own HTTPValidationError shape.
            route.responses |= {
                status: error_response(text) for status, text in HOOK_PARAMETERS.items()
            }
        if _depends_on(route.dependant, requested_identity):
            require_identity(openapi)
        # Every other method, TRACE and unknown ones included (methods=None matches them all).
        # A plain ASGI app, not a function: Starlette gives a function route GET by default.
        router.routes.append(Route(spelling, _OtherMethods(), include_in_schema=False))


class _OtherMethods:
    """405 in the endpoint's error shape, ``Allow: POST``; the body is never read."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        error = EndpointError(405, "method not allowed; use POST", headers={"Allow": _ALLOWED})
        await error.response()(scope, receive, send)


def _other_spelling(path: str) -> str:
    stripped = path.rstrip("/")
    return stripped if stripped != path else path + "/"


def _depends_on(dependant: Any, dependency: Any) -> bool:
    """Whether ``dependency`` is in a dependency tree (the route's identity is then required)."""
    if getattr(dependant, "call", None) is dependency:
        return True
    return any(_depends_on(d, dependency) for d in getattr(dependant, "dependencies", ()))


def _takes_request_parameters(dependant: Any) -> bool:
    """Whether a dependency tree reads headers, cookies, query or body parameters.

    Only then can FastAPI's own validation refuse a request (the router's answer is 422).
    """
    kinds = ("query_params", "header_params", "cookie_params", "path_params", "body_params")
    if any(getattr(dependant, kind, None) for kind in kinds):
        return True
    return any(_takes_request_parameters(d) for d in getattr(dependant, "dependencies", ()))
