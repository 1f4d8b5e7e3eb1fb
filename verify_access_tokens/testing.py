"""pytest plugin (registered through the ``pytest11`` entry point): test your app offline.

Fixtures, both function-scoped and async (they need pytest-asyncio):

- ``verify_emulator``: a running :class:`VerifyEmulator` on 127.0.0.1. Configure it per test
  with ``@pytest.mark.verify_emulator(faults=Faults(error_rate=0.1), seed=1)``; the marker's
  keyword arguments go to :class:`VerifyEmulator`.
- ``verify_client``: a :class:`VerifyClient` pointed at that emulator, closed after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by the fixtures, so that loading the plugin stays cheap
    from .client import VerifyClient
    from .emulator import VerifyEmulator

__all__ = ["verify_client", "verify_emulator"]

_MARKER = "verify_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): keyword arguments for the verify_emulator fixture's "
        "VerifyEmulator (faults=Faults(...), seed=..., service_sids=[...])",
    )


try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - pytest then reports that async fixtures need a plugin
    _async_fixture = pytest.fixture  # type: ignore[assignment]


@_async_fixture
async def verify_emulator(request: pytest.FixtureRequest) -> AsyncIterator[VerifyEmulator]:
    """A running emulator; configure it with ``@pytest.mark.verify_emulator(...)``."""
    from .emulator import VerifyEmulator

    marker = request.node.get_closest_marker(_MARKER)
    options = dict(marker.kwargs) if marker is not None else {}
    async with VerifyEmulator(**options) as emulator:
        yield emulator


@_async_fixture
async def verify_client(verify_emulator: VerifyEmulator) -> AsyncIterator[VerifyClient]:
    """A client pointed at ``verify_emulator``, closed after the test."""
    async with verify_emulator.client() as client:
        yield client
