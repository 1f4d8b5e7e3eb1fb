"""``verify-access-tokens serve``: over real sockets, in-process and as a user runs it."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from helpers.endpoint import accepted_by_android_sample
from helpers.serve import served, serving_in_process

from verify_access_tokens import cli
from verify_access_tokens.cli.serve._command import ENV_BEARER, ENV_HASH_KEY
from verify_access_tokens.emulator import VerifyEmulator
from verify_access_tokens.fastapi import identity_hash

pytestmark = pytest.mark.sockets

BEARER = "a-long-shared-bearer-token-0123"
ANDROID_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "User-Agent": "okhttp/4.12.0",
}


async def test_serve_emulator_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_HASH_KEY, "hash-key")
    argv = ["--emulator", "--path", "/tokens", "--ttl", "90"]
    async with (
        serving_in_process(argv, monkeypatch) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        ok = await http.post("/tokens", content=b"identity=user-1", headers=ANDROID_HEADERS)
        wrong_method = await http.get("/tokens")
    assert ok.status_code == 200
    assert accepted_by_android_sample(ok.json())
    assert ok.json()["identity"] == identity_hash("user-1", b"hash-key")
    assert wrong_method.status_code == 405
    out = capsys.readouterr().out
    assert "/tokens" in out
    assert "NO authorization" in out
    assert "http://127.0.0.1:" in out


async def test_serve_against_credentials_with_a_bearer_token(
    verify_emulator: VerifyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", verify_emulator.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", verify_emulator.auth_token)
    monkeypatch.setenv("VERIFY_SERVICE_SID", verify_emulator.service_sid)
    monkeypatch.setenv(ENV_BEARER, BEARER)
    argv = ["--base-url", verify_emulator.base_url, "--no-hash-identities"]
    async with (
        serving_in_process(argv, monkeypatch) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        anonymous = await http.post("/access-token", data={"identity": "user-0001"})
        wrong = await http.post(
            "/access-token",
            data={"identity": "user-0001"},
            headers={"Authorization": "Bearer not-the-token"},
        )
        allowed = await http.post(
            "/access-token",
            data={"identity": "user-0001"},
            headers={"Authorization": f"Bearer {BEARER}"},
        )
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert set(anonymous.json()["error"]) == {"message", "moreInfo"}
    assert wrong.status_code == 401
    assert BEARER not in wrong.text
    assert allowed.status_code == 200
    assert allowed.json()["identity"] == "user-0001"
    assert allowed.json()["serviceSid"] == verify_emulator.service_sid
    assert verify_emulator.counters.tokens_created == 1


async def test_serve_on_ipv6_loopback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with (
        serving_in_process(["--emulator"], monkeypatch, host="::1") as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        response = await http.post("/access-token", data={"identity": "user-1"})
    assert response.status_code == 200
    assert f"Serving POST {server.url}/access-token" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--host", "0.0.0.0", "--service-sid", "VA" + "0" * 32], {}, "--host: a non-loopback"),
        ([], {}, "--service-sid: missing"),
        (["--emulator", "--service-sid", "VA" + "0" * 32], {}, "--emulator: takes no"),
        (["--emulator"], {ENV_BEARER: "short"}, f"{ENV_BEARER}: must be at least"),
        (["--emulator", "--no-hash-identities"], {ENV_HASH_KEY: "k"}, "cannot be used"),
        (["--service-sid", "VA" + "0" * 32], {}, "TWILIO_ACCOUNT_SID"),
        (["--emulator", "--ttl", "5"], {}, "ttl: must be between"),
        (["--emulator", "--timeout", "0"], {}, "timeout: must be a positive"),
        (["--service-sid", "VA" + "0" * 32, "--error-rate", "1"], {}, "need --emulator"),
        (["--emulator", "--error-rate", "2"], {}, "emulator faults: error_rate"),
    ],
)
def test_serve_refuses_bad_settings(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["serve", "--port", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1  # one line, no traceback


@pytest.mark.parametrize(
    "argv",
    [
        ["--host", "0.0.0.0", "--service-sid", "VA" + "0" * 32, "--unsafe-no-auth"],
        ["--host", "0.0.0.0", "--emulator"],  # a phone on the LAN enrolling against the emulator
        ["--host", "::1", "--service-sid", "VA" + "0" * 32],
        ["--host", "localhost", "--service-sid", "VA" + "0" * 32],
    ],
)
def test_open_binds_that_are_allowed(argv: list[str]) -> None:
    from verify_access_tokens.cli.serve._command import _settings

    assert _settings(cli.build_parser().parse_args(["serve", *argv])) == (None, None)


# -- as a user runs it ---------------------------------------------------------------------------


@contextlib.contextmanager
def serve_subprocess(*argv: str) -> Iterator[str]:
    """`python -m verify_access_tokens serve --emulator ...` on a free port, once it answers."""
    with served("--emulator", *argv) as running:
        yield running.url
    assert "Serving POST" in running.out
    assert "ANY identity" in running.err  # the opt-in warning, at startup
    assert "Traceback" not in running.err


@pytest.fixture
def served_subprocess() -> Iterator[str]:
    with serve_subprocess() as url:
        yield url


@pytest.mark.parametrize(
    ("argv", "status", "requests"),
    [
        (["--server-rate-limit", "0.01"], 429, 2),  # the second request is over the limit
        (["--error-rate", "1"], 502, 1),
        (["--drop-rate", "1"], 502, 1),
        (["--lost-response-rate", "1"], 502, 1),
        (["--latency", "5", "--timeout", "0.3"], 504, 1),
    ],
)
def test_upstream_faults_over_a_real_socket(argv: list[str], status: int, requests: int) -> None:
    with serve_subprocess(*argv) as url, httpx.Client(base_url=url) as http:
        for _ in range(requests):
            response = http.post("/access-token", data={"identity": "user-1"})
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "moreInfo"}
    if status == 429:
        assert int(response.headers["Retry-After"]) >= 1


def test_android_sample_against_serve_emulator_subprocess(served_subprocess: str) -> None:
    with httpx.Client(base_url=served_subprocess) as http:
        response = http.post(
            "/access-token",
            content=b"identity=4c5e3a2e-5f0b-4d7a-9a53-1f0e2b7c9d11",
            headers=ANDROID_HEADERS,
        )
        as_json = http.post("/access-token", json={"identity": "someone@example.com"})
        missing = http.post("/access-token", content=b"", headers=ANDROID_HEADERS)
        put = http.put("/access-token")
    assert response.status_code == 200
    body = response.json()
    assert accepted_by_android_sample(body)
    assert body["identity"] == identity_hash("4c5e3a2e-5f0b-4d7a-9a53-1f0e2b7c9d11")
    assert as_json.status_code == 200
    assert as_json.json()["identity"] == identity_hash("someone@example.com")
    assert missing.status_code == 400
    assert missing.json() == {"error": {"message": "identity: missing", "moreInfo": None}}
    assert put.status_code == 405
    assert put.json()["error"]["message"] == "method not allowed; use POST"


@pytest.mark.parametrize(
    ("flags", "answered"), [([], {200}), (["--no-retry-ambiguous-creates"], {502})]
)
def test_serve_re_sends_a_create_whose_answer_was_lost_unless_told_not_to(
    flags: list[str], answered: set[int]
) -> None:
    """A lost answer (the token was made) is sent again by default: a spare token is harmless.
    With the emulator's seed, the losses fall the same way on every run."""
    with (
        serve_subprocess("--lost-response-rate", "0.5", "--seed", "2", *flags) as url,
        httpx.Client(base_url=url) as http,
    ):
        statuses = {http.post("/access-token", data={"identity": f"user-{i}"}).status_code
                    for i in range(6)}  # fmt: skip
    assert answered <= statuses
    if not flags:
        assert statuses == {200}


def _served_lines(*flags: str) -> list[str]:
    """``serve --emulator`` started, asked once for a token (and once wrongly), stopped: its
    stderr and stdout lines."""
    with (
        served("--emulator", "--error-rate", "1", *flags) as running,
        httpx.Client(base_url=running.url) as http,
    ):
        assert http.post("/access-token", data={"identity": "user-1"}).status_code == 502
    return [line for line in (running.err + running.out).splitlines() if line.strip()]


_UTC: Final = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_serve_logs_every_line_with_its_utc_time() -> None:
    # Every log line, uvicorn's included; the start banner and main()'s "interrupted" are
    # the command's own words, printed, not logged.
    logged = [
        line for line in _served_lines() if not line.startswith(("Serving POST", "interrupted"))
    ]
    assert logged
    assert all(re.match(_UTC + " ", line) for line in logged), logged
    assert any("WARNING:" in line and "access-token upstream failure" in line for line in logged)


def test_serve_logs_json_one_object_per_line_for_a_pipeline() -> None:
    lines = [line for line in _served_lines("--log-format", "json") if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    assert all(re.fullmatch(_UTC, r["time"]) for r in records)
    [failure] = [r for r in records if "upstream failure" in r["message"]]
    assert failure["level"] == "WARNING"
    assert failure["logger"] == "verify_access_tokens.fastapi"
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's lines too


def test_workers_do_not_import_the_package_from_the_current_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--authorize` put the current directory first on the path; the workers inherit the path
    and import this package before the hook, so a folder of its name there must not win."""
    from verify_access_tokens.cli.serve import _command, _uvicorn_guard

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    paths: list[list[str]] = []
    monkeypatch.setattr(_uvicorn_guard, "run_workers", lambda config: paths.append(list(sys.path)))
    args = cli.build_parser().parse_args(
        ["serve", "--workers", "2", "--service-sid", "VA" + "0" * 32]
    )
    _command._run_workers(args, args.service_sid)
    assert paths
    assert str(tmp_path) not in paths[0]
