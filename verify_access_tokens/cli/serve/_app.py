"""The FastAPI app ``serve`` runs, in its own process or in each of ``--workers N``.

The router, the ``--authorize`` hook or a bearer-token hook when
``VERIFY_ACCESS_TOKENS_BEARER_TOKEN`` is set, an optional
readiness route, FastAPI's ``/docs`` only with ``--docs``, and every other answer (404, 405) in
the endpoint's error shape. The client is made here and opened and closed by the app's lifespan,
so each worker process has its own client (and its own in-flight limiter).
"""

# No ``from __future__ import annotations``: FastAPI reads the hooks' annotations.
import contextlib
import hmac
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Final

from ... import ConfigurationError, VerifyClient
from ._logs import formatter
from ._readiness import Readiness

if TYPE_CHECKING:
    from fastapi import FastAPI

ENV_BEARER: Final = "VERIFY_ACCESS_TOKENS_BEARER_TOKEN"
ENV_HASH_KEY: Final = "VERIFY_ACCESS_TOKENS_IDENTITY_HASH_KEY"
# How the parent hands the (non-secret) settings to each worker process it starts.
ENV_WORKER: Final = "_VERIFY_ACCESS_TOKENS_SERVE_WORKER"
_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def log_to_stderr(log_format: str = "text") -> logging.Handler | None:
    """Show the package's warnings and errors on stderr, beside uvicorn's lines (once).

    And the slow-client guard's INFO summary; the client's own INFO lines stay quiet.

    Args:
        log_format: ``"text"`` (timestamped lines) or ``"json"`` (one object per line).

    Returns:
        The handler added, for the caller to remove when it is done; ``None`` if one was there.
    """
    package = logging.getLogger("verify_access_tokens")
    if any(isinstance(h, _Stderr) for h in package.handlers):
        return None
    handler = _Stderr()
    handler.setFormatter(formatter(log_format))
    package.addHandler(handler)
    if package.getEffectiveLevel() > logging.WARNING:
        package.setLevel(logging.WARNING)
    logging.getLogger("verify_access_tokens.serve").setLevel(logging.INFO)
    return handler


@contextlib.contextmanager
def _second_interrupt_aborts() -> Iterator[None]:
    """Ctrl-C while the server stops ends the process at once, in one line (exit 130).

    uvicorn's own "force quit" leaves the event loop to cancel what is left, each with a
    traceback. Chained in front of uvicorn's handlers, which stay in charge of the first signal.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread (a server run in a test's thread)
        return
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    stopping = False

    def on_signal(sig: int, frame: Any) -> None:
        nonlocal stopping
        if stopping and sig == signal.SIGINT:
            sys.stderr.write("aborted: interrupted while stopping; requests in flight were cut\n")
            sys.stderr.flush()
            os._exit(130)
        stopping = True
        handler = previous[signal.Signals(sig)]
        if callable(handler):
            handler(sig, frame)

    for sig in handled:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _bearer_hook(expected: str) -> Callable[..., Any]:
    """An ``authorize`` dependency: a caller with the shared bearer token may ask for anyone."""
    from fastapi import Depends, Request
    from fastapi.security import HTTPBearer

    from ...fastapi import EndpointError, requested_identity

    secret = expected.encode("ascii")  # checked printable ASCII at start
    # Declares the scheme in the OpenAPI document. The check reads the header itself:
    # exactly "Bearer <secret>", whatever FastAPI's version strips around the value.
    declared = HTTPBearer(auto_error=False)

    async def authenticated(request: Request, _scheme: Annotated[Any, Depends(declared)]) -> None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        given = presented.encode("latin-1")  # Starlette decoded the header's bytes as latin-1
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, secret):
            raise EndpointError(401, "missing or wrong bearer token", headers=_CHALLENGE)

    # Sub-dependencies resolve in order: the header is checked before the body is read.
    # Coroutines, so that FastAPI does not hop to a worker thread for each.
    async def bearer(
        _: Annotated[None, Depends(authenticated)],
        identity: Annotated[str, Depends(requested_identity)],
    ) -> str:
        return identity

    return bearer


def load_hook(spec: str) -> Callable[..., Any]:
    """The ``--authorize`` dependency ``MODULE:ATTR``, imported as uvicorn imports an app.

    Args:
        spec: ``MODULE:ATTR``, the module found from the current directory first.

    Raises:
        ConfigurationError: Naming ``--authorize``, when it cannot be imported, is not callable
            or is not a dependency FastAPI can use; the operator's module failing to import is
            one line too.
    """
    from uvicorn.importer import ImportFromStringError, import_from_string

    if os.getcwd() not in sys.path:  # the console script's path starts at its own folder
        sys.path.insert(0, os.getcwd())
    module = spec.partition(":")[0]
    try:
        hook = import_from_string(spec)
    except ImportFromStringError as exc:
        raise ConfigurationError("--authorize", str(exc)) from None
    except Exception as exc:  # the operator's module raised while importing
        raise ConfigurationError(
            "--authorize", f"importing {module} failed: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(hook):
        raise ConfigurationError("--authorize", f"{spec} is not callable")
    try:  # what FastAPI does with it on the first request, done now
        from fastapi import APIRouter

        APIRouter().add_api_route("/", hook, response_model=None)
    except Exception as exc:
        raise ConfigurationError(
            "--authorize", f"{spec} is not a FastAPI dependency: {type(exc).__name__}: {exc}"
        ) from None
    return hook  # type: ignore[no-any-return]


def build_app(
    *,
    client: VerifyClient,
    service_sid: str,
    path: str,
    bearer_token: str | None,
    authorize: Callable[..., Any] | None = None,
    hash_identities: bool,
    identity_hash_key: bytes | None,
    ttl: int | None,
    docs: bool = False,
    health_path: str | None = None,
) -> "FastAPI":
    """The app ``serve`` runs: the router, with ``client`` opened and closed by its lifespan."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    from ...fastapi import EndpointError, access_token_router

    ready = False

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal ready
        async with client:
            ready = True
            try:
                with _second_interrupt_aborts():
                    yield
            finally:
                ready = False
                from ._uvicorn_guard import log_summaries

                log_summaries()  # connections are closed by now

    app = FastAPI(
        title="Verify Push access tokens",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )

    async def other_paths(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return EndpointError(exc.status_code, message.lower(), headers=exc.headers).response()

    app.add_exception_handler(HTTPException, other_paths)
    if health_path is not None:
        readiness = Readiness(client, service_sid)

        async def health() -> JSONResponse:
            if not ready or client.closed:
                return EndpointError(503, "not ready: the client is not open").response()
            problem = await readiness.problem()
            if problem is not None:
                return EndpointError(503, f"not ready: {problem}").response()
            return JSONResponse({"status": "ready"}, headers={"Cache-Control": "no-store"})

        app.add_api_route(health_path, health, methods=["GET", "HEAD"], include_in_schema=False)
    hook = authorize or (_bearer_hook(bearer_token) if bearer_token else None)
    router = access_token_router(
        client=client,
        service_sid=service_sid,
        path=path,
        authorize=hook,
        allow_any_identity=hook is None,
        hash_identities=hash_identities,
        identity_hash_key=identity_hash_key,
        ttl=ttl,
    )
    app.include_router(router)
    return app


def client_options(timeout: float | None, retry_ambiguous_creates: bool) -> dict[str, Any]:
    """The `VerifyClient` settings of ``serve``.

    Its ``--timeout``, and re-sending a create whose outcome is unknown (a spare enrollment
    token is harmless: it expires unused).
    """
    options: dict[str, Any] = {"retry_ambiguous_creates": retry_ambiguous_creates}
    if timeout is not None:
        options["timeout"] = timeout
    return options


def worker_app() -> "FastAPI":
    """The app of one ``--workers N`` process, from the settings its parent checked.

    Secrets (Twilio credentials, bearer token, hash key) come from the environment, as in the
    parent; the other settings from ``_VERIFY_ACCESS_TOKENS_SERVE_WORKER``.
    """
    settings = json.loads(os.environ[ENV_WORKER])
    log_to_stderr(settings["log_format"])
    options = client_options(settings["timeout"], settings["retry_ambiguous_creates"])
    hash_key = os.environ.get(ENV_HASH_KEY) or None
    return build_app(
        client=VerifyClient(base_url=settings["base_url"], **options),
        service_sid=settings["service_sid"],
        path=settings["path"],
        bearer_token=os.environ.get(ENV_BEARER) or None,
        authorize=load_hook(settings["authorize"]) if settings["authorize"] else None,
        hash_identities=settings["hash_identities"],
        identity_hash_key=hash_key.encode() if hash_key else None,
        ttl=settings["ttl"],
        docs=settings["docs"],
        health_path=settings["health_path"],
    )
