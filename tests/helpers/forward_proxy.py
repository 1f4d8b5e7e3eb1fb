"""A small HTTP forward proxy for tests: CONNECT tunnels and absolute-URI requests on 127.0.0.1.

It records what passed through (request lines, ``Proxy-Authorization`` values) so that a test
can prove a request really went through it, and can demand credentials (407 otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import TracebackType
from typing import Self

import attrs
import yarl


@attrs.define
class ProxyCounters:
    connects: int = 0  # CONNECT tunnels opened
    forwarded: int = 0  # absolute-URI requests forwarded
    refused: int = 0  # 407 answers


class ForwardProxy:
    def __init__(self, *, credentials: str | None = None, echo: bool = False) -> None:
        """``credentials``: the ``Proxy-Authorization`` value to demand (None: open proxy).
        ``echo``: a hostile proxy, whose 407 quotes the ``Proxy-Authorization`` it got back in
        its reason phrase and in a Twilio-shaped JSON body."""
        self.credentials = credentials
        self.echo = echo
        self.counters = ProxyCounters()
        self.request_lines: list[str] = []
        self.proxy_authorizations: list[str | None] = []
        self.forwarded_headers: list[dict[str, str]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            while head := await _read_head(reader):
                line, headers = head
                method, target, version = line.split(" ")
                self.request_lines.append(line)
                self.proxy_authorizations.append(headers.get("proxy-authorization"))
                if self.credentials is not None and (
                    headers.get("proxy-authorization") != self.credentials
                ):
                    self.counters.refused += 1
                    quoted = headers.get("proxy-authorization", "") if self.echo else ""
                    body = json.dumps({"code": 407, "message": f"bad {quoted}"}).encode()
                    writer.write(
                        f"HTTP/1.1 407 Proxy Authentication Required {quoted}\r\n"
                        'Proxy-Authenticate: Basic realm="test"\r\n'
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                        "\r\n".encode("latin-1")
                        + body
                    )
                    await writer.drain()
                    continue
                if method == "CONNECT":
                    host, _, port = target.rpartition(":")
                    up_reader, upstream = await asyncio.open_connection(host, int(port))
                    self.counters.connects += 1
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await writer.drain()
                    await _pipe_both(reader, writer, up_reader, upstream)
                    return
                url = yarl.URL(target)
                assert url.is_absolute(), f"not absolute-URI form: {target}"
                if upstream is None:
                    assert url.host is not None
                    up_reader, upstream = await asyncio.open_connection(url.host, url.port)
                self.counters.forwarded += 1
                kept = {k: v for k, v in headers.items() if not k.startswith("proxy-")}
                self.forwarded_headers.append(kept)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                out = [f"{method} {url.raw_path_qs} {version}"]
                out += [f"{k}: {v}" for k, v in kept.items()]
                upstream.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
                await upstream.drain()
                answer = await _read_head(up_reader)
                assert answer is not None
                status_line, answer_headers = answer
                length = int(answer_headers.get("content-length", "0"))
                answer_body = await up_reader.readexactly(length)
                lines = [status_line, *(f"{k}: {v}" for k, v in answer_headers.items())]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer_body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a client or the test hung up, or the proxy is closing
        finally:
            self._tasks.discard(task)
            for w in (writer, upstream):
                if w is not None:
                    w.close()


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    """The start line and lower-cased headers of one message, or None at a clean EOF."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    line, *rest = raw.decode("latin-1").split("\r\n")
    headers = {}
    for field in filter(None, rest):
        name, _, value = field.partition(":")
        headers[name.strip().lower()] = value.strip()
    return line, headers


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    upstream: asyncio.StreamWriter,
) -> None:
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    await asyncio.gather(pipe(reader, upstream), pipe(up_reader, writer))
