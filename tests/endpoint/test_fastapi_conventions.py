"""The router inside a FastAPI app as developers write them: hook parameters,
operators' logs, slashes and methods, the client's lifetime, the OpenAPI description.

Through httpx's ASGI transport, against a real emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import warnings
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Cookie, FastAPI, Header, Query
from helpers.endpoint import error_message, router_app
from helpers.paths import EXAMPLES

from verify_access_tokens import APITimeoutError, VerifyClient
from verify_access_tokens.emulator import Faults, VerifyEmulator
from verify_access_tokens.fastapi import access_token_router, identity_hash

with warnings.catch_warnings():  # Starlette now prefers httpx2; httpx is what apps have
    # By message: the warning's class is new (StarletteDeprecationWarning), older Starlettes
    # (the lowest fastapi tested) have neither it nor the warning.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.sockets

LOGGER = "verify_access_tokens.fastapi"


async def header_session(authorization: Annotated[str, Header()]) -> str:
    """The usual FastAPI style: a required header parameter."""
    return authorization.removeprefix("Bearer ")


async def cookie_session(session: Annotated[str, Cookie()]) -> str:
    return session


async def versioned(
    authorization: Annotated[str, Header()], version: Annotated[int, Query()]
) -> str:
    return authorization.removeprefix("Bearer ")


# -- the hook's own parameters follow FastAPI's conventions -----------------------------------


async def test_a_hook_missing_its_required_header_or_cookie_is_401_not_500(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    async with router_app(verify_emulator, authorize=header_session) as http:
        no_header = await http.post("/access-token", data={"identity": "alice"})
        plain = await http.post("/plain")
        allowed = await http.post(
            "/access-token", data={"identity": "alice"}, headers={"Authorization": "Bearer alice"}
        )
    async with router_app(verify_emulator, authorize=cookie_session) as http:
        no_cookie = await http.post("/access-token", data={"identity": "alice"})
    assert error_message(no_header, 401) == "missing credentials: header authorization"
    assert error_message(no_cookie, 401) == "missing credentials: cookie session"
    assert plain.status_code == 422  # the app's own routes keep FastAPI's behaviour
    assert allowed.status_code == 200
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.INFO, logging.INFO]
    assert not any(r.exc_info for r in caplog.records)  # no traceback: not a bug
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


async def test_a_hook_parameter_of_the_wrong_type_is_422_in_the_error_shape(
    verify_emulator: VerifyEmulator,
) -> None:
    async with router_app(verify_emulator, authorize=versioned) as http:
        response = await http.post(
            "/access-token?version=not-a-number",
            data={"identity": "alice"},
            headers={"Authorization": "Bearer alice"},
        )
    message = error_message(response, 422)
    assert message == "invalid request parameters: query version"
    assert "not-a-number" not in response.text  # the value is not echoed


# -- upstream failures reach the operator's log -------------------------------------------------


async def test_upstream_failures_are_logged_at_warning_without_secrets_or_identity(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = verify_emulator.client(auth_token="wrong-token-0123456789", max_retries=0)
    async with router_app(verify_emulator, client=wrong) as http:
        response = await http.post("/access-token", data={"identity": "alice@example.com"})
    error_message(response, 502)
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING and "upstream" in r.msg]
    text = record.getMessage()
    assert "AuthenticationError code=20003 status=401 request_id=RQ" in text
    assert "attempts=1" in text
    assert f"identity={identity_hash('alice@example.com')[:8]} answered=502" in text
    assert "alice" not in text
    assert "wrong-token" not in text
    assert verify_emulator.auth_token not in text


async def test_an_unknown_outcome_is_logged_with_its_cause(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    verify_emulator.set_faults(Faults(error_rate=1.0))
    async with router_app(verify_emulator, hash_identities=False) as http:
        response = await http.post("/access-token", data={"identity": "user-0001"})
    assert "outcome unknown" in error_message(response, 502)
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING and "upstream" in r.msg]
    assert "OutcomeUnknownError(ServerError) code=" in record.getMessage()
    assert "status=503" in record.getMessage()
    assert f"identity={identity_hash('user-0001')[:8]}" in record.getMessage()  # not raw


async def test_a_request_that_never_left_is_a_retryable_503_not_outcome_unknown(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """What the client raises when a request waited past its deadline before being sent."""

    async def never_sent(**_: Any) -> None:
        raise APITimeoutError("deadline", method="POST", url="/x", request_sent=False)

    client = verify_emulator.client()
    async with router_app(verify_emulator, client=client) as http:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(client.access_tokens, "create", lambda *a, **k: never_sent())
            response = await http.post("/access-token", data={"identity": "alice"})
    message = error_message(response, 503)
    assert "outcome unknown" not in message
    assert "nothing was sent" in message
    assert response.headers["Retry-After"] == "1"
    assert any("APITimeoutError" in r.getMessage() for r in caplog.records)


# -- no redirect, one error shape ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/access-token", "/tokens/"])
async def test_the_path_matches_with_and_without_its_slash_and_never_redirects(
    verify_emulator: VerifyEmulator, path: str
) -> None:
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    async with router_app(verify_emulator, path=path) as http:
        given = await http.post(path, data={"identity": "alice"})
        slashed = await http.post(
            other, data={"identity": "alice"}, headers={"Host": "evil.example"}
        )
    assert given.status_code == 200
    assert slashed.status_code == 200
    assert "location" not in slashed.headers


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW", "HEAD", "OPTIONS"])
async def test_every_other_method_is_405_in_the_error_shape(
    verify_emulator: VerifyEmulator, method: str
) -> None:
    async with router_app(verify_emulator) as http:
        responses = [await http.request(method, p) for p in ("/access-token", "/access-token/")]
    for response in responses:
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"
        if method != "HEAD":  # a HEAD answer has no body
            assert error_message(response, 405) == "method not allowed; use POST"


# -- the client's lifetime is the app's ---------------------------------------------------------


def _readme_import_time_app(client: VerifyClient, service_sid: str) -> FastAPI:
    """The pattern README used to give: the client built at import time, closed by the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client:
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(
        access_token_router(client=client, service_sid=service_sid, allow_any_identity=True)
    )
    return app


def _example_app() -> FastAPI:
    path = EXAMPLES / "fastapi_app.py"
    spec = importlib.util.spec_from_file_location("example_fastapi_app_twice", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: FastAPI = module.app
    return app


def test_the_example_survives_two_test_clients() -> None:
    """README's guidance (the example's lifespan) under two ``with TestClient(app)`` blocks."""
    app = _example_app()
    statuses = []
    for _ in range(2):
        with TestClient(app) as http:
            answer = http.post(
                "/access-token",
                data={"identity": "alice"},
                headers={"Authorization": "Bearer demo-session-alice"},
            )
            statuses.append(answer.status_code)
    assert statuses == [200, 200]


def test_a_closed_or_foreign_loop_client_is_its_own_503_logged_at_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = VerifyEmulator()
    with TestClient(FastAPI(lifespan=_emulator_lifespan(emulator))):
        app = _readme_import_time_app(emulator.client(), emulator.service_sid)
        answers = []
        for _ in range(2):  # each TestClient runs the app on a loop of its own
            with TestClient(app) as http:
                answers.append(http.post("/access-token", data={"identity": "alice"}))
    assert answers[0].status_code == 200
    message = error_message(answers[1], 503)
    assert "closed or belongs to another event loop" in message
    assert "shutting down" not in message
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.name == LOGGER
    assert "lifespan" in record.getMessage()
    assert record.exc_info is not None  # with its cause
    assert type(record.exc_info[1]).__name__ == "ClientStateError"


def _emulator_lifespan(emulator: VerifyEmulator) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with emulator:
            yield

    return lifespan


# -- OpenAPI lists exactly what the route answers -----------------------------------------------


def test_openapi_lists_422_only_when_the_hook_has_parameters(
    verify_emulator: VerifyEmulator,
) -> None:
    def responses(**options: Any) -> set[str]:
        app = FastAPI()
        app.include_router(
            access_token_router(
                client=verify_emulator.client(), service_sid=verify_emulator.service_sid, **options
            )
        )
        operation = app.openapi()["paths"]["/access-token"]["post"]
        error = operation["responses"]["400"]["content"]["application/json"]["schema"]
        assert error["properties"]["error"]["required"] == ["message", "moreInfo"]
        assert set(app.openapi()["paths"]) == {"/access-token"}  # the slash spelling is hidden
        return set(operation["responses"])

    common = {"200", "400", "413", "415", "429", "500", "502", "503", "504"}
    assert responses(allow_any_identity=True) == common
    assert responses(authorize=header_session) == common | {"401", "403", "422"}


async def test_a_client_bound_to_another_event_loop_is_the_same_logged_503(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The client is first used on this test's loop; TestClient runs the app on its own."""
    async with verify_emulator.client() as client:
        await client.access_tokens.create(verify_emulator.service_sid, identity="user-0001")
        app = FastAPI()
        app.include_router(
            access_token_router(
                client=client, service_sid=verify_emulator.service_sid, allow_any_identity=True
            )
        )

        def in_another_loop() -> httpx.Response:
            with TestClient(app) as http:
                return http.post("/access-token", data={"identity": "alice"})

        response = await asyncio.to_thread(in_another_loop)
    assert "closed or belongs to another event loop" in error_message(response, 503)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert type(record.exc_info[1]).__name__ == "ClientStateError"


async def test_a_body_without_its_type_or_with_bytes_that_are_not_utf8_is_refused(
    verify_emulator: VerifyEmulator,
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with router_app(verify_emulator) as http:
        untyped = await http.post("/access-token", content=b"identity=user-0001")
        invalid = await http.post("/access-token", content=b"identity=%ff%fe", headers=form)
        other = await http.post("/access-token", content=b"identity=%ff%fd", headers=form)
        fine = await http.post("/access-token", content=b"identity=user-0001", headers=form)
    assert "application/x-www-form-urlencoded" in error_message(untyped, 415)
    not_utf8 = "request body has percent-encoded bytes that are not UTF-8"
    assert error_message(invalid, 400) == not_utf8
    assert error_message(other, 400) == not_utf8  # refused, not one identity for both
    assert fine.status_code == 200
    assert verify_emulator.counters.requests == 1


async def test_the_identity_comes_from_the_login_alone_when_the_hook_answers_it(
    verify_emulator: VerifyEmulator,
) -> None:
    """An app's own bearer session says who the caller is: no body is needed; a body may
    repeat that identity, and naming another is 403."""
    alice = {"Authorization": "Bearer alice-0001"}
    async with router_app(verify_emulator, authorize=header_session, hash_identities=False) as http:
        no_body = await http.post("/access-token", headers=alice)
        empty_form = await http.post("/access-token", data={}, headers=alice)
        same = await http.post("/access-token", data={"identity": "alice-0001"}, headers=alice)
        other = await http.post("/access-token", data={"identity": "bob-00001"}, headers=alice)
        schema = (await http.get("/openapi.json")).json()
    assert no_body.status_code == 200, no_body.text
    assert no_body.json()["identity"] == "alice-0001"
    assert empty_form.status_code == 200
    assert same.status_code == 200
    assert error_message(other, 403) == "not allowed to enroll this identity"
    body = schema["paths"]["/access-token"]["post"]["requestBody"]
    assert body["required"] is False
    assert body["content"]["application/json"]["schema"]["required"] == []
    assert verify_emulator.counters.tokens_created == 3


async def test_without_a_hook_the_body_must_name_the_identity(
    verify_emulator: VerifyEmulator,
) -> None:
    async with router_app(verify_emulator) as http:
        missing = await http.post("/access-token")
    assert error_message(missing, 400) == "identity: missing"
