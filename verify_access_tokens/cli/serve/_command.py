"""``verify-access-tokens serve``: the Verify Push backend endpoint under uvicorn.

FastAPI and uvicorn are imported only when the command runs, so the CLI works without the
``fastapi`` extra. ``--emulator`` starts the built-in emulator in the same process (no
credentials); otherwise the ``TWILIO_*`` credentials and ``VERIFY_SERVICE_SID`` are used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import ssl
import sys
from typing import Any

from ... import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    VerifyClient,
    VerifyError,
)
from ..._core._validation import is_loopback
from ...emulator import Faults, VerifyEmulator
from .._commands import EXIT_API_ERROR, faults_from_args
from .._listen import check_listen
from ._app import (
    ENV_BEARER,
    ENV_HASH_KEY,
    ENV_WORKER,
    build_app,
    client_options,
    load_hook,
    log_to_stderr,
)
from ._logs import uvicorn_log_config
from ._options import (
    ENV_SERVICE_SID,
    HELP,
    MIN_BEARER_CHARS,
    add_serve_options,
    backlog,
    default_max_connections,
)
from ._readiness import PROBE_SID

__all__ = ["ENV_BEARER", "ENV_HASH_KEY", "add_serve_command", "build_app", "serve_command"]


def add_serve_command(commands: Any) -> None:
    """Register ``serve`` on the CLI's subparsers."""
    serve = commands.add_parser(
        "serve",
        help="serve the access-token endpoint for Verify Push mobile apps (needs [fastapi])",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_serve_options(serve)
    serve.set_defaults(handler=serve_command)


def _settings(args: argparse.Namespace) -> tuple[str | None, bytes | None]:
    bearer = os.environ.get(ENV_BEARER) or None
    if bearer is not None and not all("!" <= c <= "~" for c in bearer):
        raise ConfigurationError(
            ENV_BEARER,
            "must be printable ASCII without spaces (an HTTP header could never match it)",
        )
    if bearer is not None and len(bearer) < MIN_BEARER_CHARS:
        raise ConfigurationError(ENV_BEARER, f"must be at least {MIN_BEARER_CHARS} characters")
    if bearer is not None and args.authorize is not None:
        raise ConfigurationError(
            "--authorize", f"cannot be combined with {ENV_BEARER}: the hook decides who may call"
        )
    _check_tls(args.ssl_certfile, args.ssl_keyfile)
    exposed = not args.emulator and not is_loopback(args.host)
    if bearer is None and args.authorize is None and exposed and not args.unsafe_no_auth:
        raise ConfigurationError(
            "--host",
            f"a non-loopback host against real Twilio needs {ENV_BEARER} "
            "(or --unsafe-no-auth to mint tokens for anyone who can reach it)",
        )
    hash_key = os.environ.get(ENV_HASH_KEY) or None
    if hash_key is not None and not args.hash_identities:
        raise ConfigurationError(ENV_HASH_KEY, "cannot be used with --no-hash-identities")
    if args.health_path is not None and (
        not args.health_path.startswith("/") or args.health_path.rstrip("/") == args.path
    ):
        raise ConfigurationError("--health-path", "must start with / and differ from --path")
    if args.workers > 1 and args.emulator:
        raise ConfigurationError(
            "--workers", "more than 1 needs real credentials: each would have its own emulator"
        )
    return bearer, hash_key.encode() if hash_key else None


def _check_tls(certfile: str | None, keyfile: str | None) -> None:
    """Load the pair as uvicorn will, so a bad file is one line at start, not a traceback."""
    if certfile is None and keyfile is None:
        return
    if certfile is None or keyfile is None:
        raise ConfigurationError("--ssl-certfile", "needs --ssl-keyfile too, and the reverse")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:  # never a passphrase prompt: one now, and another in each uvicorn process
        context.load_cert_chain(certfile, keyfile, password=_refuse_passphrase)
    except _EncryptedKey:
        raise ConfigurationError(
            "--ssl-keyfile", f"{keyfile} is encrypted; serve takes a key without a passphrase"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            "--ssl-certfile", f"cannot load {certfile} with {keyfile}: {exc}"
        ) from None


class _EncryptedKey(Exception):
    pass


def _refuse_passphrase() -> bytes:
    raise _EncryptedKey


async def _check_credentials(service_sid: str, base_url: str | None) -> str | None:
    """None when Twilio accepts the credentials (a 404 for a sid that does not exist)."""
    try:
        async with VerifyClient(base_url=base_url, max_retries=1) as client:
            await client.access_tokens.fetch(service_sid, PROBE_SID)
    except NotFoundError:
        return None
    except ConfigurationError:
        raise  # missing credentials: exit 2, naming them
    except AuthenticationError as exc:
        return (
            f"error: TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN: refused by {client.base_url} "
            f"(HTTP {exc.status}, Twilio code {exc.code}); fix them, or pass --no-check"
        )
    except APIConnectionError as exc:
        return f"error: start check failed: {exc}; pass --no-check to skip it"
    except VerifyError as exc:
        status, code = getattr(exc, "status", None), getattr(exc, "code", None)
        return (
            f"error: start check failed: {type(exc).__name__} (HTTP {status}, Twilio code "
            f"{code}) fetching a token of {service_sid}; pass --no-check to skip it"
        )
    return None  # pragma: no cover - the probe sid exists: the credentials work too


def _uvicorn_config(args: argparse.Namespace, app: Any) -> Any:
    from ._uvicorn_guard import GuardedConfig

    max_connections = args.max_connections or default_max_connections()
    return GuardedConfig(
        app,
        host=args.host,
        port=args.port,
        lifespan="on",
        workers=args.workers,
        factory=isinstance(app, str),
        timeout_keep_alive=args.keep_alive_timeout,
        timeout_graceful_shutdown=args.shutdown_timeout,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_connections=max_connections,
        backlog=backlog(),
        log_config=uvicorn_log_config(args.log_format),
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )


async def serve_command(args: argparse.Namespace) -> int:
    """Run the endpoint until Ctrl-C (or SIGTERM)."""
    check_listen(args.host, args.port)  # a bad port or host, a busy port: one line, not a traceback
    bearer, hash_key = _settings(args)
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the test extra installs it
        raise ConfigurationError(
            "serve", "needs the fastapi extra: pip install 'verify-access-tokens[fastapi]'"
        ) from None
    if args.authorize is not None:
        load_hook(args.authorize)  # a bad hook is one line now, not once per worker

    handler = log_to_stderr(args.log_format)
    try:
        return await _serve(args, uvicorn, bearer, hash_key)
    finally:
        if handler is not None:
            logging.getLogger("verify_access_tokens").removeHandler(handler)


async def _serve(
    args: argparse.Namespace, uvicorn: Any, bearer: str | None, hash_key: bytes | None
) -> int:
    faults = faults_from_args(args)
    options = client_options(args.timeout, not args.no_retry_ambiguous_creates)
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
            failure = await _check_credentials(service_sid, args.base_url) if args.check else None
            if failure is not None:
                print(failure, file=sys.stderr)
                return EXIT_API_ERROR
            client = VerifyClient(base_url=args.base_url, **options)
            upstream = client.base_url
        app = build_app(
            client=client,
            service_sid=service_sid,
            path=args.path,
            bearer_token=bearer,
            authorize=load_hook(args.authorize) if args.authorize else None,
            hash_identities=args.hash_identities,
            identity_hash_key=hash_key,
            ttl=args.ttl,
            docs=args.docs,
            health_path=args.health_path,
        )
        auth = (
            f"authorized by {args.authorize}"
            if args.authorize
            else "bearer token required"
            if bearer
            else "NO authorization"
        )
        host = f"[{args.host}]" if ":" in args.host else args.host
        workers = f", {args.workers} workers" if args.workers > 1 else ""
        scheme = "https" if args.ssl_certfile else "http"
        print(
            f"Serving POST {scheme}://{host}:{args.port}{args.path} "
            f"(service {service_sid}, {upstream}, {auth}{workers})",
            flush=True,
        )
        if args.workers > 1:
            await client.aclose()  # never opened: each worker makes and opens its own
            _run_workers(args, service_sid)
        else:
            await uvicorn.Server(_uvicorn_config(args, app)).serve()
    return 0


def _run_workers(args: argparse.Namespace, service_sid: str) -> None:
    from ._uvicorn_guard import run_workers

    settings = {
        "service_sid": service_sid,
        "base_url": args.base_url,
        "timeout": args.timeout,
        "retry_ambiguous_creates": not args.no_retry_ambiguous_creates,
        "log_format": args.log_format,
        "authorize": args.authorize,
        "path": args.path,
        "hash_identities": args.hash_identities,
        "ttl": args.ttl,
        "docs": args.docs,
        "health_path": args.health_path,
    }
    os.environ[ENV_WORKER] = json.dumps(settings)  # inherited by the worker processes
    # The workers import this package before the hook: not from a folder of the same name in
    # the current directory, which `load_hook` put first on the path they inherit.
    with contextlib.suppress(ValueError):
        sys.path.remove(os.getcwd())
    run_workers(_uvicorn_config(args, "verify_access_tokens.cli.serve._app:worker_app"))
