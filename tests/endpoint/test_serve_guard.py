"""The serve-side fence: every uvicorn (and h11) attribute `_uvicorn_guard` relies on exists.

A uvicorn release that renames one fails here, by name, rather than as a slow-client bound
that silently stops working."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import pytest
from uvicorn.server import ServerState

from verify_access_tokens.cli.serve._uvicorn_guard import (
    UVICORN_ATTRIBUTES,
    GuardedConfig,
    GuardedH11Protocol,
    _Draining,
    counters_of,
)

INSTANCE_ATTRIBUTES = {"connections", "conn", "transport", "app"}
CONFIG_INSTANCE_ATTRIBUTES = {"loaded_app"}


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
    if owner is GuardedConfig.__base__ and name in CONFIG_INSTANCE_ATTRIBUTES:
        config = GuardedConfig(app, header_timeout=1, body_timeout=1, max_connections=1)
        config.load()
        assert hasattr(config, name)
    elif name in INSTANCE_ATTRIBUTES:
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


async def test_a_connection_made_after_the_shutdown_began_is_closed_unanswered() -> None:
    """Accepted in the loop turn the listening socket closed, uvicorn never tells it to close:
    unguarded, it would be served until the shutdown's time limit."""
    first = protocol()
    late = GuardedH11Protocol(config=first._limits, server_state=ServerState(), app_state={})
    first.connection_made(FakeTransport())
    first.shutdown()  # what uvicorn calls on each open connection when it stops
    transport = FakeTransport()
    late.connection_made(transport)
    assert transport.closed
    assert late._registry.waiting.keys() == set()  # and no time limit left running for it


def _draining_app(stopping: bool) -> tuple[Any, list[dict[str, Any]]]:
    """`_Draining` around an app that starts its answer, then waits forever."""
    config = GuardedConfig(app, header_timeout=1, body_timeout=1, max_connections=1)
    config.stopping = stopping
    sent: list[dict[str, Any]] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.Event().wait()

    async def record(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await _Draining(streaming, config)({"type": "http"}, None, record)

    return run, sent


async def test_while_stopping_every_answer_says_connection_close() -> None:
    run, sent = _draining_app(stopping=True)
    task = asyncio.create_task(run())
    await asyncio.sleep(0)
    task.cancel()
    await task
    assert (b"connection", b"close") in sent[0]["headers"]


async def test_a_cut_after_the_answer_began_sends_nothing_more_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run, sent = _draining_app(stopping=False)
    task = asyncio.create_task(run())
    await asyncio.sleep(0)
    task.cancel()
    await task  # the cancellation ends there: uvicorn logs no traceback
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert sent[0]["headers"] == []
    assert "cut by the shutdown after its answer began" in caplog.text
    assert "answered 503" not in caplog.text
