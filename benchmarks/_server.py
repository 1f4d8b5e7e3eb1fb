"""Stand-in servers in a separate process (so their CPU is not the client's).

- ``emulator_process``: the package's emulator (``python -m verify_access_tokens emulator``),
  its base URL and credentials read from the ``export NAME=value`` lines it prints. Real
  validation and JWTs, but a single aiohttp.web process: about 2 000 req/s on this machine, so
  a fast client waits on it.
- ``fast_process``: a minimal asyncio Protocol (``python benchmarks/_server.py``) answering every
  request with one canned, valid 201 access-token JSON and its Content-Length, keep-alive. It
  parses only enough HTTP/1.1 to find where each request ends, so the client is the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    base_url: str
    account_sid: str
    auth_token: str
    service_sid: str
    kind: str = "emulator"


_SETTINGS = {
    "VERIFY_ACCESS_TOKENS_BASE_URL": "base_url",
    "TWILIO_ACCOUNT_SID": "account_sid",
    "TWILIO_AUTH_TOKEN": "auth_token",
    "VERIFY_SERVICE_SID": "service_sid",
}


@contextlib.contextmanager
def _process(command: list[str], kind: str) -> Iterator[Server]:
    """Run ``command``; read ``export NAME=value`` lines until every setting is known."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        assert process.stdout is not None
        fields: dict[str, str] = {}
        for line in process.stdout:
            words = shlex.split(line, comments=True)
            if len(words) == 2 and words[0] == "export":
                name, _, value = words[1].partition("=")
                if name in _SETTINGS:
                    fields[_SETTINGS[name]] = value
            if len(fields) == len(_SETTINGS):
                break
        else:
            raise RuntimeError(f"{command} exited before printing its settings: {fields}")
        yield Server(**fields, kind=kind)
    finally:
        process.terminate()
        process.wait(10)


def emulator_process(*extra_args: str) -> contextlib.AbstractContextManager[Server]:
    command = [sys.executable, "-m", "verify_access_tokens", "emulator", "--port", "0"]
    return _process([*command, *extra_args], "emulator")


def fast_process() -> contextlib.AbstractContextManager[Server]:
    return _process([sys.executable, str(Path(__file__).resolve())], "fast")


# -- the fast stand-in -------------------------------------------------------------------------
_ACCOUNT_SID = "AC" + "0" * 32
_SERVICE_SID = "VA" + "1" * 32
_TOKEN_SID = "YK" + "2" * 32


def _canned_response(port: int) -> bytes:
    body = json.dumps(
        {
            "sid": _TOKEN_SID,
            "account_sid": _ACCOUNT_SID,
            "service_sid": _SERVICE_SID,
            "entity_identity": "bench-user-00000000",
            "factor_type": "push",
            "factor_friendly_name": None,
            "token": "eyJhbGciOiJIUzI1NiJ9." + "e" * 300 + "." + "s" * 43,
            "url": f"http://127.0.0.1:{port}/v2/Services/{_SERVICE_SID}/AccessTokens/{_TOKEN_SID}",
            "ttl": 300,
            "date_created": "2026-01-01T00:00:00Z",
        },
        separators=(",", ":"),
    ).encode()
    head = (
        "HTTP/1.1 201 Created\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Twilio-Request-Id: RQ" + "3" * 32 + "\r\n"
        "\r\n"
    )
    return head.encode() + body


class _Canned(asyncio.Protocol):
    """Answer each complete request (head plus Content-Length bytes of body) with ``answer``."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        answers = 0
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = buffer[:end].lower()
            start = head.find(b"\r\ncontent-length:")
            length = 0
            if start >= 0:
                stop = head.find(b"\r\n", start + 2)
                length = int(head[start + 17 : None if stop < 0 else stop])
            if len(buffer) < end + 4 + length:
                break
            buffer = buffer[end + 4 + length :]
            answers += 1
        self.buffer = buffer
        if answers and self.transport is not None:
            self.transport.write(self.answer * answers)


async def _serve_fast() -> None:
    loop = asyncio.get_running_loop()
    answer: list[bytes] = []
    server = await loop.create_server(lambda: _Canned(answer[0]), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    answer.append(_canned_response(port))
    settings = {
        "TWILIO_ACCOUNT_SID": _ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "f" * 32,
        "VERIFY_SERVICE_SID": _SERVICE_SID,
        "VERIFY_ACCESS_TOKENS_BASE_URL": f"http://127.0.0.1:{port}",
    }
    for name, value in settings.items():
        print(f"export {name}={shlex.quote(value)}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_fast())
