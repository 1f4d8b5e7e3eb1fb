"""The error hierarchy as a contract: pickled across processes, messages that say what to do."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from conftest import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID

import verify_access_tokens as vat
from verify_access_tokens import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchStoppedError,
    ClientStateError,
    ConfigurationError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
    VerifyError,
)

URL = f"https://verify.twilio.com/v2/Services/{SERVICE_SID}/AccessTokens"


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
    BatchStoppedError: BatchStoppedError,
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
