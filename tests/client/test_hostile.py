"""Promises kept under a hostile server (helpers/hostile.py) and hostile input, over real sockets:
bounded memory, typed errors only, real attempt counts, no credential echoed back out."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from helpers.constants import (
    ACCOUNT_SID,
    API_KEY,
    API_SECRET,
    AUTH_TOKEN,
    IDENTITY,
    JWT,
    SERVICE_SID,
    TOKEN_SID,
    token_body,
)
from helpers.hostile import (
    MIB,
    HostileServer,
    bomb,
    cut_mid_headers,
    echo_authorization,
    echo_credentials,
    endless,
    huge,
    in_thread,
    json_body,
    long_status_line,
    nested,
    raw_body,
)
from helpers.leaks import acquired_connections

from verify_access_tokens import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    EnrollmentRequest,
    OutcomeUnknownError,
    RateLimitError,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
    VerifyClient,
    VerifyError,
)
from verify_access_tokens._http._body import read_body
from verify_access_tokens._http._error_mapping import connection_error
from verify_access_tokens._http._scrub import Scrubber
from verify_access_tokens.cli._main import main

pytestmark = pytest.mark.sockets
BASIC = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
PROXY_BASIC = base64.b64encode(b"alice:pr0xy-pa55word").decode()


def client_for(server: HostileServer, **options: Any) -> VerifyClient:
    options.setdefault("max_retries", 0)
    return VerifyClient(ACCOUNT_SID, AUTH_TOKEN, base_url=server.base_url, **options)


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and every exception reachable from it through cause and context."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "cause", None)]
    return seen


def holds(exc: BaseException, secret: str) -> bool:
    """Whether any exception in the chain shows or holds ``secret`` (text, args, attributes)."""
    for item in chain(exc):
        texts = [str(item), repr(item), repr(item.args), repr(vars(item))]
        texts += [repr(getattr(item, name, None)) for name in ("doc", "object")]
        if any(secret in text or secret.encode().hex() in text for text in texts):
            return True
        for value in (getattr(item, "doc", None), getattr(item, "object", None)):
            if isinstance(value, bytes | str) and secret in str(value):
                return True
    return False


# --- bounded response size ------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from verify_access_tokens import VerifyClient

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    async def main():
        async with VerifyClient("AC" + "a" * 32, "x" * 32, base_url=sys.argv[1], timeout=5) as c:
            import cattrs  # imported on the first parse: keep it out of the growth
            before = hwm()
            try:
                await c.access_tokens.create("VA" + "c" * 32, identity="ff483d1ff591898a")
                error = None
            except Exception as exc:
                error = [type(exc).__name__, type(getattr(exc, "cause", None)).__name__]
        print(json.dumps({"growth": hwm() - before, "error": error}))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(
    "behaviour",
    [
        lambda: huge(200 * MIB),
        endless,
        lambda: bomb(1024 * MIB),
        lambda: bomb(1024 * MIB, encoding="deflate"),
    ],
    ids=["200MB", "endless-chunked", "gzip-bomb-1GiB", "deflate-bomb-1GiB"],
)
async def test_hostile_bodies_keep_peak_memory_flat(hostile: HostileServer, behaviour: Any) -> None:
    hostile.behaviour = behaviour()
    proc = await _run_child(hostile.base_url)
    result = json.loads(proc)
    assert result["error"] == ["OutcomeUnknownError", "ResponseValidationError"]
    assert result["growth"] < 32 * MIB


async def _run_child(base_url: str) -> str:
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, base_url, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return out.decode()


async def test_oversized_2xx_on_fetch_is_a_response_error_and_its_connection_is_closed(
    hostile: HostileServer,
) -> None:
    async with client_for(hostile, max_response_bytes=4096) as c:
        hostile.behaviour = huge(8 * MIB, chunked=True)  # more than arrives at once
        with pytest.raises(ResponseValidationError) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
        assert info.value.attempts == 1
        assert info.value.status == 200
        assert "max_response_bytes (4096)" in str(info.value)
        assert acquired_connections(c) == 0
        hostile.behaviour = json_body(token_body())
        await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
        await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    # the cut-off connection was not reused; the healthy one was
    assert hostile.peers[1] != hostile.peers[0]
    assert hostile.peers[2] == hostile.peers[1]


async def test_announced_oversized_body_is_not_read(hostile: HostileServer) -> None:
    hostile.behaviour = huge(2 * MIB)
    async with client_for(hostile) as c:
        with pytest.raises(OutcomeUnknownError) as info:
            await c.access_tokens.create(SERVICE_SID, identity=IDENTITY)
        assert isinstance(info.value.cause, ResponseValidationError)
        assert info.value.attempts == info.value.cause.attempts == 1


async def test_a_body_announced_over_the_cap_is_not_read() -> None:
    class Announced:
        content_length = 2 * MIB
        headers: Mapping[str, str] = MappingProxyType({})
        closed = False

        async def read(self) -> bytes:
            raise AssertionError("read")

        @property
        def content(self) -> Any:
            raise AssertionError("read incrementally")

        def close(self) -> None:
            self.closed = True

    resp = Announced()
    assert await read_body(resp, MIB) is None  # type: ignore[arg-type]
    assert resp.closed


@pytest.mark.parametrize(("status", "cls"), [(400, BadRequestError), (503, ServerError)])
async def test_oversized_error_body_keeps_its_status_class(
    hostile: HostileServer, status: int, cls: type[APIStatusError]
) -> None:
    hostile.behaviour = huge(3 * MIB, status=status, chunked=True)
    async with client_for(hostile) as c:
        with pytest.raises(cls) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert info.value.status == status
    assert "too large, cut off" in info.value.message


async def test_compressed_token_and_a_body_at_the_limit_are_read(hostile: HostileServer) -> None:
    body = json.dumps(token_body()).encode()
    hostile.behaviour = raw_body(gzip.compress(body), **{"Content-Encoding": "gzip"})
    async with client_for(hostile, max_response_bytes=len(body)) as c:
        token = await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
        assert token.token == JWT
        smaller = c.with_options(max_response_bytes=len(body) - 1)
        assert smaller.max_response_bytes == len(body) - 1
        with pytest.raises(ResponseValidationError):
            await smaller.access_tokens.fetch(SERVICE_SID, TOKEN_SID)


@pytest.mark.parametrize("value", [0, -1, True, "1", 1.5])
def test_max_response_bytes_is_validated(value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        VerifyClient(ACCOUNT_SID, AUTH_TOKEN, max_response_bytes=value)  # type: ignore[arg-type]
    assert info.value.setting == "max_response_bytes"
    with pytest.raises(ConfigurationError):
        VerifyClient(ACCOUNT_SID, AUTH_TOKEN).with_options(
            max_response_bytes=value  # type: ignore[arg-type]
        )


# --- deep or odd JSON -----------------------------------------------------------------------


async def test_deep_json_on_2xx_is_a_response_error_with_real_attempts(
    hostile: HostileServer,
) -> None:
    hostile.behaviour = nested()
    async with client_for(hostile) as c:
        with pytest.raises(ResponseValidationError) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
        assert info.value.attempts == 1
        with pytest.raises(OutcomeUnknownError) as unknown:
            await c.access_tokens.create(SERVICE_SID, identity=IDENTITY)
        assert isinstance(unknown.value.cause, ResponseValidationError)
        assert unknown.value.attempts == 1


@pytest.mark.parametrize(
    ("status", "cls", "attempts"),
    [(400, BadRequestError, 1), (429, RateLimitError, 3), (500, ServerError, 3)],
)
async def test_deep_json_error_bodies_keep_their_status_class(
    hostile: HostileServer, status: int, cls: type[APIStatusError], attempts: int
) -> None:
    nested_body = nested(status=status)

    async def behaviour(request: Any) -> Any:
        response = await nested_body(request)
        response.headers["Retry-After"] = "0"
        return response

    hostile.behaviour = behaviour
    async with client_for(hostile, max_retries=2) as c:
        with pytest.raises(cls) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert info.value.attempts == attempts == hostile.requests


async def test_deep_json_in_a_batch_is_each_items_result(hostile: HostileServer) -> None:
    hostile.behaviour = nested(status=400)
    ids = [f"{IDENTITY}-{i}" for i in range(5)]
    async with client_for(hostile) as c:
        results = [r async for r in c.access_tokens.create_many(SERVICE_SID, ids)]
    assert sorted(r.identity for r in results) == ids
    assert all(isinstance(r.error, BadRequestError) for r in results)


# --- parameters that cannot be encoded ------------------------------------------------------


async def test_lone_surrogate_is_a_validation_error_before_sending(
    hostile: HostileServer,
) -> None:
    async with client_for(hostile) as c:
        with pytest.raises(RequestValidationError) as info:
            await c.access_tokens.create(
                SERVICE_SID, identity=IDENTITY, factor_friendly_name="phone \ud800"
            )
        assert info.value.field == "factor_friendly_name"
        with pytest.raises(RequestValidationError) as info:
            await c.access_tokens.create(SERVICE_SID, identity="abcdefgh\udcff")
        assert info.value.field == "identity"
    assert hostile.requests == 0


async def test_lone_surrogate_in_a_batch_is_that_items_result(hostile: HostileServer) -> None:
    hostile.behaviour = json_body(token_body(), status=201)
    items = [
        EnrollmentRequest(IDENTITY),
        EnrollmentRequest(IDENTITY + "-2", factor_friendly_name="\ud800"),
        EnrollmentRequest(IDENTITY + "-3"),
    ]
    async with client_for(hostile) as c:
        results = {r.index: r async for r in c.access_tokens.create_many(SERVICE_SID, items)}
    assert results[0].access_token is not None
    assert results[2].access_token is not None
    error = results[1].error
    assert isinstance(error, RequestValidationError)
    assert error.field == "factor_friendly_name"
    assert hostile.requests == 2


def test_enroll_jsonl_with_a_lone_surrogate_records_it_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "ids.jsonl"
    source.write_text(
        json.dumps({"identity": IDENTITY, "friendly_name": "ok"})
        + "\n"
        + '{"identity": "abcdefgh-1", "friendly_name": "bad \\ud800"}\n'
    )
    out = tmp_path / "out.jsonl"
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    with in_thread(json_body(token_body(), status=201)) as server:
        code = main(
            ["enroll", SERVICE_SID, str(source), "--out", str(out), "--base-url", server.base_url]
        )
    _, err = capsys.readouterr()
    assert code == 0  # failed for good: nothing is left that a --resume could still enroll
    assert "Traceback" not in err
    lines = map(json.loads, out.read_text().splitlines())
    records = {r["identity"]: r for r in lines if "identity" in r}  # not the run's header
    assert records[IDENTITY]["status"] == "created"
    assert records["abcdefgh-1"]["status"] == "failed"
    assert records["abcdefgh-1"]["error"]["class"] == "RequestValidationError"


def test_enroll_input_with_undecodable_bytes_or_deep_json_gives_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    undecodable = tmp_path / "ids.txt"
    undecodable.write_bytes(IDENTITY.encode() + b"\n" + b"abcdefgh\xff\n")
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "\n")
    with in_thread(json_body(token_body(), status=201)) as server:
        argv = ["--out", str(tmp_path / "out.jsonl"), "--base-url", server.base_url]
        code = main(["enroll", SERVICE_SID, str(undecodable), *argv])
        _, err = capsys.readouterr()
        assert code == 2  # a file that is not UTF-8 is a bad input file: one line names it
        assert err.strip().splitlines() == ["error: INPUT: line 2 is not valid UTF-8"]
        code = main(
            ["enroll", SERVICE_SID, str(deep), *argv[:1], str(tmp_path / "2.jsonl"), *argv[2:]]
        )
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip().splitlines() == ["error: INPUT: line 1 is not valid JSON"]


# --- extra_headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "a\r\nX-Injected: 1"},
        {"X-A": "a\nb"},
        {"X-A": "a\x00b"},
        {"X-A\r\n": "a"},
        {"X A": "a"},
        {"": "a"},
        {"X-A": 1},
        {"X-A": b"a"},
        {"X-A": "\ud800"},
        {1: "a"},
        {"Authorization": "Basic evil"},
        {"host": "evil.example"},
        {"Content-Length": "0"},
        {"TRANSFER-ENCODING": "chunked"},
        {"Content-Type": "text/plain"},
        {"connection": "close"},
        ["X-A", "a"],
    ],
)
def test_bad_extra_headers_are_configuration_errors(headers: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        VerifyClient(ACCOUNT_SID, AUTH_TOKEN, extra_headers=headers)
    assert info.value.setting == "extra_headers"
    with pytest.raises(ConfigurationError):
        VerifyClient(ACCOUNT_SID, AUTH_TOKEN).with_options(extra_headers=headers)


async def test_good_extra_headers_reach_the_server(hostile: HostileServer) -> None:
    hostile.behaviour = json_body(token_body())
    async with client_for(hostile, extra_headers={"X-Trace": "t1\tok", "User-Agent": "me"}) as c:
        await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert hostile.headers[0]["X-Trace"] == "t1\tok"
    assert hostile.headers[0]["User-Agent"] != "me"  # the client's own wins


# --- no credential echoed back out ----------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "secret"),
    [
        ({"auth_token": AUTH_TOKEN}, AUTH_TOKEN),
        ({"api_key": API_KEY, "api_secret": API_SECRET}, API_SECRET),
    ],
)
async def test_echoed_credentials_are_scrubbed_from_errors_and_logs(
    hostile: HostileServer,
    caplog: pytest.LogCaptureFixture,
    credentials: dict[str, str],
    secret: str,
) -> None:
    hostile.behaviour = echo_authorization()
    caplog.set_level(logging.DEBUG, logger="verify_access_tokens")
    async with VerifyClient(ACCOUNT_SID, base_url=hostile.base_url, **credentials) as c:
        basic = c._transport._headers["Authorization"]
        with pytest.raises(AuthenticationError) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert secret in hostile.headers[0]["Authorization"] or basic in hostile.headers[0].values()
    encoded = basic.split(" ")[1]
    for leaked in (secret, basic, encoded):
        assert not holds(info.value, leaked)
        assert leaked not in caplog.text
    assert "<redacted>" in info.value.message
    assert info.value.request_id is not None
    assert encoded not in info.value.request_id


def test_cli_create_does_not_print_echoed_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    with in_thread(echo_authorization(400)) as server:
        code = main(["create", SERVICE_SID, "--identity", IDENTITY, "--base-url", server.base_url])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1
    for leaked in (AUTH_TOKEN, BASIC):
        assert leaked not in out + err


async def test_long_server_messages_are_capped(hostile: HostileServer) -> None:
    hostile.behaviour = json_body({"code": 20001, "message": "x" * 100_000}, status=400)
    async with client_for(hostile) as c:
        with pytest.raises(BadRequestError) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert len(info.value.message) < 600
    assert "more characters" in info.value.message


@pytest.mark.parametrize(
    "body",
    [
        b"not json " + JWT.encode(),
        b'{"token": "' + JWT.encode() + b'"\xff}',
        b"\xff" + JWT.encode(),
    ],
)
async def test_an_undecodable_2xx_body_is_not_kept_in_the_exception_chain(
    hostile: HostileServer, body: bytes
) -> None:
    hostile.behaviour = raw_body(body)
    async with client_for(hostile) as c:
        with pytest.raises(ResponseValidationError) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
        assert not holds(info.value, JWT)
        assert info.value.__context__ is None
        with pytest.raises(OutcomeUnknownError) as unknown:
            await c.access_tokens.create(SERVICE_SID, identity=IDENTITY)
        assert not holds(unknown.value, JWT)


def test_connection_error_text_is_scrubbed() -> None:
    scrub = Scrubber("Basic " + BASIC)
    exc = ValueError(f"Invalid status line 'HTTP/1.1 {BASIC} {AUTH_TOKEN}'")
    error = connection_error(exc, "GET", "https://x.example/", scrub, 1)  # type: ignore[arg-type]
    assert BASIC not in str(error)
    assert AUTH_TOKEN not in str(error)
    assert "<redacted>" in str(error)
    assert AUTH_TOKEN not in repr(scrub)


def secret_windows(secret: str, size: int = 8) -> list[str]:
    """Every run of ``size`` characters of ``secret``: none may appear in an error."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


async def test_a_cut_off_status_line_leaves_no_part_of_the_credentials(
    hostile: HostileServer,
) -> None:
    """aiohttp quotes only the first 100 bytes of an over-long status line: the echoed Basic
    value arrives cut in two, and no run of 8 characters of it (nor of the token) gets out."""
    hostile.behaviour = long_status_line()
    async with client_for(hostile) as c:
        for call in (
            lambda: c.access_tokens.fetch(SERVICE_SID, TOKEN_SID),
            lambda: c.access_tokens.create(SERVICE_SID, identity=IDENTITY),
        ):
            with pytest.raises(VerifyError) as info:
                await call()
            text = "".join(traceback.format_exception(info.value)) + repr(info.value)
            assert "malformed response" in str(info.value)
            for window in secret_windows(BASIC) + secret_windows(AUTH_TOKEN):
                assert window not in text


def test_cli_does_not_print_part_of_a_cut_off_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    with in_thread(long_status_line()) as server:
        code = main(["fetch", SERVICE_SID, TOKEN_SID, "--base-url", server.base_url])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1
    for window in secret_windows(BASIC) + secret_windows(AUTH_TOKEN):
        assert window not in out + err


def test_the_scrubber_redacts_any_long_run_of_a_secret() -> None:
    scrub = Scrubber("Basic " + BASIC, proxy_authorization="Basic " + PROXY_BASIC)
    for secret in (BASIC, AUTH_TOKEN, PROXY_BASIC, "pr0xy-pa55word"):
        for start, stop in ((0, 8), (3, 20), (len(secret) - 9, len(secret) - 1)):
            text = scrub(f"said {secret[start:stop]}!")
            assert text == "said <redacted>!", (secret, start, stop)
    # a run of 7 characters, the account SID and ordinary text are kept
    assert scrub(f"{AUTH_TOKEN[:7]} {ACCOUNT_SID} ok") == f"{AUTH_TOKEN[:7]} {ACCOUNT_SID} ok"


@pytest.mark.parametrize(
    "transform",
    [
        str.upper,
        str.lower,
        str.swapcase,
        partial(quote, safe=""),
        quote_plus,
        lambda t: quote(t).lower(),
    ],
    ids=["upper", "lower", "swapcase", "percent-encoded", "quote_plus", "percent-encoded lower"],
)
async def test_an_echo_in_another_case_or_percent_encoded_is_redacted(
    hostile: HostileServer, transform: Callable[[str], str]
) -> None:
    hostile.behaviour = echo_credentials(transform)
    async with client_for(hostile) as c:
        with pytest.raises(AuthenticationError) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    error = info.value
    text = "".join(traceback.format_exception(error)) + repr(error) + repr(vars(error))
    assert "<redacted>" in error.message
    folded = text.lower()
    for secret in (BASIC, AUTH_TOKEN):
        for window in secret_windows(secret):
            assert window.lower() not in folded
            assert quote(window, safe="").lower() not in folded


async def test_a_connection_cut_mid_headers_is_described_by_its_class(
    hostile: HostileServer,
) -> None:
    """aiohttp's error then quotes every header received so far (a cookie, an echoed secret)."""
    hostile.behaviour = cut_mid_headers()
    async with client_for(hostile) as c:
        with pytest.raises(APIConnectionError) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
    assert str(info.value) == (
        f"connection failed (ServerDisconnectedError) (GET {hostile.base_url}"
        f"/v2/Services/{SERVICE_SID}/AccessTokens/{TOKEN_SID})"
    )
    text = "".join(traceback.format_exception(info.value))
    for leak in ("RawResponseMessage", "Set-Cookie", "eyJ", "X-Echo", BASIC):
        assert leak not in text


def test_the_scrubber_redacts_a_percent_encoded_secret_in_any_case() -> None:
    secret = "t0k/en+s\u00e9cr=t v@lue:42"  # every character quote() changes, and a non-ASCII one
    basic = base64.b64encode(f"{ACCOUNT_SID}:{secret}".encode()).decode()
    scrub = Scrubber("Basic " + basic)
    for form in (secret, f"{ACCOUNT_SID}:{secret}", basic, "Basic " + basic):
        for encoded in (quote(form, safe=""), quote_plus(form, safe=""), quote(form)):
            for text in (encoded, encoded.lower(), encoded.upper()):
                assert scrub(f"said {text}!") == "said <redacted>!", text
    cut = quote(secret, safe="")[5:-3].lower()  # a cut-off piece, lower-cased hex escapes
    assert "<redacted>" in scrub(f"said {cut}")
    assert cut not in scrub(f"said {cut}")


async def capture_locals(call: Awaitable[object]) -> str:
    """What an error tracker shows for the error ``call`` raises: the whole chain, with each
    frame's local variables (this frame's own: only ``call``)."""
    try:
        await call
    except VerifyError as exc:
        te = traceback.TracebackException.from_exception(exc, capture_locals=True)
        return type(exc).__name__ + "".join(te.format())
    raise AssertionError("no error raised")  # pragma: no cover - a failing test


@pytest.mark.parametrize(
    ("behaviour", "secrets"),
    [
        (echo_authorization(400), (BASIC, AUTH_TOKEN)),
        (echo_authorization(500), (BASIC, AUTH_TOKEN)),
        (json_body(token_body(ttl="300")), (JWT,)),
        (json_body(token_body(ttl=10**30)), (JWT,)),
        (raw_body(b"not json " + JWT.encode()), (JWT,)),
        (raw_body(b"[" + json.dumps(token_body()).encode() + b"]"), (JWT,)),
    ],
    ids=["400 echo", "500 echo", "ttl string", "ttl huge", "not json", "not an object"],
)
async def test_no_secret_in_a_traceback_with_locals(
    hostile: HostileServer, behaviour: Any, secrets: tuple[str, ...]
) -> None:
    """Frames the error passes through must not hold the answer (body, response, decoded
    JSON) in their locals: Sentry-style reporters print them."""
    hostile.behaviour = behaviour
    async with client_for(hostile) as c:
        for call in (
            lambda: c.access_tokens.fetch(SERVICE_SID, TOKEN_SID),
            lambda: c.access_tokens.create(SERVICE_SID, identity=IDENTITY),
            lambda: c.access_tokens.fetch_with_http_info(SERVICE_SID, TOKEN_SID),
        ):
            text = await capture_locals(call())
            assert "self = <verify_access_tokens" in text  # locals were captured
            for secret in secrets:
                assert secret not in text


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"ttl": 10**30}, "$.ttl"),
        ({"ttl": 86_401}, "$.ttl"),
        ({"ttl": 0}, "$.ttl"),
        ({"ttl": -300}, "$.ttl"),
        ({"date_created": "9999-12-31T23:59:59Z"}, "$.date_created"),
        ({"date_created": "9999-12-31T00:00:01Z"}, "$.date_created"),
        ({"ttl": 86_400, "date_created": "9999-12-30T23:59:59Z"}, None),
    ],
)
async def test_a_token_whose_expiry_cannot_be_computed_is_invalid(
    hostile: HostileServer, override: dict[str, Any], field: str | None
) -> None:
    """``expires_at`` (date_created + ttl) must never raise OverflowError: a ttl outside
    1..86400 s or a date_created within a day of the year 10000 is a ResponseValidationError."""
    hostile.behaviour = json_body(token_body(**override))
    async with client_for(hostile) as c:
        if field is None:  # the edge that still works
            token = await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
            assert token.expires_at.year == 9999
            return
        with pytest.raises(ResponseValidationError) as info:
            await c.access_tokens.fetch(SERVICE_SID, TOKEN_SID)
        assert info.value.field == field
        hostile.behaviour = json_body(token_body(**override), status=201)
        with pytest.raises(OutcomeUnknownError) as unknown:
            await c.access_tokens.create(SERVICE_SID, identity=IDENTITY)
        assert isinstance(unknown.value.cause, ResponseValidationError)
        assert unknown.value.cause.field == field


# --- ambiguous 2xx on create ----------------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [
        lambda: json_body({"status": "queued"}, status=202),
        lambda: raw_body(b"", status=204),
        lambda: json_body(token_body(ttl="300"), status=201),
        lambda: json_body([token_body()], status=200),
    ],
    ids=["202", "204", "201-invalid", "200-not-an-object"],
)
async def test_a_create_2xx_that_is_not_a_token_is_an_unknown_outcome(
    hostile: HostileServer, behaviour: Any
) -> None:
    hostile.behaviour = behaviour()
    async with client_for(hostile, retry_ambiguous_creates=True, max_retries=2) as c:
        with pytest.raises(OutcomeUnknownError) as info:
            await c.access_tokens.create(SERVICE_SID, identity=IDENTITY)
    assert isinstance(info.value.cause, ResponseValidationError)
    assert info.value.__cause__ is info.value.cause
    assert info.value.attempts == 1 == hostile.requests  # never re-sent: it said "done"


def test_enroll_records_an_ambiguous_2xx_as_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text(IDENTITY + "\n")
    out = tmp_path / "out.jsonl"
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    with in_thread(raw_body(b"", status=202)) as server:
        code = main(
            ["enroll", SERVICE_SID, str(source), "--out", str(out), "--base-url", server.base_url]
        )
    capsys.readouterr()
    assert code == 1
    header, sending, record = map(json.loads, out.read_text().splitlines())
    assert header["record"] == "header"  # the run's, then the write-ahead, then the outcome
    assert sending["status"] == "sending"
    assert record["status"] == "unknown"
    assert record["error"]["class"] == "OutcomeUnknownError"
