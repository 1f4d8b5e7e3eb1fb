"""What the CLI prints: a token (its JWT masked unless asked), and the emulator's settings."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any, TextIO

from .. import AccessToken
from ..emulator import VerifyEmulator

MASK = "<masked: use --show-token>"


def token_fields(token: AccessToken, *, show_token: bool) -> dict[str, Any]:
    fields = token.to_dict()
    if not show_token:
        fields["token"] = MASK
    return fields


def print_token(token: AccessToken, args: argparse.Namespace, out: TextIO) -> None:
    fields = token_fields(token, show_token=args.show_token)
    if args.json:
        print(json.dumps(fields, indent=2), file=out)
        return
    width = max(map(len, fields))
    for key, value in fields.items():
        print(f"{key:<{width}}  {'' if value is None else value}", file=out)


def emulator_printout(emulator: VerifyEmulator) -> str:
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
