"""The ``verify-access-tokens`` command line: its parser, and ``main`` mapping errors to exits.

Uses only the public API. Expected failures print one line and exit 2 (bad input or settings)
or 1 (the API said no, or the network failed); never a traceback. The JWT ``token`` is masked
unless ``--show-token`` asks for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from .. import APIStatusError, ConfigurationError, RequestValidationError, VerifyError, __version__
from ._commands import (
    CONCURRENCY_HELP,
    EXIT_API_ERROR,
    EXIT_USAGE,
    add_fault_flags,
    concurrency,
    create_command,
    demo_command,
    emulator_command,
    fetch_command,
)
from ._output import MASK

__all__ = ["MASK", "build_parser", "main"]

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


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the resource as JSON")
    parser.add_argument(
        "--show-token", action="store_true", help="print the enrollment JWT (a secret)"
    )
    parser.add_argument(
        "--base-url", help="API origin (default: https://verify.twilio.com, or TWILIO_REGION/EDGE)"
    )


# --- SERVICE_SID from the environment, enroll and report ----------------------------------------
def _add_service_sid(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "service_sid",
        metavar="SERVICE_SID",
        nargs="?",
        help="the Verify Service (VA...); default: $VERIFY_SERVICE_SID",
    )


def _add_journal_commands(commands: Any, options: dict[str, Any]) -> None:
    from ._report import add_report_command
    from .enroll._options import add_enroll_command

    add_enroll_command(commands, **options)
    add_report_command(commands, **options)


def _cli_rule(rule: str) -> str:
    """A rule in the CLI's words: Python's ``None`` is no value a flag can take."""
    return re.sub(r"\bNone(?:, | or )", "", rule)


# ------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command line's parser, every command included (``main`` runs what it parses).

    Returns:
        An ``argparse.ArgumentParser`` whose parsed namespace has the command's ``handler``.
    """
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
    demo.add_argument("--concurrency", type=concurrency, default="adaptive", help=CONCURRENCY_HELP)
    add_fault_flags(demo)
    demo.set_defaults(handler=demo_command)

    emulator = commands.add_parser(
        "emulator", help="run a local Verify emulator until Ctrl-C", **options
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.add_argument("--port", type=int, default=8099, help="port to listen on (0-65535)")
    emulator.add_argument("--account-sid", help="the Account SID it accepts (default: generated)")
    emulator.add_argument("--auth-token", help="the Auth Token it accepts (default: generated)")
    emulator.add_argument("--service-sid",
                          help="the Verify Service that exists (default: generated)")  # fmt: skip
    add_fault_flags(emulator)
    emulator.set_defaults(handler=emulator_command)

    create = commands.add_parser(
        "create",
        help="create an enrollment access token (credentials from TWILIO_* env vars)",
        **options,
    )
    _add_service_sid(create)
    create.add_argument("--identity", required=True, help="the entity's non-PII id (a UUID)")
    create.add_argument("--friendly-name", help="the device's name (up to 64 characters)")
    create.add_argument("--ttl", type=int, help="token lifetime in seconds, 60-300")
    create.add_argument("--factor-type", default="push", help="the factor to enroll")
    _add_output_flags(create)
    create.set_defaults(handler=create_command)

    fetch = commands.add_parser("fetch", help="fetch an access token by sid", **options)
    _add_service_sid(fetch)
    fetch.add_argument("sid", metavar="SID", help="the access token (YK...)")
    _add_output_flags(fetch)
    fetch.set_defaults(handler=fetch_command)

    _add_journal_commands(commands, options)
    from .serve._command import add_serve_command

    add_serve_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m verify_access_tokens``.

    Errors are printed as one line on stderr, never a traceback.

    Args:
        argv: The arguments, without the program name (default ``None``: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 for bad input or settings, 1 for an API or network
        error (or output closed early), 130 when interrupted.

    Raises:
        SystemExit: From argparse, for ``--help`` (status 0) or unusable arguments (status 2).
    """
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
        print(f"error: {_FLAGS.get(exc.field, exc.field)}: {_cli_rule(exc.rule)}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigurationError as exc:
        # The CLI takes credentials only from the environment: drop the Python alternative.
        rule = _cli_rule(re.sub(r"pass \w+= or ", "", exc.rule))
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
    """Point stdout at devnull.

    So the interpreter's final flush of what is still buffered does not raise BrokenPipeError
    again (and print a traceback) on the way out.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
