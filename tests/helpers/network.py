"""Ports of 127.0.0.1 for tests that run servers or need a port nobody listens on."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
