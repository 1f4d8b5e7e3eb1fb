"""Start the emulator in a separate process (so its CPU is not the client's) and read its
base URL and credentials from what it prints."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Server:
    base_url: str
    account_sid: str
    auth_token: str
    service_sid: str


@contextlib.contextmanager
def emulator_process(*extra_args: str) -> Iterator[Server]:
    command = [sys.executable, "-m", "verify_access_tokens", "emulator", "--port", "0"]
    process = subprocess.Popen(
        [*command, *extra_args], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert process.stdout is not None
        fields: dict[str, str] = {}
        names = {
            "VERIFY_ACCESS_TOKENS_BASE_URL": "base_url",
            "TWILIO_ACCOUNT_SID": "account_sid",
            "TWILIO_AUTH_TOKEN": "auth_token",
            "VERIFY_SERVICE_SID": "service_sid",
        }
        for line in process.stdout:  # the `emulator` command's `export NAME=value` lines
            text = line.strip()
            if text.startswith("export "):
                name, _, value = text.removeprefix("export ").partition("=")
                if name in names:
                    fields[names[name]] = shlex.split(value)[0]
            elif text.startswith("verify-access-tokens "):
                break
        yield Server(**fields)
    finally:
        process.terminate()
        process.wait(10)
