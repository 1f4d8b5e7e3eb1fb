"""pytest plugin (registered through the ``pytest11`` entry point): test your app offline.

Install what it needs with the package's ``testing`` extra (pytest and pytest-asyncio; from a
checkout: ``pip install ".[testing]"``). Fixtures, both function-scoped and async:

- ``verify_emulator``: a running `VerifyEmulator` on 127.0.0.1. Configure it per test
  with ``@pytest.mark.verify_emulator(faults=Faults(error_rate=0.1), seed=1)``; the marker's
  keyword arguments go to `VerifyEmulator`.
- ``verify_client``: a `VerifyClient` pointed at that emulator, closed after the test.

They run in the test's own event loop: mark the test ``@pytest.mark.asyncio`` (pytest-asyncio,
any mode) or ``@pytest.mark.anyio`` (anyio's plugin, asyncio backend; not with pytest-asyncio's
auto mode, which claims every async fixture). A test that uses them with neither plugin fails
with one message saying what to install.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:  # imported by the fixtures, so that loading the plugin stays cheap
    from . import VerifyClient
    from .emulator import VerifyEmulator

__all__ = ["verify_client", "verify_emulator"]

_MARKER = "verify_emulator"
_NO_RUNNER = (
    "the verify_emulator and verify_client fixtures are async and need pytest-asyncio "
    "(install verify-access-tokens' testing extra and mark the test @pytest.mark.asyncio) "
    "or anyio's pytest plugin (mark the test @pytest.mark.anyio)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): keyword arguments for the verify_emulator fixture's "
        "VerifyEmulator (faults=Faults(...), seed=..., service_sids=[...])",
    )


def _define() -> dict[str, Callable[..., AsyncIterator[Any]]]:
    """The fixture functions; each call makes new function objects with the same code."""

    async def verify_emulator(request: pytest.FixtureRequest) -> AsyncIterator[VerifyEmulator]:
        """A running emulator; configure it with ``@pytest.mark.verify_emulator(...)``.

        Args:
            request: pytest's request; the marker's keyword arguments go to `VerifyEmulator`.

        Yields:
            The running `VerifyEmulator`, stopped after the test.
        """
        from .emulator import VerifyEmulator

        marker = request.node.get_closest_marker(_MARKER)
        options = dict(marker.kwargs) if marker is not None else {}
        async with VerifyEmulator(**options) as emulator:
            yield emulator

    async def verify_client(verify_emulator: VerifyEmulator) -> AsyncIterator[VerifyClient]:
        """A client pointed at ``verify_emulator``, closed after the test.

        Args:
            verify_emulator: The test's emulator fixture.

        Yields:
            A `VerifyClient` with the emulator's credentials.
        """
        async with verify_emulator.client() as client:
            yield client

    return {"verify_emulator": verify_emulator, "verify_client": verify_client}


try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - run in tests/test_plugin.py's subprocess
    # then a test using the fixtures fails with _NO_RUNNER (see the hook below)
    _async_fixture = pytest.fixture  # type: ignore[assignment]

# Registered for pytest-asyncio, which claims them in strict mode too; its public decorator
# marks the functions themselves, which its hooks look at. anyio's plugin gets unmarked twins.
_REGISTERED = _define()
verify_emulator = _async_fixture(_REGISTERED["verify_emulator"])
verify_client = _async_fixture(_REGISTERED["verify_client"])
_FOR_ANYIO = _define()


def _fail_without_runner(**_: object) -> NoReturn:
    pytest.fail(_NO_RUNNER, pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: Any) -> Generator[None]:
    """Choose who runs our async fixtures before the async plugins' own hooks look at them.

    An ``anyio`` test gets the unmarked twins (anyio's hook takes them; pytest-asyncio's strict
    mode leaves them alone), whatever order the two plugins' hooks run in. With neither plugin, a
    plain function fails in pytest's own setup, so the failure is cached and torn down like any
    fixture error and every test using the fixtures gets the same message (pytest's own check
    for an unclaimed async fixture leaves state behind that breaks the next test).
    """
    name = fixturedef.argname
    if name not in _REGISTERED or fixturedef.func is not _REGISTERED[name]:
        return (yield)
    if "anyio_backend" in request.fixturenames:
        replacement: Callable[..., Any] = _FOR_ANYIO[name]
    elif request.config.pluginmanager.has_plugin("asyncio"):
        return (yield)
    else:
        replacement = _fail_without_runner
    with pytest.MonkeyPatch.context() as patch:  # as pytest-asyncio and anyio swap it too
        patch.setattr(fixturedef, "func", replacement)
        return (yield)
