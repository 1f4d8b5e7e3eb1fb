"""``verify_access_tokens.fastapi``: the Verify Push backend endpoint, through httpx's ASGI
transport against a real emulator on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import pytest
from fastapi import FastAPI, HTTPException, Request
from helpers.endpoint import accepted_by_android_sample, error_message, router_app
from starlette.exceptions import HTTPException as StarletteHTTPException

from verify_access_tokens import (
    ConfigurationError,
    RateLimitError,
    VerifyClient,
    endpoint_answer,
)
from verify_access_tokens.emulator import Faults, VerifyEmulator
from verify_access_tokens.fastapi import (
    MAX_BODY_BYTES,
    EndpointError,
    access_token_router,
    identity_hash,
)
from verify_access_tokens.fastapi._errors import upstream_error as _upstream_error

pytestmark = pytest.mark.sockets

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_android_sample_request_is_accepted(verify_emulator: VerifyEmulator) -> None:
    """Replays Retrofit's `@FormUrlEncoded @Field("identity")` POST byte for byte."""
    async with router_app(verify_emulator) as http:
        response = await http.post(
            "/access-token",
            content=b"identity=4c5e3a2e-5f0b-4d7a-9a53-1f0e2b7c9d11",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "okhttp/4.12.0",
                "Accept-Encoding": "gzip",
            },
        )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert accepted_by_android_sample(body)
    assert set(body) == {"token", "serviceSid", "identity", "factorType"}
    expected = hashlib.sha256(b"4c5e3a2e-5f0b-4d7a-9a53-1f0e2b7c9d11").hexdigest()
    assert body["identity"] == expected
    assert body["serviceSid"] == verify_emulator.service_sid
    claims = verify_emulator.decode_token(body["token"])
    assert claims["identity"] == expected
    assert claims["factor_type"] == "push"


async def test_json_body_and_hashing_off(verify_emulator: VerifyEmulator) -> None:
    async with router_app(verify_emulator, hash_identities=False) as http:
        response = await http.post("/access-token", json={"identity": "user-0001-abcd"})
        invalid = await http.post("/access-token", json={"identity": "ana@example.com"})
    assert response.status_code == 200
    assert response.json()["identity"] == "user-0001-abcd"
    assert verify_emulator.decode_token(response.json()["token"])["identity"] == "user-0001-abcd"
    assert accepted_by_android_sample(response.json())
    message = error_message(invalid, 400)
    assert message.startswith("identity:")
    assert "ana@example.com" not in invalid.text


async def test_keyed_hash_ttl_and_friendly_name(verify_emulator: VerifyEmulator) -> None:
    key = b"server-side-secret"
    async with router_app(
        verify_emulator, identity_hash_key=key, ttl=120, factor_friendly_name="Phone"
    ) as http:
        response = await http.post("/access-token", data={"identity": "ana@example.com"})
    expected = hmac.new(key, b"ana@example.com", hashlib.sha256).hexdigest()
    assert response.json()["identity"] == expected == identity_hash("ana@example.com", key)
    assert identity_hash("ana@example.com") != expected
    (token,) = verify_emulator.tokens.values()
    assert token.ttl == 120
    assert token.factor_friendly_name == "Phone"
    assert token.entity_identity == expected


@pytest.mark.parametrize(
    ("content", "headers", "status", "message"),
    [
        (b"", FORM, 400, "identity: missing"),
        (b"other=1", FORM, 400, "identity: missing"),
        (b"identity=", FORM, 400, "identity: missing"),
        (b"identity=%20%20", FORM, 400, "identity: missing"),
        (b"identity=a&identity=b", FORM, 400, "identity: given more than once"),
        (b"identity=" + b"x" * 257, FORM, 400, "identity: longer than 256 characters"),
        (b"identity=\xff\xfe", FORM, 400, "request body is not UTF-8"),
        (b"{}", {"Content-Type": "application/json"}, 400, "identity: missing"),
        (b"[1]", {"Content-Type": "application/json"}, 400, "identity: missing"),
        (b'[["identity", "alice"]]', {"Content-Type": "application/json"}, 400, "missing"),
        (
            b'{"identity": "alice-000", "identity": "mallory-0"}',
            {"Content-Type": "application/json"},
            400,
            "identity: given more than once",
        ),
        (b'{"identity": {"a": 1}}', {"Content-Type": "application/json"}, 400, "must be a"),
        (b'{"identity": 7}', {"Content-Type": "application/json"}, 400, "identity: must be a"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (
            b'{"identity": "user\\ud800abc"}',
            {"Content-Type": "application/json"},
            400,
            "identity: not valid Unicode",
        ),
        (b"identity=x", {"Content-Type": "text/plain"}, 415, "form-encoded"),
        (b"i" * (MAX_BODY_BYTES + 1), FORM, 413, "larger than"),
    ],
)
async def test_bad_requests(
    verify_emulator: VerifyEmulator,
    content: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    async with router_app(verify_emulator) as http:
        response = await http.post("/access-token", content=content, headers=headers)
    assert message in error_message(response, status)
    assert verify_emulator.counters.requests == 0  # refused before Twilio


async def test_a_streamed_body_past_the_limit_is_refused(verify_emulator: VerifyEmulator) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"i" * 1024

    async with router_app(verify_emulator) as http:
        response = await http.post("/access-token", content=chunks(), headers=FORM)
    assert "larger than" in error_message(response, 413)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405(verify_emulator: VerifyEmulator, method: str) -> None:
    async with router_app(verify_emulator) as http:
        response = await http.request(method, "/access-token")
    error_message(response, 405)
    assert response.headers["Allow"] == "POST"


def current_user(request: Request) -> str | None:
    """A stand-in for the app's session check: who is calling, per a header."""
    user = request.headers.get("X-User")
    if user is None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Session"})
    if user == "blocked":
        raise EndpointError(403, "account blocked")
    return None if user == "nobody" else user


async def test_authorization_hook(verify_emulator: VerifyEmulator) -> None:
    async with router_app(verify_emulator, authorize=current_user, path="/enroll") as http:
        own = await http.post("/enroll", data={"identity": "alice"}, headers={"X-User": "alice"})
        other = await http.post("/enroll", data={"identity": "bob"}, headers={"X-User": "alice"})
        anonymous = await http.post("/enroll", data={"identity": "alice"})
        blocked = await http.post("/enroll", data={"identity": "x"}, headers={"X-User": "blocked"})
        nobody = await http.post("/enroll", data={"identity": "x"}, headers={"X-User": "nobody"})
    assert own.status_code == 200
    assert own.json()["identity"] == identity_hash("alice")
    assert "not allowed" in error_message(other, 403)
    assert error_message(anonymous, 401) == "log in first"
    assert anonymous.headers["WWW-Authenticate"] == "Session"
    assert error_message(blocked, 403) == "account blocked"
    assert "not allowed" in error_message(nobody, 403)
    assert verify_emulator.counters.tokens_created == 1


async def test_hook_with_a_non_string_detail(verify_emulator: VerifyEmulator) -> None:
    def refuse() -> str:
        raise HTTPException(403, detail={"why": "internal detail"})

    async with router_app(verify_emulator, authorize=refuse) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    assert error_message(response, 403) == "request refused"
    assert "internal detail" not in response.text


async def test_hook_raising_starlettes_http_exception(verify_emulator: VerifyEmulator) -> None:
    def refuse() -> str:
        raise StarletteHTTPException(401)

    async with router_app(verify_emulator, authorize=refuse) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    assert error_message(response, 401) == "Unauthorized"


def test_no_hook_is_refused_unless_opted_in(verify_emulator: VerifyEmulator) -> None:
    client = verify_emulator.client()
    with pytest.raises(ConfigurationError, match="authorize"):
        access_token_router(client=client, service_sid=verify_emulator.service_sid)
    with pytest.raises(ConfigurationError, match="authorize"):
        access_token_router(
            client=client,
            service_sid=verify_emulator.service_sid,
            authorize=current_user,
            allow_any_identity=True,
        )


async def test_opt_in_without_a_hook_warns_at_startup(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "verify_access_tokens.fastapi")
    async with router_app(verify_emulator, authorize=current_user):
        assert not caplog.records
    async with router_app(verify_emulator):
        (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "ANY identity" in record.getMessage()


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"service_sid": "VA123"}, "service_sid"),
        ({"ttl": 30}, "ttl"),
        ({"factor_friendly_name": ""}, "factor_friendly_name"),
        ({"path": "access-token"}, "path"),
        ({"identity_hash_key": b"k", "hash_identities": False}, "identity_hash_key"),
        ({"identity_hash_key": b""}, "identity_hash_key"),
        ({"identity_hash_key": "not-bytes"}, "identity_hash_key"),
        ({"path": None}, "path"),
        ({"path": 5}, "path"),
    ],
)
def test_bad_settings_fail_at_construction(
    verify_emulator: VerifyEmulator, options: dict[str, Any], setting: str
) -> None:
    options = {"service_sid": verify_emulator.service_sid, **options}
    with pytest.raises(ConfigurationError) as caught:
        access_token_router(client=verify_emulator.client(), allow_any_identity=True, **options)
    assert caught.value.setting == setting


async def test_client_from_a_dependency(verify_emulator: VerifyEmulator) -> None:
    """The app.state pattern: the lifespan stores the client, a dependency hands it over."""
    seen: list[VerifyClient] = []

    async def from_state(request: Request) -> VerifyClient:
        client: VerifyClient = request.app.state.verify
        seen.append(client)
        return client

    async with (
        verify_emulator.client() as client,
        router_app(verify_emulator, provider=from_state) as http,
    ):
        http._transport.app.state.verify = client  # type: ignore[attr-defined]
        for _ in range(3):
            response = await http.post("/access-token", data={"identity": "alice"})
            assert response.status_code == 200
    assert seen == [client] * 3  # one client for every request


# -- upstream failures -------------------------------------------------------------------------


async def test_rate_limited_upstream_is_429_with_retry_after(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(rate_limit=0.01))
    async with router_app(verify_emulator) as http:
        first = await http.post("/access-token", data={"identity": "alice"})
        limited = await http.post("/access-token", data={"identity": "alice"})
    assert first.status_code == 200
    error_message(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["moreInfo"] == "https://www.twilio.com/docs/errors/20429"


@pytest.mark.parametrize(
    ("faults", "counter"),
    [
        (Faults(error_rate=1.0), "errors_injected"),
        (Faults(drop_rate=1.0), "dropped"),
        (Faults(lost_response_rate=1.0), "responses_lost"),
    ],
)
async def test_unknown_outcomes_are_502(
    verify_emulator: VerifyEmulator, faults: Faults, counter: str
) -> None:
    verify_emulator.set_faults(faults)
    async with router_app(verify_emulator) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    assert "outcome unknown" in error_message(response, 502)
    assert getattr(verify_emulator.counters, counter) == 1
    assert verify_emulator.auth_token not in response.text


async def test_upstream_timeout_is_504(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(latency=5.0))
    client = verify_emulator.client(max_retries=0, timeout=0.2)
    async with router_app(verify_emulator, client=client) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    assert "timed out" in error_message(response, 504)


async def test_upstream_timeout_before_sending_is_504(verify_emulator: VerifyEmulator) -> None:
    verify_emulator.set_faults(Faults(latency=5.0))
    client = verify_emulator.client(max_retries=0, timeout=0.2, deadline=0.1)
    async with router_app(verify_emulator, client=client) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    assert "timed out" in error_message(response, 504)


async def test_unreachable_upstream_is_502(verify_emulator: VerifyEmulator) -> None:
    client = verify_emulator.client(max_retries=0)
    await verify_emulator.stop()  # connection refused: provably not sent
    async with router_app(verify_emulator, client=client) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    message = error_message(response, 502)
    assert "outcome unknown" not in message


async def test_rejected_credentials_are_502_without_secrets(
    verify_emulator: VerifyEmulator,
) -> None:
    client = verify_emulator.client(auth_token="wrong-token-0123456789", max_retries=0)
    async with router_app(verify_emulator, client=client) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    error_message(response, 502)
    assert response.json()["error"]["moreInfo"] == "https://www.twilio.com/docs/errors/20003"
    assert "wrong-token" not in response.text
    assert "Authentication Error" not in response.text  # upstream text is not echoed


async def test_closed_client_is_503(verify_emulator: VerifyEmulator) -> None:
    client = verify_emulator.client()
    await client.aclose()
    async with router_app(verify_emulator, client=client) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    error_message(response, 503)


async def test_a_bug_is_500_without_a_traceback(
    verify_emulator: VerifyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> VerifyClient:
        raise RuntimeError("secret internal state")

    async with router_app(verify_emulator, provider=broken) as http:
        response = await http.post("/access-token", data={"identity": "alice"})
    assert error_message(response, 500) == "internal server error"
    assert "secret internal state" not in response.text
    assert any(r.exc_info for r in caplog.records)  # the operator sees it in the log


def test_importing_the_package_does_not_import_fastapi() -> None:
    code = "import sys, verify_access_tokens.cli._main; print('fastapi' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_router_answers_with_endpoint_answer() -> None:
    """One mapping (client/test_error_seams.py): the router's exception carries it as is."""
    error = RateLimitError(retry_after=3.0, code=20429)
    mapped, answer = _upstream_error(error), endpoint_answer(error)
    assert (mapped.status, mapped.message, mapped.more_info) == (
        answer.status,
        answer.message,
        answer.more_info,
    )
    assert mapped.headers == answer.headers


async def test_the_warning_reaches_stderr_where_logging_is_not_configured(
    verify_emulator: VerifyEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The package logger's NullHandler must not swallow it: stdlib's lastResort prints it."""
    monkeypatch.setattr(logging.getLogger("verify_access_tokens.fastapi"), "propagate", False)
    async with router_app(verify_emulator):
        pass
    assert "ANY identity" in capsys.readouterr().err


def test_openapi_describes_the_contract(verify_emulator: VerifyEmulator) -> None:
    app = FastAPI()
    app.include_router(
        access_token_router(
            client=verify_emulator.client(),
            service_sid=verify_emulator.service_sid,
            authorize=current_user,
        )
    )
    operation = app.openapi()["paths"]["/access-token"]["post"]
    assert set(app.openapi()["paths"]["/access-token"]) == {"post"}  # the 405 route is hidden
    for media in ("application/x-www-form-urlencoded", "application/json"):  # with a hook,
        assert operation["requestBody"]["content"][media]["schema"]["required"] == []  # optional
    success = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert success["required"] == ["token", "serviceSid", "identity", "factorType"]
    # Exactly what the route can answer: no 405 (other methods are other routes), and no 422
    # (this hook has no parameter FastAPI could refuse).
    expected = {"200", "400", "401", "403", "413", "415", "429", "500", "502", "503", "504"}
    assert set(operation["responses"]) == expected
    error = operation["responses"]["502"]["content"]["application/json"]["schema"]
    more_info = error["properties"]["error"]["properties"]["moreInfo"]
    assert more_info == {"anyOf": [{"type": "string"}, {"type": "null"}]}  # sent as null


async def test_no_worker_thread_per_request(
    verify_emulator: VerifyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI runs a plain-`def` dependency in a thread: the router's own are coroutines."""
    hops = []
    run_sync = anyio.to_thread.run_sync

    async def counting(*args: Any, **kwargs: Any) -> Any:
        hops.append(args[0])
        return await run_sync(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    async with router_app(verify_emulator) as http:
        for i in range(3):
            response = await http.post("/access-token", data={"identity": f"user-{i}"})
            assert response.status_code == 200
    assert hops == []


def test_endpoint_error_is_shown_as_part_of_the_public_module() -> None:
    """It lives in a private module; tracebacks and docs name where users import it from."""
    assert EndpointError.__module__ == "verify_access_tokens.fastapi"


@pytest.mark.parametrize("answer", ["alice\ud800", "\udcff", "", "   ", None, 7, b"alice"])
@pytest.mark.parametrize("body", [{"identity": "alice"}, {}])
async def test_a_hook_answering_anything_but_a_usable_identity_is_403_not_a_token(
    answer: object, body: dict[str, str], verify_emulator: VerifyEmulator
) -> None:
    """A lone surrogate would be a 500; a blank answer (``claims.get("sub", "")``) would put
    every caller on one identity."""

    def hook() -> object:
        return answer

    async with router_app(verify_emulator, authorize=hook) as http:
        response = await http.post("/access-token", data=body)
    assert "not allowed" in error_message(response, 403)
    assert verify_emulator.counters.requests == 0
