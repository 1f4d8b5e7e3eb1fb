"""``enroll`` and the other commands run as an ops user runs them: subprocesses against an
emulator served on its own loop in a thread, and what their results files hold."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from verify_access_tokens.emulator import VerifyEmulator


def cli_env(emulator: VerifyEmulator | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    if emulator is not None:
        env.update(TWILIO_ACCOUNT_SID=emulator.account_sid, TWILIO_AUTH_TOKEN=emulator.auth_token)
    env.update(extra)
    return env


def cli(
    *argv: str, emulator: VerifyEmulator | None = None, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "verify_access_tokens", *argv],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env=cli_env(emulator, **env),
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return done


def enroll_argv(emulator: VerifyEmulator, source: Path | str, out: Path | str) -> list[str]:
    return ["enroll", emulator.service_sid, str(source), "--out", str(out),
            "--base-url", emulator.base_url]  # fmt: skip


def lines(path: Path) -> list[dict[str, Any]]:
    """The identities' records (not the runs' headers)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if "identity" in r]


def outcomes(path: Path) -> list[dict[str, Any]]:
    return [r for r in lines(path) if r["status"] != "sending"]


def tokens_of(emulator: VerifyEmulator) -> list[str]:
    return sorted(t.entity_identity for t in emulator.tokens.values())


def headers(path: Path) -> list[dict[str, object]]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("record") == "header"]


def write_ids(path: Path, identities: list[str]) -> Path:
    path.write_text("\n".join(identities) + "\n")
    return path


def one_line_error(done: subprocess.CompletedProcess[str], code: int, start: str) -> None:
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith(start), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def created_line(identity: str, expires_at: dt.datetime) -> str:
    return json.dumps(
        {
            "identity": identity,
            "status": "created",
            "sid": "YK" + "0" * 32,
            "token": "x",
            "ttl": 300,
            "date_created": (expires_at - dt.timedelta(seconds=300)).isoformat(),
            "expires_at": expires_at.isoformat(),
        }
    )
