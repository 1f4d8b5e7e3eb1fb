"""Checks before a command listens: a port in range, a host that resolves, a port that is free.

Each failure is one line naming the flag (exit 2) rather than a traceback from the server.
"""

from __future__ import annotations

import socket

from .. import ConfigurationError

PORT_MAX = 65535


def check_port(port: int) -> None:
    """Raise `ConfigurationError` naming ``--port`` unless ``port`` is 0-65535."""
    if not 0 <= port <= PORT_MAX:
        raise ConfigurationError("--port", f"must be 0-{PORT_MAX} (0: any free port), got {port}")


def check_listen(host: str, port: int) -> None:
    """Raise `ConfigurationError` unless ``host:port`` can be listened on now.

    The probe socket binds with ``SO_REUSEADDR``, as the servers do, and is closed at once.
    """
    check_port(port)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigurationError("--host", f"cannot listen on {host}: {reason}") from None
    family, kind, proto, _, address = found[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ConfigurationError(
            "--port", f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
