"""``verify-access-tokens serve``: the Verify Push backend endpoint under uvicorn.

FastAPI and uvicorn are imported only when the command runs, so the CLI works without the
``fastapi`` extra. ``--emulator`` starts the built-in emulator in the same process (no
credentials); otherwise the ``TWILIO_*`` credentials and ``VERIFY_SERVICE_SID`` are used.
"""

# No ``from __future__ import annotations``: FastAPI reads the bearer hook's annotations.
import argparse
import contextlib
import hmac
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any, Final

from .. import ConfigurationError, VerifyClient
from .._core._validation import is_loopback
from ..emulator import Faults, VerifyEmulator
from ._commands import add_fault_flags, faults_from_args
from ._listen import check_listen

if TYPE_CHECKING:
    from fastapi import FastAPI

ENV_BEARER: Final = "VERIFY_ACCESS_TOKENS_BEARER_TOKEN"
ENV_HASH_KEY: Final = "VERIFY_ACCESS_TOKENS_IDENTITY_HASH_KEY"
ENV_SERVICE_SID: Final = "VERIFY_SERVICE_SID"
MIN_BEARER_CHARS: Final = 16

_HELP: Final = f"""\
Serve POST PATH (default /access-token) for Twilio's Verify Push mobile SDKs: it takes a
form-encoded or JSON `identity` and answers {{"token", "serviceSid", "identity", "factorType"}}.

Authorization: when {ENV_BEARER} is set (at least {MIN_BEARER_CHARS}
characters), every request must carry `Authorization: Bearer <that value>` (compared in
constant time; 401 otherwise), and an authorized caller may ask for any identity: put the
endpoint behind your own login backend.
Without it, anyone who reaches the port gets a token for any identity they name. That is
allowed on a loopback host or with --emulator; a non-loopback --host against real Twilio is
refused unless --unsafe-no-auth.

Identities are sent to Twilio as sha256 hex (HMAC-SHA256 keyed with
{ENV_HASH_KEY} when set) unless --no-hash-identities.
"""


def add_serve_command(commands: Any) -> None:
    """Register ``serve`` on the CLI's subparsers."""
    serve = commands.add_parser(
        "serve",
        help="serve the access-token endpoint for Verify Push mobile apps (needs [fastapi])",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--emulator", action="store_true", help="start the built-in emulator too (no credentials)"
    )
    serve.add_argument("--service-sid", help=f"Verify Service SID (default: ${ENV_SERVICE_SID})")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--path", default="/access-token", help="endpoint path (/access-token)")
    serve.add_argument("--ttl", type=int, help="token lifetime in seconds, 60-300")
    serve.add_argument(
        "--no-hash-identities",
        dest="hash_identities",
        action="store_false",
        help="send the identity to Twilio as given (it must then satisfy Verify's rule)",
    )
    serve.add_argument(
        "--timeout",
        type=float,
        help="seconds one request to Twilio may take (default 35); past it the caller gets 504",
    )
    serve.add_argument("--base-url", help="API origin (default: https://verify.twilio.com)")
    serve.add_argument(
        "--unsafe-no-auth",
        action="store_true",
        help=f"allow a non-loopback host against real Twilio without {ENV_BEARER}",
    )

    group = serve.add_argument_group("emulator faults (with --emulator)")
    add_fault_flags(group)
    serve.set_defaults(handler=serve_command)


def _bearer_hook(expected: str) -> Callable[..., Any]:
    """An ``authorize`` dependency: a caller with the shared bearer token may ask for anyone."""
    from fastapi import Depends, Request

    from ..fastapi import EndpointError, requested_identity

    secret = expected.encode()

    async def authenticated(request: Request) -> None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), secret):
            raise EndpointError(401, "missing or wrong bearer token", headers=_CHALLENGE)

    # Sub-dependencies resolve in order: the header is checked before the body is read.
    # Coroutines, so that FastAPI does not hop to a worker thread for each.
    async def bearer(
        _: Annotated[None, Depends(authenticated)],
        identity: Annotated[str, Depends(requested_identity)],
    ) -> str:
        return identity

    return bearer


_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}


def build_app(
    *,
    client: VerifyClient,
    service_sid: str,
    path: str,
    bearer_token: str | None,
    hash_identities: bool,
    identity_hash_key: bytes | None,
    ttl: int | None,
) -> "FastAPI":
    """The app ``serve`` runs: the router, with ``client`` closed by the app's lifespan."""
    from fastapi import FastAPI

    from ..fastapi import access_token_router

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client:
            yield

    app = FastAPI(title="Verify Push access tokens", lifespan=lifespan)
    router = access_token_router(
        client=client,
        service_sid=service_sid,
        path=path,
        authorize=_bearer_hook(bearer_token) if bearer_token else None,
        allow_any_identity=not bearer_token,
        hash_identities=hash_identities,
        identity_hash_key=identity_hash_key,
        ttl=ttl,
    )
    app.include_router(router)
    return app


def _settings(args: argparse.Namespace) -> tuple[str | None, bytes | None]:
    bearer = os.environ.get(ENV_BEARER) or None
    if bearer is not None and len(bearer) < MIN_BEARER_CHARS:
        raise ConfigurationError(ENV_BEARER, f"must be at least {MIN_BEARER_CHARS} characters")
    exposed = not args.emulator and not is_loopback(args.host)
    if bearer is None and exposed and not args.unsafe_no_auth:
        raise ConfigurationError(
            "--host",
            f"a non-loopback host against real Twilio needs {ENV_BEARER} "
            "(or --unsafe-no-auth to mint tokens for anyone who can reach it)",
        )
    hash_key = os.environ.get(ENV_HASH_KEY) or None
    if hash_key is not None and not args.hash_identities:
        raise ConfigurationError(ENV_HASH_KEY, "cannot be used with --no-hash-identities")
    return bearer, hash_key.encode() if hash_key else None


async def serve_command(args: argparse.Namespace) -> int:
    """Run the endpoint until Ctrl-C (or SIGTERM)."""
    bearer, hash_key = _settings(args)
    check_listen(args.host, args.port)  # a bad port or host, a busy port: one line, not a traceback
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the test extra installs it
        raise ConfigurationError(
            "serve", "needs the fastapi extra: pip install 'verify-access-tokens[fastapi]'"
        ) from None

    faults = faults_from_args(args)
    options = {} if args.timeout is None else {"timeout": args.timeout}
    async with contextlib.AsyncExitStack() as stack:
        if args.emulator:
            if args.service_sid or args.base_url:
                raise ConfigurationError("--emulator", "takes no --service-sid or --base-url")
            emulator = VerifyEmulator(faults=faults, seed=args.seed)
            await stack.enter_async_context(emulator)
            client, service_sid = emulator.client(**options), emulator.service_sid
            upstream = f"emulator at {emulator.base_url}"
        else:
            service_sid = args.service_sid or os.environ.get(ENV_SERVICE_SID) or ""
            if not service_sid:
                raise ConfigurationError(
                    "--service-sid", f"missing: pass --service-sid or set {ENV_SERVICE_SID}"
                )
            if faults != Faults() or args.seed is not None:
                raise ConfigurationError("emulator faults", "need --emulator")
            client = VerifyClient(base_url=args.base_url, **options)
            upstream = client.base_url
        app = build_app(
            client=client,
            service_sid=service_sid,
            path=args.path,
            bearer_token=bearer,
            hash_identities=args.hash_identities,
            identity_hash_key=hash_key,
            ttl=args.ttl,
        )
        auth = "bearer token required" if bearer else "NO authorization"
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(
            f"Serving POST http://{host}:{args.port}{args.path} "
            f"(service {service_sid}, {upstream}, {auth})",
            flush=True,
        )
        config = uvicorn.Config(app, host=args.host, port=args.port, lifespan="on")
        await uvicorn.Server(config).serve()
    return 0
