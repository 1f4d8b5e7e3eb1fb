"""The serve-side fence: every uvicorn (and h11) attribute `_uvicorn_guard` relies on exists.

A uvicorn release that renames one fails here, by name, rather than as a slow-client bound
that silently stops working."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import pytest
from uvicorn.server import ServerState

from verify_access_tokens.cli._uvicorn_guard import (
    UVICORN_ATTRIBUTES,
    GuardedConfig,
    GuardedH11Protocol,
    counters_of,
)

INSTANCE_ATTRIBUTES = {"connections", "conn", "transport", "app"}


async def app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def protocol(max_connections: int = 10) -> GuardedH11Protocol:
    config = GuardedConfig(
        app, header_timeout=1, body_timeout=1, max_connections=max_connections, lifespan="off"
    )
    config.load()
    return GuardedH11Protocol(config=config, server_state=ServerState(), app_state={})


@pytest.mark.parametrize(("owner", "name"), UVICORN_ATTRIBUTES)
async def test_each_uvicorn_attribute_used_exists(owner: type, name: str) -> None:
    if name in INSTANCE_ATTRIBUTES:
        instance = protocol()
        instance.connection_made(FakeTransport())
        assert hasattr(instance, name)
        instance.connection_lost(None)
    else:
        assert callable(getattr(owner, name))


async def test_h11_states_used_exist() -> None:
    instance = protocol()
    instance.connection_made(FakeTransport())
    assert instance.conn.their_state is h11.IDLE
    instance.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
    assert instance.conn.their_state is h11.SEND_BODY
    instance.connection_lost(None)


async def test_a_connection_is_closed_past_its_header_time_on_a_fake_clock() -> None:
    """The guard's timer, fired by hand: the connection's transport is closed and counted."""
    instance = protocol()
    transport = FakeTransport()
    instance.connection_made(transport)
    instance.data_received(b"POST / HTT")
    assert instance._timer is not None
    instance._timer._run()  # what the loop does when the limit passes
    assert transport.closed
    assert counters_of(instance.server_state).header_timeouts == 1
    instance.connection_lost(None)
