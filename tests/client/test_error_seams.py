"""The errors at their users' seams: a request id on each, one-call construction for unit tests,
and one framework-neutral answer per error (`endpoint_answer`), as an aiohttp.web handler uses it.
"""

from __future__ import annotations

import inspect

import pytest

import verify_access_tokens
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
    VerifyError,
    endpoint_answer,
)
from verify_access_tokens.emulator import Faults, VerifyEmulator

RID = "RQ" + "a" * 32

# One call each, as a unit test builds them: what it does not care about has a default.
ONE_CALL: dict[type[VerifyError], VerifyError] = {
    VerifyError: VerifyError("boom"),
    APIError: APIError("boom"),
    ConfigurationError: ConfigurationError("auth_token", "required"),
    RequestValidationError: RequestValidationError("identity", "too short"),
    ResponseValidationError: ResponseValidationError(),
    ClientStateError: ClientStateError("closed"),
    APIConnectionError: APIConnectionError(),
    APITimeoutError: APITimeoutError(request_sent=False),
    APIStatusError: APIStatusError(status=409),
    BadRequestError: BadRequestError(code=60200),
    AuthenticationError: AuthenticationError(),
    PermissionDeniedError: PermissionDeniedError(),
    NotFoundError: NotFoundError(request_id=RID),
    RateLimitError: RateLimitError(retry_after=2.0),
    ServerError: ServerError(),
    OutcomeUnknownError: OutcomeUnknownError(APITimeoutError()),
}


def public_errors() -> set[type[VerifyError]]:
    return {
        obj
        for obj in vars(verify_access_tokens).values()
        if inspect.isclass(obj) and issubclass(obj, VerifyError)
    }


def test_every_public_error_builds_in_one_call_for_a_unit_test() -> None:
    assert set(ONE_CALL) == public_errors()
    for cls, error in ONE_CALL.items():
        assert type(error) is cls
        assert str(error)
    assert RateLimitError().status == 429
    assert NotFoundError().message == "Not Found"
    assert ServerError().status == 500
    with pytest.raises(TypeError, match="needs status="):
        APIStatusError()


def test_every_error_has_a_request_id_none_when_no_answer_came() -> None:
    for error in ONE_CALL.values():
        assert error.request_id is None or error.request_id == RID
    assert OutcomeUnknownError(ServerError(request_id=RID)).request_id == RID


async def test_an_outcome_unknown_from_a_lost_answer_logs_a_request_id_without_failing(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(lost_response_rate=1.0))
    async with verify_emulator.client(max_retries=0) as client:
        with pytest.raises(VerifyError) as caught:
            await client.access_tokens.create(verify_emulator.service_sid, identity="user-0001")
    assert isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.request_id is None  # the answer was lost: nothing to name


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (RequestValidationError("identity", "too short"), 400, None),
        (RateLimitError(retry_after=2.5), 429, "3"),
        (RateLimitError(), 429, "1"),
        (OutcomeUnknownError(APITimeoutError()), 504, None),
        (OutcomeUnknownError(ServerError()), 502, None),
        (APITimeoutError(request_sent=False), 503, "1"),
        (APITimeoutError(), 504, None),
        (AuthenticationError(code=20003), 502, None),
        (APIConnectionError(), 502, None),
        (ResponseValidationError(), 502, None),
        (ClientStateError("closed"), 503, None),
        (RequestValidationError("ttl", "too long"), 500, None),
        (ConfigurationError("auth_token", "required"), 500, None),
    ],
)
def test_endpoint_answer_maps_each_error_to_a_status_and_safe_json(
    error: VerifyError, status: int, retry_after: str | None
) -> None:
    answer = endpoint_answer(error)
    assert answer.status == status
    assert answer.headers.get("Retry-After") == retry_after
    assert answer.headers["Cache-Control"] == "no-store"
    assert set(answer.body) == {"error"}
    assert set(answer.body["error"]) == {"message", "moreInfo"}


def test_endpoint_answer_links_twilio_codes_and_echoes_no_server_text() -> None:
    error = AuthenticationError(code=20003, message="token abc123secret is wrong")
    answer = endpoint_answer(error)
    assert answer.more_info == "https://www.twilio.com/docs/errors/20003"
    assert "abc123secret" not in str(answer.body)


def test_factor_type_accepts_only_the_enum_or_push_in_type_checkers() -> None:
    from typing import Literal, get_type_hints

    from verify_access_tokens import AccessTokens, FactorType

    for method in (AccessTokens.create, AccessTokens.create_with_http_info):
        assert get_type_hints(method)["factor_type"] == FactorType | Literal["push"]
