"""``serve`` run as an operator runs it (a subprocess on a free port of 127.0.0.1), or in this
process where a test must see inside uvicorn, and the app it builds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import httpx
import pytest
import uvicorn

from helpers.network import free_port
from verify_access_tokens import VerifyClient, cli
from verify_access_tokens.cli.serve._app import build_app
from verify_access_tokens.cli.serve._command import serve_command


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without its ``TWILIO_*``/``VERIFY_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "VERIFY_"))}
    return env | extra


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
    process = subprocess.Popen(
        [sys.executable, "-m", "verify_access_tokens", "serve", "--port", str(port), *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(**(env or {})),
        cwd=cwd,
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


class RecordedServer(uvicorn.Server):
    """uvicorn's server, remembered so that a test can see its connections and stop it as
    Ctrl-C would; ``port`` and ``url`` say where it listens."""

    instances: ClassVar[list[RecordedServer]] = []
    port: int = 0
    url: str = ""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        RecordedServer.instances.append(self)


@contextlib.asynccontextmanager
async def serving_in_process(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, host: str = "127.0.0.1"
) -> AsyncIterator[RecordedServer]:
    """``serve ARGV`` in this process on a free port of ``host``, once it has started; stopped
    after the block, and its exit status checked."""
    RecordedServer.instances = []
    monkeypatch.setattr(uvicorn, "Server", RecordedServer)
    port = free_port()
    args = cli.build_parser().parse_args(["serve", "--host", host, "--port", str(port), *argv])
    task = asyncio.create_task(serve_command(args))
    while not (RecordedServer.instances and RecordedServer.instances[0].started):
        assert not task.done(), task.exception()
        await asyncio.sleep(0.01)
    server = RecordedServer.instances[0]
    server.port = port
    server.url = f"http://{'[::1]' if host == '::1' else host}:{port}"
    yield server
    server.should_exit = True
    assert await task == 0


def serve_app(client: VerifyClient, service_sid: str, **options: Any) -> Any:
    """The app ``serve`` runs, with its defaults (identities hashed, no bearer token, no ttl)
    unless ``options`` say otherwise."""
    settings: dict[str, Any] = {
        "path": "/access-token",
        "bearer_token": None,
        "hash_identities": True,
        "identity_hash_key": None,
        "ttl": None,
    }
    return build_app(client=client, service_sid=service_sid, **(settings | options))
