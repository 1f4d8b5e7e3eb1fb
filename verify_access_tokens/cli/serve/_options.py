"""``serve``'s options: what ``--help`` shows, and the defaults derived from the machine."""

from __future__ import annotations

import argparse
import resource
from typing import Any, Final

from .._commands import add_fault_flags
from ._app import ENV_BEARER, ENV_HASH_KEY
from ._logs import LOG_FORMATS

ENV_SERVICE_SID: Final = "VERIFY_SERVICE_SID"
MIN_BEARER_CHARS: Final = 16

HELP: Final = f"""\
Serve POST PATH (default /access-token) for Twilio's Verify Push mobile SDKs: it takes a
form-encoded or JSON `identity` and answers {{"token", "serviceSid", "identity", "factorType"}}.

Authorization, one of:
- --authorize MODULE:ATTR: your FastAPI dependency returns the logged-in caller's identity
  (from your app's own session), or raises 401; the body's `identity` is then optional, and
  one naming someone else is answered 403.
- {ENV_BEARER} (at least {MIN_BEARER_CHARS} characters): every request must carry
  `Authorization: Bearer <that value>` (compared in constant time; 401 otherwise), and may ask
  for any identity: for your own backend calling this one.
- neither: anyone who reaches the port gets a token for any identity they name. Allowed on a
  loopback host or with --emulator; a non-loopback --host against real Twilio is refused
  unless --unsafe-no-auth.

Identities are sent to Twilio as sha256 hex (HMAC-SHA256 keyed with
{ENV_HASH_KEY} when set) unless --no-hash-identities.
"""


def _open_file_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 65_536 if soft == resource.RLIM_INFINITY else soft


def backlog() -> int:
    """The listen queue, which is also how many connections asyncio accepts in one go."""
    return max(64, min(2048, _open_file_limit() // 16))


def default_max_connections() -> int:
    """What the open-file limit allows.

    asyncio accepts a whole batch of `backlog` connections before the cap can close anything,
    and a closed socket is released a loop iteration later: room is left for four batches, and
    256 descriptors for Twilio, the emulator and logs (two batches were seen to hit EMFILE).
    """
    return max(16, _open_file_limit() - 4 * backlog() - 256)


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive finite number, not {text}")
        return value

    return parse


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    """Every option of ``serve``, by what it configures."""
    _add_upstream_options(serve)
    _add_access_options(serve)
    _add_server_options(serve.add_argument_group("the server"))
    _add_limit_options(serve.add_argument_group("limits on clients"))
    add_fault_flags(serve.add_argument_group("emulator faults (with --emulator)"))


def _add_upstream_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--emulator",
        action="store_true",
        help="start the built-in emulator too (no credentials), for your backend's and app's "
        "tests and development: its tokens are not Twilio's, a phone with the real Verify SDK "
        "cannot enroll with them",
    )
    serve.add_argument("--service-sid", help=f"Verify Service SID (default: ${ENV_SERVICE_SID})")
    serve.add_argument("--base-url", help="API origin (default: https://verify.twilio.com)")
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
    serve.add_argument(
        "--no-retry-ambiguous-creates",
        action="store_true",
        help="answer 502/504 'outcome unknown' when a create fails after it may have reached "
        "Twilio (a timeout, a lost answer, a 5xx) instead of sending it again within the "
        "client's retries (default: sent again; a spare enrollment token expires unused)",
    )
    serve.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not check the credentials at start (a fetch of a token sid that does not exist)",
    )


def _add_access_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--authorize",
        metavar="MODULE:ATTR",
        help="a FastAPI dependency in your code (imported as uvicorn imports module:app, the "
        "current directory first on the path) returning the caller's identity",
    )
    serve.add_argument(
        "--unsafe-no-auth",
        action="store_true",
        help=f"allow a non-loopback host against real Twilio without {ENV_BEARER}",
    )


def _add_server_options(server: argparse._ArgumentGroup) -> None:
    server.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    server.add_argument("--path", default="/access-token", help="endpoint path (/access-token)")
    server.add_argument(
        "--workers",
        type=_positive(int),
        default=1,
        help="processes serving the port, each with its own client (default 1; not with "
        "--emulator)",
    )
    server.add_argument(
        "--docs", action="store_true", help="serve /docs, /redoc and /openapi.json (default off)"
    )
    server.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text: each line with its ISO 8601 UTC time in front; json: one object per line "
        "(time, level, logger, message), for a log pipeline",
    )
    server.add_argument(
        "--health-path",
        help="a readiness route (for example /healthz): 200 while a token can be minted, 503 "
        "while the client is closed or Twilio refuses the credentials or cannot be reached; "
        "asks Twilio at most every 30 s, one request whatever the probes (default: none)",
    )
    server.add_argument("--ssl-certfile", metavar="PEM", help="certificate chain: serve HTTPS")
    server.add_argument(
        "--ssl-keyfile", metavar="PEM", help="its private key, without a passphrase"
    )


def _add_limit_options(limits: argparse._ArgumentGroup) -> None:
    limits.add_argument(
        "--header-timeout",
        type=_positive(float),
        default=10.0,
        help="seconds a client has to send its request line and headers; past them the "
        "connection is closed (default 10)",
    )
    limits.add_argument(
        "--body-timeout",
        type=_positive(float),
        default=10.0,
        help="seconds a client has to send its body after its headers (default 10)",
    )
    limits.add_argument(
        "--keep-alive-timeout",
        type=_positive(float),
        default=5.0,
        help="seconds an idle kept-alive connection stays open (default 5)",
    )
    limits.add_argument(
        "--max-connections",
        type=_positive(int),
        help="open connections per worker; past it a new one closes the oldest still sending "
        "its request, or is answered 503 (default: what the open-file limit allows, "
        f"{default_max_connections()} here)",
    )
    limits.add_argument(
        "--shutdown-timeout",
        type=_positive(float),
        default=30.0,
        help="seconds requests in flight get to finish after SIGTERM or Ctrl-C; past it they are "
        "answered 503 (default 30); Ctrl-C again while stopping exits at once",
    )
