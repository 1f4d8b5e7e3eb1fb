"""``serve`` run as an operator runs it: a subprocess on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@attrs.define
class Served:
    """A running ``serve``: its URL while it runs; its output once it has stopped."""

    url: str
    process: subprocess.Popen[str]
    out: str = ""
    err: str = ""


@contextlib.contextmanager
def served(
    *argv: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    verify: ssl.SSLContext | bool = True,
    stop: signal.Signals | None = signal.SIGINT,
) -> Iterator[Served]:
    """``python -m verify_access_tokens serve ARGV`` once it answers, stopped by ``stop`` after
    the block (``None``: the block stops it). ``TWILIO_*``/``VERIFY_*`` come from ``env`` only."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "VERIFY_"))}
    environment |= env or {}
    process = subprocess.Popen(
        [sys.executable, "-m", "verify_access_tokens", "serve", "--port", str(port), *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, cwd=cwd,
    )  # fmt: skip
    scheme = "https" if "--ssl-certfile" in argv else "http"
    running = Served(f"{scheme}://127.0.0.1:{port}", process)
    try:
        with httpx.Client(base_url=running.url, verify=verify) as http:
            while True:  # poll for readiness: the endpoint answers 405 to a GET
                assert process.poll() is None, process.communicate()
                with contextlib.suppress(httpx.TransportError):
                    if http.get("/access-token").status_code == 405:
                        break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.05)
        yield running
    finally:
        if stop is not None and process.poll() is None:
            process.send_signal(stop)
        running.out, running.err = process.communicate(timeout=60)
