"""``serve`` ready to expose, as an operator runs it: subprocesses over real sockets
on 127.0.0.1 (the emulator in another process), plus in-process runs where a test must see
inside (the connection cap)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import aiohttp
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Header
from helpers.clock import FakeClock
from helpers.network import free_port
from helpers.serve import clean_env, serve_app, served, serving_in_process

from verify_access_tokens import VerifyClient, cli
from verify_access_tokens.cli.serve._command import ENV_BEARER
from verify_access_tokens.emulator import Faults, VerifyEmulator
from verify_access_tokens.fastapi import access_token_router
from verify_access_tokens.testing import aioresponses, twilio_error_body

pytestmark = pytest.mark.sockets

SID = "VA" + "0" * 32


@dataclass(frozen=True)
class Upstream:
    base_url: str
    account_sid: str
    auth_token: str
    service_sid: str

    def env(self, **extra: str) -> dict[str, str]:
        credentials = {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "VERIFY_SERVICE_SID": self.service_sid,
        }
        return clean_env(**(credentials | extra))


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """``verify-access-tokens emulator`` in its own process: what ``serve`` talks to."""
    command = [sys.executable, "-m", "verify_access_tokens", "emulator", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=clean_env())
    names = {
        "VERIFY_ACCESS_TOKENS_BASE_URL": "base_url",
        "TWILIO_ACCOUNT_SID": "account_sid",
        "TWILIO_AUTH_TOKEN": "auth_token",
        "VERIFY_SERVICE_SID": "service_sid",
    }
    try:
        assert process.stdout is not None
        fields: dict[str, str] = {}
        for line in process.stdout:
            words = shlex.split(line, comments=True)
            if len(words) == 2 and words[0] == "export":
                name, _, value = words[1].partition("=")
                if name in names:
                    fields[names[name]] = value
            if len(fields) == len(names):
                break
        yield Upstream(**fields)
    finally:
        process.terminate()
        process.communicate(timeout=10)


def run_serve(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "verify_access_tokens", "serve", "--port", str(free_port())]
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, env=env, timeout=60, check=False
    )


# -- credentials checked at start; upstream failures in the server's log ----------------------


def test_wrong_credentials_exit_1_at_start_in_one_line(upstream: Upstream) -> None:
    done = run_serve(
        "--base-url", upstream.base_url, env=upstream.env(TWILIO_AUTH_TOKEN="wrong-0123456789")
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN" in done.stderr
    assert "code 20003" in done.stderr
    assert "wrong-0123456789" not in done.stderr
    assert "Serving" not in done.stdout


def test_no_check_starts_and_logs_each_upstream_failure(upstream: Upstream) -> None:
    env = upstream.env(TWILIO_AUTH_TOKEN="wrong-0123456789")
    with served("--base-url", upstream.base_url, "--no-check", env=env) as running:
        with httpx.Client(base_url=running.url) as http:
            response = http.post("/access-token", data={"identity": "alice@example.com"})
        running.process.send_signal(signal.SIGINT)
        _, err = running.process.communicate(timeout=30)
    assert response.status_code == 502
    assert re.search(
        r"WARNING: +verify_access_tokens.fastapi: access-token upstream failure: "
        r"AuthenticationError code=20003 status=401 request_id=RQ[0-9a-f]{32} attempts=1 "
        r"identity=[0-9a-f]{8} answered=502",
        err,
    ), err
    assert "wrong-0123456789" not in err
    assert "alice" not in err
    assert "Traceback" not in err


def test_an_unreachable_upstream_is_named_at_start_and_in_each_failure(
    upstream: Upstream,
) -> None:
    """Host, port and the OS error, in the start check and in the endpoint's WARNING line."""
    done = run_serve("--base-url", "http://127.0.0.1:9", env=upstream.env())
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: start check failed: cannot connect to 127.0.0.1:9: connection refused (GET "
        f"http://127.0.0.1:9/v2/Services/{upstream.service_sid}/AccessTokens/"
        f"YK{'0' * 32}); pass --no-check to skip it"
    )
    with served("--base-url", "http://127.0.0.1:9", "--no-check", env=upstream.env()) as running:
        with httpx.Client(base_url=running.url) as http:
            response = http.post("/access-token", data={"identity": "alice"})
        running.process.send_signal(signal.SIGINT)
        _, err = running.process.communicate(timeout=30)
    assert response.status_code == 502
    assert "answered=502: cannot connect to 127.0.0.1:9: connection refused" in err


def test_good_credentials_pass_the_check(upstream: Upstream) -> None:
    with (
        served("--base-url", upstream.base_url, env=upstream.env()) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        response = http.post("/access-token", data={"identity": "alice"})
    assert response.status_code == 200


# -- slow clients are closed; the cap answers in the error shape --------------------------------


async def _open(port: int, partial: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(partial)
    await writer.drain()
    return reader, writer


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing (the guard fails the test if it never closes)."""
    return await asyncio.wait_for(reader.read(), timeout=20)


def test_slow_headers_and_slow_bodies_are_closed_over_a_real_socket() -> None:
    argv = ("--emulator", "--header-timeout", "0.5", "--body-timeout", "0.5")
    with served(*argv) as running:
        url, process = running.url, running.process
        port = int(url.rsplit(":", 1)[1])

        async def attack() -> tuple[bytes, bytes, bytes, int]:
            silent = await _open(port, b"")
            header = await _open(port, b"POST /access-token HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            body = await _open(
                port,
                b"POST /access-token HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\nidenti",
            )
            results = [await _closed_by_server(r) for r, _ in (silent, header, body)]
            async with httpx.AsyncClient(base_url=url) as http:
                ok = await http.post("/access-token", data={"identity": "alice"})
            for _, writer in (silent, header, body):
                writer.close()
            return results[0], results[1], results[2], ok.status_code

        silent, header, body, ok = asyncio.run(attack())
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert (silent, header, body) == (b"", b"", b"")  # closed, nothing answered
    assert ok == 200
    # The operator's view, at shutdown: what the guard closed, and how late.
    assert "slow-client guard: 2 closed past the header limit, 1 past the body limit" in err
    assert "0 closed to make room, 0 answered 503" in err


async def test_past_the_cap_the_oldest_slow_connection_makes_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving_in_process(["--emulator", "--max-connections", "2"], monkeypatch) as server:
        port = server.port
        first = await _open(port, b"POST /access-token HTTP/1.1\r\n")
        second = await _open(port, b"POST /access-token HTTP/1.1\r\n")
        while len(server.server_state.connections) < 2:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            legitimate = await http.post("/access-token", data={"identity": "alice"})
        assert await _closed_by_server(first[0]) == b""  # the oldest slow one
        assert not second[0].at_eof()
        for _, writer in (first, second):
            writer.close()
    assert legitimate.status_code == 200


async def test_past_the_cap_with_every_connection_busy_the_answer_is_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["--emulator", "--latency", "3", "--max-connections", "1"]
    async with serving_in_process(argv, monkeypatch) as server:
        url = server.url
        async with httpx.AsyncClient(base_url=url) as busy, httpx.AsyncClient(base_url=url) as late:
            in_flight = asyncio.create_task(busy.post("/access-token", data={"identity": "a"}))
            # Wait until that request is being answered (its connection is no longer sending).
            while not (
                server.server_state.connections
                and all(c._phase is None for c in server.server_state.connections)
            ):
                await asyncio.sleep(0.01)
            refused = await late.post("/access-token", data={"identity": "b"})
            assert (await in_flight).status_code == 200
    assert refused.status_code == 503
    assert refused.json() == {
        "error": {"message": "server busy: too many open connections; retry", "moreInfo": None}
    }
    assert refused.headers["Retry-After"] == "1"


# -- no redirect, one error shape, no docs unless asked -----------------------------------------


def test_slash_methods_and_docs_over_a_real_socket() -> None:
    with served("--emulator") as running, httpx.Client(base_url=running.url) as http:
        slashed = http.post(
            "/access-token/", data={"identity": "alice"}, headers={"Host": "evil.example"}
        )
        trace = http.request("TRACE", "/access-token")
        brew = http.request("BREW", "/access-token/")
        docs = [http.get(p) for p in ("/docs", "/redoc", "/openapi.json")]
    assert slashed.status_code == 200
    assert "location" not in slashed.headers
    for response in (trace, brew):
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"
        assert response.json() == {
            "error": {"message": "method not allowed; use POST", "moreInfo": None}
        }
    for response in docs:
        assert response.status_code == 404
        assert response.json() == {"error": {"message": "not found", "moreInfo": None}}


def test_docs_flag_serves_an_openapi_without_a_422() -> None:
    with (
        served("--emulator", "--docs", env={ENV_BEARER: "b" * 20}) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        docs = http.get("/docs")
        spec = http.get("/openapi.json").json()
    assert docs.status_code == 200
    responses = spec["paths"]["/access-token"]["post"]["responses"]
    assert "422" not in responses  # the bearer hook reads no FastAPI parameter
    assert {"401", "403", "503"} <= set(responses)


# -- a bearer token that can never match fails at start -----------------------------------------


@pytest.mark.parametrize(
    "token", ["pässwörd-0123456789", "with space 0123456789", "tab\t0123456789abc"]
)
def test_a_bearer_token_that_cannot_match_exits_2(token: str) -> None:
    done = run_serve("--emulator", env=clean_env(**{ENV_BEARER: token}))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"{ENV_BEARER}: must be printable ASCII" in done.stderr
    assert token not in done.stderr


# -- several workers, each with its own client ---------------------------------------------------


def test_two_workers_serve_the_port(upstream: Upstream) -> None:
    argv = ("--base-url", upstream.base_url, "--workers", "2", "--health-path", "/healthz")
    with served(*argv, env=upstream.env()) as running:
        with httpx.Client(base_url=running.url) as http:
            answers = [http.post("/access-token", data={"identity": f"u{i}"}) for i in range(6)]
            health = http.get("/healthz")
        running.process.send_signal(signal.SIGTERM)
        out, err = running.process.communicate(timeout=60)
    assert [a.status_code for a in answers] == [200] * 6
    assert health.json() == {"status": "ready"}
    assert "2 workers" in out
    workers = set(re.findall(r"Started server process \[(\d+)\]", err))
    assert len(workers) == 2, err
    assert "Traceback" not in err


def test_workers_with_the_emulator_are_refused() -> None:
    done = run_serve("--emulator", "--workers", "2", env=clean_env())
    assert done.returncode == 2
    assert "--workers: more than 1 needs real credentials" in done.stderr


# -- readiness and graceful shutdown ------------------------------------------------------------


async def test_readiness_is_503_while_the_client_is_not_open(
    verify_emulator: VerifyEmulator,
) -> None:
    client = verify_emulator.client()
    app = serve_app(client, verify_emulator.service_sid, health_path="/healthz")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
        before = await http.get("/healthz")
        async with app.router.lifespan_context(app):
            during = await asyncio.gather(*(http.get("/healthz") for _ in range(20)))
            await client.aclose()
            closed = await http.get("/healthz")
        requests = verify_emulator.counters.requests
    assert before.status_code == 503
    assert {r.status_code for r in during} == {200}
    assert closed.status_code == 503
    assert closed.json()["error"]["message"] == "not ready: the client is not open"
    assert requests == 1  # 20 probes, one upstream call


async def test_readiness_follows_the_upstream_checked_at_most_every_30_s(
    verify_emulator: VerifyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoked credentials, then an upstream failing, then recovery: each seen at the next
    check, and a check is made at most every CHECK_EVERY seconds."""
    client = verify_emulator.client()
    app = serve_app(client, verify_emulator.service_sid, health_path="/healthz")
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://serve") as http,
        app.router.lifespan_context(app),
    ):
        assert (await http.get("/healthz")).status_code == 200
        token = verify_emulator.auth_token
        verify_emulator.auth_token = "revoked-0123456789abcdef"
        clock = FakeClock(monkeypatch)  # from here, a clock the test moves
        assert (await http.get("/healthz")).status_code == 200  # the last answer still holds
        clock.now += 30
        refused = await http.get("/healthz")
        verify_emulator.auth_token = token
        verify_emulator.set_faults(Faults(error_rate=1.0))
        clock.now += 30
        failing = await http.get("/healthz")
        verify_emulator.set_faults(Faults())
        clock.now += 30
        back = await http.get("/healthz")
        monkeypatch.undo()
    assert refused.status_code == 503
    assert refused.json()["error"]["message"] == (
        "not ready: the verification service refused the credentials (HTTP 401)"
    )
    assert failing.json()["error"]["message"] == (
        "not ready: the verification service answered HTTP 503"
    )
    assert back.status_code == 200
    assert verify_emulator.counters.requests == 4  # one per check, none per probe


async def test_readiness_is_503_when_the_upstream_cannot_be_reached() -> None:
    port = free_port()
    client = VerifyClient(
        "AC" + "0" * 32, "auth-token-0123456789", base_url=f"http://127.0.0.1:{port}"
    )
    app = serve_app(client, "VA" + "0" * 32, health_path="/healthz")
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://serve") as http,
        app.router.lifespan_context(app),
    ):
        down = await http.get("/healthz")
    assert down.status_code == 503
    assert down.json()["error"]["message"] == (
        "not ready: the verification service could not be reached"
    )


async def test_a_request_in_flight_at_sigterm_gets_its_answer(
    verify_emulator: VerifyEmulator,
) -> None:
    verify_emulator.set_faults(Faults(latency=2.0))
    port = free_port()
    env = clean_env(
        TWILIO_ACCOUNT_SID=verify_emulator.account_sid,
        TWILIO_AUTH_TOKEN=verify_emulator.auth_token,
    )
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "verify_access_tokens", "serve", "--port", str(port)),
        *("--base-url", verify_emulator.base_url, "--service-sid", verify_emulator.service_sid),
        "--no-check",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while True:
            assert process.returncode is None
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/access-token")).status_code == 405:
                    break
            await asyncio.sleep(0.05)
        before = verify_emulator.counters.requests
        in_flight = asyncio.create_task(http.post("/access-token", data={"identity": "alice"}))
        while verify_emulator.counters.requests == before:  # it reached Twilio
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        response = await in_flight
    _, err = await process.communicate()
    assert response.status_code == 200
    # uvicorn re-raises the signal once it has drained: the process ends as SIGTERM asked.
    assert process.returncode in (0, -signal.SIGTERM)
    assert b"Traceback" not in err


# -- a hook's required header over a real socket, under uvicorn ---------------------------------


async def test_a_hook_missing_its_header_is_401_over_a_real_socket(
    verify_emulator: VerifyEmulator,
) -> None:
    async def session(authorization: Annotated[str, Header()]) -> str:
        return authorization

    client = verify_emulator.client()
    app = FastAPI()
    app.include_router(
        access_token_router(
            client=client, service_sid=verify_emulator.service_sid, authorize=session
        )
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            response = await http.post("/access-token", data={"identity": "alice"})
    finally:
        server.should_exit = True
        await task
        await client.aclose()
    assert response.status_code == 401
    assert response.json() == {
        "error": {"message": "missing credentials: header authorization", "moreInfo": None}
    }


# -- what --emulator is for ----------------------------------------------------------------------


def test_help_says_the_emulator_is_not_for_a_real_phone(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "for your backend's and app's tests and development" in help_text
    assert "a phone with the real Verify SDK cannot enroll with them" in help_text


async def test_readiness_sends_once_more_when_a_pooled_connection_was_closed() -> None:
    """A stale keep-alive connection (the server closed it) must not take the endpoint out."""
    url = f"https://verify.twilio.com/v2/Services/{'VA' + '0' * 32}/AccessTokens/{'YK' + '0' * 32}"
    client = VerifyClient(
        "AC" + "0" * 32, "auth-token-0123456789", base_url="https://verify.twilio.com"
    )
    app = serve_app(client, "VA" + "0" * 32, health_path="/healthz")
    transport = httpx.ASGITransport(app=app)
    with aioresponses() as mocked:
        mocked.get(url, exception=aiohttp.ServerDisconnectedError())
        mocked.get(url, status=404, payload=twilio_error_body(404))
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://serve") as http,
            app.router.lifespan_context(app),
        ):
            health = await http.get("/healthz")
    assert health.status_code == 200
    assert sum(len(calls) for calls in mocked.requests.values()) == 2
