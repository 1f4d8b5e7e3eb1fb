"""Start the emulator in a separate process (so its CPU is not the client's) and read its
base URL and credentials from what it prints."""

from __future__ import annotations

import contextlib
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
        for line in process.stdout:
            text = line.strip()
            if text.startswith("Verify emulator listening on "):
                fields["base_url"] = text.rsplit(" ", 1)[1]
            elif text.startswith("TWILIO_ACCOUNT_SID="):
                fields["account_sid"] = text.split("=", 1)[1]
            elif text.startswith("TWILIO_AUTH_TOKEN="):
                fields["auth_token"] = text.split("=", 1)[1]
            elif text.startswith("service sid: "):
                fields["service_sid"] = text.split(": ", 1)[1]
            elif text.startswith("Press Ctrl-C"):
                break
        yield Server(**fields)
    finally:
        process.terminate()
        process.wait(10)
