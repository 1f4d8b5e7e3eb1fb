"""The error hierarchy as a contract: pickled across processes, messages that say what to do."""

from __future__ import annotations

import base64
import multiprocessing
import pickle
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import aiohttp
import pytest
from helpers.constants import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    IDENTITY,
    SERVICE_SID,
    TOKEN_SID,
)
from helpers.constants import CREATE_URL as URL
from helpers.hostile import HostileServer, echo_credentials
from helpers.network import free_port
from helpers.paths import README

import verify_access_tokens as vat
from verify_access_tokens import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    ConfigurationError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
    VerifyClient,
    VerifyError,
)
from verify_access_tokens._http._error_mapping import connection_error
from verify_access_tokens._http._scrub import Scrubber
from verify_access_tokens.emulator import Faults, VerifyEmulator


def _status(cls: type[APIStatusError]) -> Callable[[], APIStatusError]:
    return lambda: cls(
        status=429,
        message="Too many requests",
        method="POST",
        url=URL,
        code=20429,
        more_info="https://www.twilio.com/docs/errors/20429",
        request_id="RQ" + "0" * 32,
        retry_after=1.5,
        attempts=3,
    )


# One way to build each public error; the test below fails when a new class is not listed.
EXAMPLES: dict[type[VerifyError], Callable[[], VerifyError]] = {
    VerifyError: lambda: VerifyError("plain"),
    APIError: lambda: APIError("m", method="GET", url=URL, request_id="RQ1", attempts=2),
    ConfigurationError: lambda: ConfigurationError("auth_token", "required"),
    RequestValidationError: lambda: RequestValidationError("ttl", "must be 60 to 300"),
    ClientStateError: lambda: ClientStateError("this VerifyClient is closed"),
    ResponseValidationError: lambda: ResponseValidationError(
        "$.ttl", "not an int", status=201, method="POST", url=URL, attempts=1
    ),
    APIConnectionError: lambda: APIConnectionError(
        "could not connect", method="POST", url=URL, request_sent=False, attempts=1
    ),
    APITimeoutError: lambda: APITimeoutError(
        "timed out", method="GET", url=URL, request_sent=True, attempts=3
    ),
    APIStatusError: _status(APIStatusError),
    BadRequestError: _status(BadRequestError),
    AuthenticationError: _status(AuthenticationError),
    PermissionDeniedError: _status(PermissionDeniedError),
    NotFoundError: _status(NotFoundError),
    RateLimitError: _status(RateLimitError),
    ServerError: _status(ServerError),
    OutcomeUnknownError: lambda: OutcomeUnknownError(_status(ServerError)()),
}


def _public_errors() -> list[type[VerifyError]]:
    return [
        obj
        for name in vat.__all__
        if isinstance(obj := getattr(vat, name), type) and issubclass(obj, VerifyError)
    ]


def _public_state(error: BaseException) -> dict[str, Any]:
    """What a caller can read: public attributes (nested errors by their own state) and text."""
    state: dict[str, Any] = {"type": type(error), "str": str(error), "args": error.args}
    for name, value in vars(error).items():
        if not name.startswith("_"):
            state[name] = _public_state(value) if isinstance(value, BaseException) else value
    return state


def test_every_public_error_has_an_example() -> None:
    assert set(_public_errors()) == set(EXAMPLES)


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda cls: cls.__name__)
def test_every_error_survives_pickle(cls: type[VerifyError]) -> None:
    error = EXAMPLES[cls]()
    error.later_added = 7  # type: ignore[attr-defined]  # an attribute a future version adds
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert _public_state(copy) == _public_state(error)
    assert copy.later_added == 7


def test_pickle_keeps_the_cause_of_outcome_unknown() -> None:
    error = EXAMPLES[OutcomeUnknownError]()
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy.__cause__, ServerError)
    assert copy.__cause__ is copy.cause
    assert copy.cause.retry_after == 1.5


def test_pickle_carries_no_private_state_or_foreign_cause() -> None:
    error = APIConnectionError("connection failed", method="GET", url=URL)
    error._private = AUTH_TOKEN  # type: ignore[attr-defined]
    error.__cause__ = OSError(AUTH_TOKEN)
    data = pickle.dumps(error)
    assert AUTH_TOKEN.encode() not in data
    copy = pickle.loads(data)
    assert copy.__cause__ is None
    assert not hasattr(copy, "_private")


def _raise_rate_limited(retry_after: float) -> None:
    """Runs in a worker process."""
    raise RateLimitError(
        status=429,
        message="Too many requests",
        method="POST",
        url=URL,
        code=20429,
        retry_after=retry_after,
        attempts=3,
    )


def test_an_error_raised_in_a_process_pool_reaches_the_caller_intact() -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        with pytest.raises(RateLimitError) as info:
            pool.submit(_raise_rate_limited, 2.0).result()
        assert pool.submit(sum, [1, 2]).result() == 3  # the pool still works
    assert (info.value.status, info.value.code) == (429, 20429)
    assert (info.value.retry_after, info.value.attempts) == (2.0, 3)
    assert info.value.request_id is None
    assert str(info.value).startswith("HTTP 429 (Twilio code 20429)")


@pytest.mark.sockets
async def test_a_real_error_pickles_without_the_credentials(verify_emulator: Any) -> None:
    async with vat.VerifyClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=verify_emulator.base_url, max_retries=0
    ) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, "YK" + "d" * 32)
    data = pickle.dumps(info.value)
    assert AUTH_TOKEN.encode() not in data
    assert pickle.loads(data).status == 401


# --- messages that say what to do -----------------------------------------------------------


@pytest.mark.sockets
async def test_a_wrong_auth_token_is_twilios_401_naming_the_settings_to_check(
    verify_emulator: VerifyEmulator,
) -> None:
    async with verify_emulator.client(auth_token="wrong-token", max_retries=0) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, TOKEN_SID)
    error = info.value
    assert (error.status, error.code, error.message) == (401, 20003, "Authenticate")
    assert error.more_info == "https://www.twilio.com/docs/errors/20003"
    for setting in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
    ):
        assert setting in str(error)
    assert "\n" not in str(error)


def test_permission_denied_names_the_settings_to_check() -> None:
    error = PermissionDeniedError(status=403, message="Forbidden", method="POST", url=URL)
    assert str(error).startswith(f"HTTP 403: Forbidden [POST {URL}]; check that TWILIO_ACCOUNT_SID")
    assert "TWILIO_API_KEY" in str(error)


def test_other_status_errors_carry_no_remedy_text() -> None:
    error = NotFoundError(status=404, message="not found", method="GET", url=URL, code=20404)
    assert str(error) == f"HTTP 404 (Twilio code 20404): not found [GET {URL}]"


@pytest.mark.sockets
async def test_outcome_unknown_names_the_remedy(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(lost_response_rate=1.0))
    async with verify_emulator.client(max_retries=0) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
    text = str(info.value)
    assert "create again if a second token is harmless" in text
    assert "retry_ambiguous_creates=True" in text
    assert "reconcile" in text
    assert text.endswith(f"Cause: {info.value.cause}")


def _hanging_emulator(emulator: VerifyEmulator) -> VerifyEmulator:
    emulator.set_faults(Faults(latency=30.0))  # answers long after any limit below
    return emulator


@pytest.mark.sockets
@pytest.mark.parametrize(
    ("options", "limit"),
    [
        ({"timeout": 0.2}, "the attempt timeout (timeout=0.2 s) ran out"),
        ({"timeout": aiohttp.ClientTimeout(sock_read=0.2)}, "the read timeout (sock_read=0.2 s)"),
        ({"timeout": 30, "deadline": 0.25}, "the call's deadline (deadline=0.25 s) ran out"),
    ],
    ids=["attempt", "read", "deadline"],
)
async def test_a_timeout_names_the_limit_that_ran_out(
    verify_emulator: VerifyEmulator, options: dict[str, Any], limit: str
) -> None:
    _hanging_emulator(verify_emulator)
    async with verify_emulator.client(max_retries=0, **options) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.access_tokens.fetch(verify_emulator.service_sid, TOKEN_SID)
    assert limit in str(info.value)


@pytest.mark.parametrize(
    ("timeout", "limit"),
    [
        (aiohttp.ClientTimeout(total=35, sock_connect=5), "(sock_connect=5 s)"),
        (aiohttp.ClientTimeout(connect=2, sock_connect=5), "(connect=2 s)"),
    ],
)
def test_a_connect_timeout_names_its_limit(timeout: aiohttp.ClientTimeout, limit: str) -> None:
    scrub = Scrubber("Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode())
    exc = aiohttp.ConnectionTimeoutError("Connection timeout to host")
    error = connection_error(exc, "GET", URL, scrub, 1, timeout=timeout, deadline=60.0)
    assert isinstance(error, APITimeoutError)
    assert error.request_sent is False
    assert str(error).startswith(f"connect timed out: the connect timeout {limit} ran out")


def test_the_default_connect_timeout_is_named_with_its_value() -> None:
    default = VerifyClient(ACCOUNT_SID, AUTH_TOKEN).timeout
    assert f"sock_connect={default.sock_connect:g} s" in str(
        connection_error(
            aiohttp.ConnectionTimeoutError(), "GET", URL, Scrubber("Basic eA=="), 1, timeout=default
        )
    )


@pytest.mark.sockets
async def test_a_deadline_spent_before_sending_names_its_value(
    verify_emulator: VerifyEmulator,
) -> None:
    async with verify_emulator.client(deadline=0.1, max_in_flight=1) as client:
        held = await client._limiter.acquire()  # another call holds the only slot
        with pytest.raises(APITimeoutError) as info:
            await client.access_tokens.create(verify_emulator.service_sid, identity=IDENTITY)
        held.unused()
    assert str(info.value).startswith(
        "the call's deadline (deadline=0.1 s) ran out before the request was sent"
    )


def test_readme_says_what_to_do_for_every_error() -> None:
    readme = README.read_text()
    section = readme.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    remedies = {re.findall(r"`(\w+)`", row[0])[0]: row[2] for row in rows}
    assert set(remedies) == {cls.__name__ for cls in _public_errors()} - {"VerifyError"}
    assert all(remedy.strip(" |") for remedy in remedies.values())
    assert "except VerifyError" in section  # the recipe's catch-all


@pytest.mark.sockets
async def test_an_echoed_secret_is_not_in_the_pickle(hostile: HostileServer) -> None:
    hostile.behaviour = echo_credentials(str.upper, status=500)
    async with VerifyClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=hostile.base_url, max_retries=0
    ) as client:
        with pytest.raises(OutcomeUnknownError) as info:  # a 5xx on create, echoing the secrets
            await client.access_tokens.create(SERVICE_SID, identity=IDENTITY)
    data = pickle.dumps(info.value).lower()
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    for secret in (AUTH_TOKEN, basic):
        for i in range(len(secret) - 7):
            assert secret[i : i + 8].lower().encode() not in data
    assert isinstance(pickle.loads(pickle.dumps(info.value)).cause, ServerError)


async def test_a_refused_connection_names_the_host_the_port_and_the_os_error() -> None:
    port = free_port()  # a port nobody listens on
    async with VerifyClient(
        ACCOUNT_SID, AUTH_TOKEN, base_url=f"http://127.0.0.1:{port}", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.access_tokens.create(SERVICE_SID, identity=IDENTITY)
    assert str(caught.value).startswith(f"cannot connect to 127.0.0.1:{port}: connection refused")
    assert caught.value.request_sent is False
