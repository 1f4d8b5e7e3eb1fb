"""The ``verify-access-tokens`` command line: demo, emulator, create, fetch, enroll, serve.

Uses only the public API. Expected failures print one line and exit 2 (bad input or settings)
or 1 (the API said no, or the network failed); never a traceback. The JWT ``token`` is masked
unless ``--show-token`` asks for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any, TextIO

from .. import (
    AccessToken,
    APIStatusError,
    ConfigurationError,
    RequestValidationError,
    VerifyClient,
    VerifyError,
    __version__,
)
from ..emulator import Faults, VerifyEmulator

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE = 0, 1, 2
MASK = "<masked: use --show-token>"
# What the user typed for each Python parameter a validation error may name.
_FLAGS = {
    "service_sid": "SERVICE_SID",
    "sid": "SID",
    "identity": "--identity",
    "factor_friendly_name": "--friendly-name",
    "factor_type": "--factor-type",
    "ttl": "--ttl",
    "concurrency": "--concurrency",
    "rate_limit": "--rate-limit",
    "base_url": "--base-url",
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _token_fields(token: AccessToken, *, show_token: bool) -> dict[str, Any]:
    fields = token.to_dict()
    if not show_token:
        fields["token"] = MASK
    return fields


def _print_token(token: AccessToken, args: argparse.Namespace, out: TextIO) -> None:
    fields = _token_fields(token, show_token=args.show_token)
    if args.json:
        print(json.dumps(fields, indent=2), file=out)
        return
    width = max(map(len, fields))
    for key, value in fields.items():
        print(f"{key:<{width}}  {'' if value is None else value}", file=out)


def _client(args: argparse.Namespace) -> VerifyClient:
    return VerifyClient(base_url=args.base_url)


async def _create(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        token = await client.access_tokens.create(
            args.service_sid,
            identity=args.identity,
            factor_type=args.factor_type,
            factor_friendly_name=args.friendly_name,
            ttl=args.ttl,
        )
    _print_token(token, args, sys.stdout)
    return EXIT_OK


async def _fetch(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        token = await client.access_tokens.fetch(args.service_sid, args.sid)
    _print_token(token, args, sys.stdout)
    return EXIT_OK


def _faults(args: argparse.Namespace) -> Faults:
    try:
        return Faults(
            rate_limit=args.server_rate_limit,
            error_rate=args.error_rate,
            drop_rate=args.drop_rate,
            lost_response_rate=args.lost_response_rate,
            latency=args.latency,
        )
    except ValueError as exc:
        raise ConfigurationError("emulator faults", str(exc)) from None


def _emulator_printout(emulator: VerifyEmulator) -> str:
    """Lines a shell user can paste as they are: comments, ``export``s, then a command to try."""
    # Listening on every interface: advertise loopback, the only plain-http host the client takes.
    base_url = emulator.base_url.replace("://0.0.0.0:", "://127.0.0.1:", 1)
    settings = {
        "TWILIO_ACCOUNT_SID": emulator.account_sid,
        "TWILIO_AUTH_TOKEN": emulator.auth_token,
        "VERIFY_SERVICE_SID": emulator.service_sid,
        "VERIFY_ACCESS_TOKENS_BASE_URL": base_url,
    }
    return "\n".join(
        [
            f"# Verify emulator listening on {emulator.base_url}; Ctrl-C stops it.",
            "# Paste these lines into another (POSIX) shell:",
            *(f"export {name}={shlex.quote(value)}" for name, value in settings.items()),
            'verify-access-tokens create "$VERIFY_SERVICE_SID" --identity 0123456789abcdef',
        ]
    )


@contextlib.asynccontextmanager
async def _listening(emulator: VerifyEmulator, args: argparse.Namespace) -> AsyncIterator[None]:
    """The emulator, started; a port that is busy (or an address not on this machine) is a
    one-line settings error naming the flag."""
    try:
        await emulator.start()
    except OSError as exc:
        await emulator.stop()
        raise ConfigurationError(
            "--port", f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    try:
        yield
    finally:
        await emulator.stop()


async def _emulator(args: argparse.Namespace) -> int:
    emulator = VerifyEmulator(
        host=args.host,
        port=args.port,
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        faults=_faults(args),
        seed=args.seed,
    )
    async with _listening(emulator, args):
        print(_emulator_printout(emulator), flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    return EXIT_OK  # pragma: no cover - only reached when the wait is cancelled


async def _demo(args: argparse.Namespace) -> int:
    """Enroll many identities concurrently against an in-process emulator, then fetch some."""
    async with (
        VerifyEmulator(faults=_faults(args), seed=args.seed) as emulator,
        emulator.client() as client,
    ):
        identities = [f"demo-user-{i:06d}" for i in range(args.identities)]
        print(
            f"Emulator at {emulator.base_url}; enrolling {len(identities)} identities "
            f"with concurrency {args.concurrency} ...",
            flush=True,
        )
        batch = client.access_tokens.create_many(
            emulator.service_sid, identities, concurrency=args.concurrency, ttl=300
        )
        created = [result.access_token async for result in batch if result.access_token is not None]
        sample = created[:: max(1, len(created) // 20)]
        fetched = await asyncio.gather(
            *(client.access_tokens.fetch(t.service_sid, t.sid) for t in sample)
        )
        matches = sum(f == t for f, t in zip(fetched, sample, strict=True))
    summary = batch.summary
    failed = summary.failed_total
    print(
        f"created:  {summary.succeeded}/{len(identities)} tokens in {summary.elapsed:.2f}s "
        f"({summary.rate:.0f} req/s, {summary.retried} retries)"
    )
    print(f"errors:   {failed}" + (f" {dict(summary.failed)}" if failed else ""))
    print(f"fetched:  {len(fetched)} back, {matches} identical to what create returned")
    counters = emulator.counters
    print(
        f"emulator: {counters.requests} requests, {counters.tokens_created} tokens created, "
        f"{counters.faults_injected} faults injected"
    )
    if created:
        print(f"example:  {created[0]!r}")
    if not counters.faults_injected:
        print("try:      demo --server-rate-limit 100 --drop-rate 0.02  (retries, lost answers)")
    return EXIT_OK if not failed else EXIT_API_ERROR


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the resource as JSON")
    parser.add_argument(
        "--show-token", action="store_true", help="print the enrollment JWT (a secret)"
    )
    parser.add_argument(
        "--base-url", help="API origin (default: https://verify.twilio.com, or TWILIO_REGION/EDGE)"
    )


def _add_fault_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server-rate-limit",
        type=float,
        help="requests/s the emulator allows; beyond it, it answers 429",
    )
    parser.add_argument(
        "--error-rate", "--fault-rate", type=float, default=0.0, help="fraction answered 503"
    )
    parser.add_argument("--drop-rate", type=float, default=0.0, help="fraction of dropped conns")
    parser.add_argument(
        "--lost-response-rate",
        type=float,
        default=0.0,
        help="fraction of creates that succeed but whose answer is lost",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--seed", type=int, help="seed for reproducible faults and sids")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verify-access-tokens",
        description="Twilio Verify V2 enrollment access tokens: client, emulator and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    options: dict[str, Any] = {"formatter_class": _HelpFormatter}

    demo = commands.add_parser(
        "demo",
        help="enroll identities against an in-process emulator (no credentials needed)",
        **options,
    )
    demo.add_argument("--identities", type=int, default=300, help="how many identities")
    demo.add_argument("--concurrency", type=int, default=32, help="requests in flight at once")
    _add_fault_flags(demo)
    demo.set_defaults(handler=_demo)

    emulator = commands.add_parser(
        "emulator", help="run a local Verify emulator until Ctrl-C", **options
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.add_argument("--port", type=int, default=8099, help="port to listen on")
    emulator.add_argument("--account-sid", help="the Account SID it accepts (default: generated)")
    emulator.add_argument("--auth-token", help="the Auth Token it accepts (default: generated)")
    _add_fault_flags(emulator)
    emulator.set_defaults(handler=_emulator)

    create = commands.add_parser(
        "create",
        help="create an enrollment access token (credentials from TWILIO_* env vars)",
        **options,
    )
    create.add_argument("service_sid", metavar="SERVICE_SID", help="the Verify Service (VA...)")
    create.add_argument("--identity", required=True, help="the entity's non-PII id (a UUID)")
    create.add_argument("--friendly-name", help="the device's name (up to 64 characters)")
    create.add_argument("--ttl", type=int, help="token lifetime in seconds, 60-300")
    create.add_argument("--factor-type", default="push", help="the factor to enroll")
    _add_output_flags(create)
    create.set_defaults(handler=_create)

    fetch = commands.add_parser("fetch", help="fetch an access token by sid", **options)
    fetch.add_argument("service_sid", metavar="SERVICE_SID", help="the Verify Service (VA...)")
    fetch.add_argument("sid", metavar="SID", help="the access token (YK...)")
    _add_output_flags(fetch)
    fetch.set_defaults(handler=_fetch)

    from ._enroll import add_enroll_command

    add_enroll_command(commands, **options)
    from ._serve import add_serve_command

    add_serve_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m verify_access_tokens``."""
    args = build_parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.handler(args))
        sys.stdout.flush()  # here, so that a closed pipe is reported below, not at exit
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, like cat does
        _silence_stdout()
        print("error: output closed before everything was written", file=sys.stderr)
        return EXIT_API_ERROR
    except RequestValidationError as exc:
        print(f"error: {_FLAGS.get(exc.field, exc.field)}: {exc.rule}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigurationError as exc:
        # The CLI takes credentials only from the environment: drop the Python alternative.
        rule = re.sub(r"pass \w+= or ", "", exc.rule)
        print(f"error: {_FLAGS.get(exc.setting, exc.setting)}: {rule}", file=sys.stderr)
        return EXIT_USAGE
    except APIStatusError as exc:
        print(f"error: Twilio code {exc.code} (HTTP {exc.status}): {exc.message}", file=sys.stderr)
        return EXIT_API_ERROR
    except VerifyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_API_ERROR
    return code


def _silence_stdout() -> None:
    """Point stdout at devnull, so that the interpreter's final flush of what is still buffered
    does not raise BrokenPipeError again (and print a traceback) on the way out."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
