"""The committed test CA passes strict certificate verification (Python 3.13's default)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from helpers.paths import TLS


def _strict_client_context(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    # What Python >= 3.13 sets by default; set here so every supported Python checks it.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


async def _handshake(folder: Path) -> None:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(folder / "server.pem", folder / "server-key.pem")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=_strict_client_context(folder / "ca.pem")
        )
        assert await reader.read() == b"ok"
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.sockets
async def test_the_test_ca_passes_strict_verification() -> None:
    """tests/data/tls/generate.sh gives the CA the keyUsage a strict verifier asks for (the CA
    committed before had none: "CA cert does not include key usage extension")."""
    await _handshake(TLS)
