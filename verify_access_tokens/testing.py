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
with one message saying what to install. A marker keyword `VerifyEmulator` does not take fails
the test with one line naming it and the valid ones.

For tests that mock instead: `aioresponses` (the ``aioresponses`` mock, working with the
aiohttp this package supports), `access_token_body` (a valid answer to mock at the HTTP layer),
`twilio_error_body` (Twilio's error answer, for a 429, 401 or 404) and `access_token` (the
`AccessToken` that ``create`` returns, to mock at your own seam). Every public error builds in
one call for a test that raises it itself: ``RateLimitError(retry_after=2.0)``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import http
import inspect
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:  # imported by the fixtures, so that loading the plugin stays cheap
    import aioresponses as _aioresponses

    from . import AccessToken, VerifyClient
    from .emulator import VerifyEmulator

__all__ = [
    "access_token",
    "access_token_body",
    "aioresponses",
    "twilio_error_body",
    "verify_client",
    "verify_emulator",
]

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
        options = _marker_options(marker, VerifyEmulator) if marker is not None else {}
        try:
            emulator = VerifyEmulator(**options)
            await emulator.start()
        except (OSError, ValueError, TypeError) as exc:  # a taken port, a malformed sid ...
            pytest.fail(f"@pytest.mark.{_MARKER}: {exc}", pytrace=False)
        try:
            yield emulator
        finally:
            await emulator.stop()

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


def _marker_options(marker: pytest.Mark, emulator: type[VerifyEmulator]) -> dict[str, Any]:
    """The marker's keywords, or a one-line test failure naming a bad one and the valid ones."""
    valid = list(inspect.signature(emulator).parameters)
    unknown = [name for name in marker.kwargs if name not in valid]
    if marker.args or unknown:
        bad = f"unknown keyword {unknown[0]!r}" if unknown else "positional arguments"
        pytest.fail(
            f"@pytest.mark.{_MARKER}: {bad}; it takes the keywords {', '.join(valid)}",
            pytrace=False,
        )
    return dict(marker.kwargs)


try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - run in tests/emulator/test_plugin.py's subprocess
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


# --- mocking at the HTTP layer ---------------------------------------------------------------


def aioresponses(**options: Any) -> _aioresponses.aioresponses:
    """An ``aioresponses.aioresponses`` mock that works with the aiohttp this package supports.

    aioresponses 0.7.x fails every mocked call under aiohttp 3.14 (``ClientResponse.__init__()
    missing ... 'stream_writer'``); this one supplies the argument while it is active, and is
    otherwise the same object: use it as a context manager or decorator, and ``.post(url,
    payload=..., status=...)`` as documented by aioresponses (``pip install aioresponses``).
    A ``response_class=`` of your own is used as given.

    Args:
        **options: aioresponses' own keyword arguments (``passthrough=[...]``, ``param=...``).

    Returns:
        The mock, not started yet.
    """
    from ._http._compat import compatible_aioresponses

    return compatible_aioresponses()(**options)  # type: ignore[no-any-return]


_FIELDS = (
    "sid",
    "account_sid",
    "service_sid",
    "entity_identity",
    "factor_type",
    "factor_friendly_name",
    "token",
    "url",
    "ttl",
    "date_created",
)


def _fake_jwt() -> str:
    """A JWT-shaped string (header, claims, signature) that no one would accept."""
    parts = (b'{"alg":"HS256","typ":"JWT"}', b'{"mocked":true}', b"not-a-signature")
    return ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in parts)


def access_token_body(**overrides: Any) -> dict[str, Any]:
    """A valid answer to ``create`` or ``fetch``, as the JSON-ready dict Twilio would send.

    The defaults are a push token for ``ff483d1ff591898a9942916050d2ca3f``, created now
    (``date_created``, to the second) with a ttl of 300 s; ``url`` follows ``service_sid`` and
    ``sid`` unless given. The ``token`` is JWT-shaped but fake.

    Args:
        **overrides: Fields to replace, by Twilio's names: ``sid``, ``account_sid``,
            ``service_sid``, ``entity_identity``, ``factor_type``, ``factor_friendly_name``,
            ``token``, ``url``, ``ttl``, ``date_created``. Any value is kept as given, so an
            invalid one makes an invalid body on purpose.

    Returns:
        A new dict, to pass as a mocked response's JSON payload.

    Raises:
        TypeError: A keyword that is not a field, named with the valid ones.
    """
    unknown = [name for name in overrides if name not in _FIELDS]
    if unknown:
        raise TypeError(
            f"access_token_body() got an unknown field {unknown[0]!r}; fields: {', '.join(_FIELDS)}"
        )
    body: dict[str, Any] = {
        "sid": "YK" + "0" * 32,
        "account_sid": "AC" + "0" * 32,
        "service_sid": "VA" + "0" * 32,
        "entity_identity": "ff483d1ff591898a9942916050d2ca3f",
        "factor_type": "push",
        "factor_friendly_name": None,
        "token": _fake_jwt(),
        "url": None,
        "ttl": 300,
        "date_created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    body.update(overrides)
    if "url" not in overrides:
        body["url"] = _token_url(body)
    return body


def twilio_error_body(
    status: int, code: int | None = None, message: str | None = None
) -> dict[str, Any]:
    """Twilio's answer for an error: ``code``, ``message``, ``more_info`` and ``status``.

    Mock it with the status it names, and the client raises the matching error: 429 is a
    `RateLimitError` (add a ``Retry-After`` header to the mocked answer for ``retry_after``),
    401 an `AuthenticationError`, 404 a `NotFoundError`.

    Args:
        status: The HTTP status, such as 429.
        code: Twilio's error code (default: Twilio's for the status: 20429, 20003, 20404 ...,
            else ``None``).
        message: Twilio's message (default: the status's reason phrase).

    Returns:
        A new dict, to pass as a mocked response's JSON payload.
    """
    code = _CODES.get(status) if code is None else code
    return {
        "code": code,
        "message": message if message is not None else http.HTTPStatus(status).phrase,
        "more_info": None if code is None else f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


_CODES = {400: 60200, 401: 20003, 403: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


def access_token(**overrides: Any) -> AccessToken:
    """The `AccessToken` that ``create`` or ``fetch`` returns for `access_token_body`.

    For tests that mock at their own seam (``unittest.mock`` on ``AccessTokens.create``, or
    on your own function) rather than at the HTTP layer.

    Args:
        **overrides: Fields to replace, as for `access_token_body`; ``date_created`` may also
            be an aware ``datetime``, ``factor_type`` a `FactorType`. Values are not checked.

    Returns:
        The `AccessToken`, equal to the one the client parses from the same body.

    Raises:
        TypeError: A keyword that is not a field, named with the valid ones.
    """
    from . import AccessToken, FactorType

    body = access_token_body(**overrides)
    if isinstance(body["date_created"], str):
        body["date_created"] = _dt.datetime.fromisoformat(body["date_created"])
    if body["factor_type"] in {factor.value for factor in FactorType}:
        body["factor_type"] = FactorType(body["factor_type"])
    return AccessToken(**body)


def _token_url(body: Mapping[str, Any]) -> str:
    return f"https://verify.twilio.com/v2/Services/{body['service_sid']}/AccessTokens/{body['sid']}"
