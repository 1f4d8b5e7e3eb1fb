"""``serve`` as deployed: a login hook from the operator's code, TLS, OpenAPI for client
generators, and a clean stop (draining, the shutdown's time limit, a second Ctrl-C)."""

from __future__ import annotations

import importlib
import signal
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from helpers.cli import cli, one_line_error
from helpers.paths import EXAMPLES, TLS
from helpers.serve import serve_app, served

from verify_access_tokens import VerifyClient
from verify_access_tokens.cli.serve._app import load_hook
from verify_access_tokens.emulator import VerifyEmulator
from verify_access_tokens.fastapi import identity_hash

pytestmark = pytest.mark.sockets

SECRET = "a-session-secret-for-the-tests"


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """examples/serve_authorize.py, imported as ``serve --authorize`` imports it."""
    monkeypatch.setenv("APP_SESSION_SECRET", SECRET)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.chdir(EXAMPLES)
    sys.modules.pop("serve_authorize", None)
    yield importlib.import_module("serve_authorize")
    sys.modules.pop("serve_authorize", None)


# -- --authorize: the identity from the app's own login ------------------------------------------


def test_an_authorize_hook_from_the_operators_module_mints_for_the_logged_in_user(
    sessions: ModuleType,
) -> None:
    alice = sessions.issue_session("alice")
    expired = sessions.issue_session("alice", lifetime=-1)
    forged = alice[:-1] + ("0" if alice[-1] != "0" else "1")
    argv = ("--emulator", "--authorize", "serve_authorize:authorize")
    env = {"APP_SESSION_SECRET": SECRET}
    with served(*argv, env=env, cwd=EXAMPLES) as running, httpx.Client(base_url=running.url) as h:

        def post(session: str | None, **body: str) -> httpx.Response:
            header = {"Authorization": f"Bearer {session}".encode()}  # a phone sends UTF-8
            return h.post("/access-token", data=body, headers={} if session is None else header)

        from_login = post(alice)
        accented = post(sessions.issue_session("josé"))
        repeated = post(alice, identity="alice")
        someone_else = post(alice, identity="bob")
        answers = [post(None), post(expired), post(forged), post("not-a-session")]
    assert from_login.status_code == 200
    assert from_login.json()["identity"] == identity_hash("alice")
    assert accented.json()["identity"] == identity_hash("josé")
    assert repeated.status_code == 200
    assert someone_else.status_code == 403
    assert [a.status_code for a in answers] == [401] * 4
    assert {a.json()["error"]["message"] for a in answers} == {"log in first"}
    assert answers[0].headers["WWW-Authenticate"] == "Bearer"
    assert "authorized by serve_authorize:authorize" in running.out
    assert "ANY identity" not in running.err
    assert "Traceback" not in running.err


def test_the_example_hook_declares_its_bearer_scheme_in_openapi(sessions: ModuleType) -> None:
    hook = load_hook("serve_authorize:authorize")
    app = serve_app(
        VerifyClient("AC" + "0" * 32, "x" * 32), "VA" + "0" * 32, docs=True, authorize=hook
    )
    document = app.openapi()
    assert document["components"]["securitySchemes"] == {
        "HTTPBearer": {"type": "http", "scheme": "bearer"}
    }
    assert document["paths"]["/access-token"]["post"]["security"] == [{"HTTPBearer": []}]


def test_the_shared_bearer_token_is_declared_in_openapi_too() -> None:
    app = serve_app(
        VerifyClient("AC" + "0" * 32, "x" * 32), "VA" + "0" * 32, docs=True, bearer_token="b" * 20
    )
    document = app.openapi()
    assert document["paths"]["/access-token"]["post"]["security"] == [{"HTTPBearer": []}]
    responses = document["paths"]["/access-token"]["post"]["responses"]
    assert "422" not in responses  # the scheme is no request parameter FastAPI validates
    assert "HTTPValidationError" not in str(document)
    body = document["paths"]["/access-token"]["post"]["requestBody"]  # the caller names anyone
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["required"] == ["identity"]


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Bearer " + "b" * 20, 200),
        ("bearer " + "b" * 20, 200),  # the scheme's case does not matter (RFC 7235)
        ("Bearer  " + "b" * 20, 401),  # the value is compared exactly
        ("Bearer " + "b" * 20 + "\u00a0", 401),
        ("Bearer " + "b" * 19, 401),
        ("Basic " + "b" * 20, 401),
        ("Bearer", 401),
    ],
)
async def test_the_shared_bearer_token_is_compared_exactly(
    header: str, status: int, verify_emulator: VerifyEmulator
) -> None:
    app = serve_app(verify_emulator.client(), verify_emulator.service_sid, bearer_token="b" * 20)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as h,
    ):
        answer = await h.post(
            "/access-token",
            data={"identity": "alice"},
            headers={"Authorization": header.encode("latin-1")},  # type: ignore[dict-item]
        )
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("serve_authorize", 'must be in format "<module>:<attribute>"'),
        ("no_such_module:authorize", 'Could not import module "no_such_module"'),
        ("serve_authorize:missing", 'Attribute "missing" not found'),
        ("serve_authorize:SECRET_NAME", "serve_authorize:SECRET_NAME is not callable"),
        ("raising_module:authorize", "importing raising_module failed: RuntimeError: bad config"),
        ("unusable:authorize", "unusable:authorize is not a FastAPI dependency: "),
    ],
)
def test_a_hook_that_cannot_be_loaded_is_one_line_naming_authorize(
    spec: str, says: str, tmp_path: Path
) -> None:
    (tmp_path / "serve_authorize.py").write_text("SECRET_NAME = 'not a function'\n")
    (tmp_path / "raising_module.py").write_text("raise RuntimeError('bad config')\n")
    (tmp_path / "unusable.py").write_text(  # a parameter FastAPI cannot read from a request
        "import socket\n\nasync def authorize(s: socket.socket) -> str:\n    return 'x'\n"
    )
    done = cli_in(tmp_path, "serve", "--emulator", "--authorize", spec)
    one_line_error(done, 2, "error: --authorize: ")
    assert says in done.stderr


def test_authorize_and_the_shared_bearer_token_are_not_combined(tmp_path: Path) -> None:
    (tmp_path / "hook.py").write_text("async def authorize() -> str:\n    return 'alice'\n")
    done = cli_in(
        tmp_path, "serve", "--emulator", "--authorize", "hook:authorize",
        VERIFY_ACCESS_TOKENS_BEARER_TOKEN="b" * 20,
    )  # fmt: skip
    one_line_error(done, 2, "error: --authorize: cannot be combined with")


def cli_in(folder: Path, *argv: str, **env: str) -> Any:
    """The CLI run from ``folder``, as an operator runs it beside their module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return cli(*argv, **env)


# -- TLS --------------------------------------------------------------------------------------


def test_serve_answers_over_tls_with_the_given_certificate() -> None:
    trusted = ssl.create_default_context(cafile=str(TLS / "ca.pem"))
    argv = ("--emulator", "--ssl-certfile", str(TLS / "server.pem"),
            "--ssl-keyfile", str(TLS / "server-key.pem"))  # fmt: skip
    with served(*argv, verify=trusted) as running:
        with httpx.Client(base_url=running.url, verify=trusted) as https:
            answer = https.post("/access-token", data={"identity": "alice"})
        with pytest.raises(httpx.ConnectError):  # not a CA this client trusts
            httpx.post(f"{running.url}/access-token", data={"identity": "alice"})
    assert running.url.startswith("https://")
    assert answer.status_code == 200
    assert f"Serving POST {running.url}/access-token" in running.out
    assert "Traceback" not in running.err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--ssl-certfile", str(TLS / "server.pem")], "needs --ssl-keyfile too"),
        (["--ssl-keyfile", str(TLS / "server-key.pem")], "needs --ssl-keyfile too"),
        (["--ssl-certfile", str(TLS / "ca.pem"), "--ssl-keyfile", str(TLS / "server-key.pem")],
         "cannot load"),
        (["--ssl-certfile", "/nonexistent.pem", "--ssl-keyfile", "/nonexistent.pem"],
         "cannot load /nonexistent.pem"),
        (["--ssl-certfile", str(TLS / "server.pem"),
          "--ssl-keyfile", str(TLS / "server-key-encrypted.pem")],
         "server-key-encrypted.pem is encrypted; serve takes a key without a passphrase"),
    ],
)  # fmt: skip
def test_unusable_tls_files_are_one_line_at_start(flags: list[str], says: str) -> None:
    done = cli("serve", "--emulator", "--port", "0", *flags)
    one_line_error(done, 2, "error: --ssl-")
    assert says in done.stderr
    assert "pass phrase" not in done.stderr + done.stdout  # never prompted


# -- stopping ---------------------------------------------------------------------------------


def _raw_post(url: str) -> socket.socket:
    """A kept-alive POST sent on a raw socket, its answer not read yet."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    body = b"identity=alice"
    connection.sendall(
        b"POST /access-token HTTP/1.1\r\nHost: serve\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    return connection


def _answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    connection.settimeout(60)
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    connection.close()
    return b"".join(chunks)


def _stop_when_in_flight(running: Any, stop: signal.Signals, times: int = 1) -> None:
    """Signal ``serve`` once the emulator holds the request (its latency is seconds long)."""
    time.sleep(0.5)  # the request reaches the emulator well within its latency
    for _ in range(times):
        running.process.send_signal(stop)
        time.sleep(0.05)


def test_a_request_cut_by_the_shutdown_time_limit_is_answered_in_the_error_shape() -> None:
    argv = ("--emulator", "--latency", "30", "--shutdown-timeout", "0.5")
    with served(*argv, stop=None) as running:
        connection = _raw_post(running.url)
        _stop_when_in_flight(running, signal.SIGTERM)
        answer = _answer(connection)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"content-type: application/json" in head.lower()
    assert b"connection: close" in head.lower()
    assert b'"server shutting down: the request was cut before it was answered; retry"' in body
    assert "Traceback" not in running.err
    assert "Exception in ASGI application" not in running.err
    assert "a request was cut by the shutdown; answered 503" in running.err


def test_a_request_in_flight_at_the_stop_is_answered_and_its_connection_closed() -> None:
    with served("--emulator", "--latency", "2", stop=None) as running:
        connection = _raw_post(running.url)
        _stop_when_in_flight(running, signal.SIGTERM)
        answer = _answer(connection)  # returns only once the server closes the connection
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in head.lower()
    assert b'"token"' in body
    assert "Traceback" not in running.err


def test_a_second_ctrl_c_while_stopping_aborts_in_one_line() -> None:
    with served("--emulator", "--latency", "30", stop=None) as running:
        connections = [_raw_post(running.url) for _ in range(2)]
        _stop_when_in_flight(running, signal.SIGINT, times=2)
        answers = [_answer(c) for c in connections]
    assert running.process.returncode == 130
    assert answers == [b"", b""]  # cut: the abort answers nothing
    assert "Traceback" not in running.err
    last = running.err.strip().splitlines()[-1]
    assert last == "aborted: interrupted while stopping; requests in flight were cut"
