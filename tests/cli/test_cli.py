"""The command line, in-process: output, exit codes, masking, enroll and resume."""

from __future__ import annotations

import asyncio
import json
import os
import re
import runpy
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import lines, outcomes

from verify_access_tokens import EnrollmentResult, __version__
from verify_access_tokens.cli._main import MASK, main
from verify_access_tokens.emulator import VerifyEmulator

pytestmark = pytest.mark.sockets
IDENTITY = "0b9a1c5e3f1d4c1a"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def enroll(
    capsys: pytest.CaptureFixture[str],
    emulator: VerifyEmulator,
    source: Path | str,
    out: Path,
    *options: str,
) -> tuple[int, str, str]:
    """``enroll`` against the emulator: SERVICE_SID INPUT --out OUT --base-url URL OPTIONS..."""
    return run(
        capsys,
        "enroll",
        emulator.service_sid,
        str(source),
        "--out",
        str(out),
        "--base-url",
        emulator.base_url,
        *options,
    )


def test_create_prints_table_with_masked_token(
    emulator: VerifyEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "create",
        emulator.service_sid,
        "--identity",
        IDENTITY,
        "--ttl",
        "120",
        "--friendly-name",
        "Pixel",
        "--base-url",
        emulator.base_url,
    )
    assert (code, err) == (0, "")
    lines = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert lines["entity_identity"] == IDENTITY
    assert lines["ttl"] == "120"
    assert lines["token"] == MASK
    [token] = emulator.tokens.values()
    assert token.token not in out


def test_fetch_json_with_show_token(
    emulator: VerifyEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    run(
        capsys,
        "create",
        emulator.service_sid,
        "--identity",
        IDENTITY,
        "--base-url",
        emulator.base_url,
    )
    [token] = emulator.tokens.values()
    code, out, _ = run(
        capsys,
        "fetch",
        emulator.service_sid,
        token.sid,
        "--json",
        "--show-token",
        "--base-url",
        emulator.base_url,
    )
    assert code == 0
    data = json.loads(out)
    assert data["sid"] == token.sid
    assert data["token"] == token.token
    assert data["factor_friendly_name"] is None


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "VA" + "0" * 32, "--identity", "bad id", "--base-url", "http://127.0.0.1:9"],
        [
            "create",
            "VA" + "0" * 32,
            "--identity",
            IDENTITY,
            "--ttl",
            "5",
            "--base-url",
            "http://127.0.0.1:9",
        ],
        ["fetch", "VAnope", "YK" + "0" * 32, "--base-url", "http://127.0.0.1:9"],
        ["fetch", "VA" + "0" * 32, "YK" + "0" * 32, "--base-url", "http://insecure.example"],
        ["emulator", "--error-rate", "2"],
        ["demo", "--latency", "nan"],
        ["emulator", "--latency", "inf"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_credentials_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "fetch", "VA" + "0" * 32, "YK" + "0" * 32)
    assert code == 2
    assert err == "error: TWILIO_ACCOUNT_SID: missing: set TWILIO_ACCOUNT_SID\n"


def test_api_error_prints_twilio_code_and_exit_1(
    emulator: VerifyEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "fetch", emulator.service_sid, "YK" + "0" * 32, "--base-url", emulator.base_url
    )
    assert code == 1
    assert err.startswith("error: Twilio code 20404 (HTTP 404)")


def test_network_error_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    code, _, err = run(
        capsys, "fetch", "VA" + "0" * 32, "YK" + "0" * 32, "--base-url", "http://127.0.0.1:9"
    )
    assert code == 1
    assert "cannot connect to 127.0.0.1:9: connection refused" in err


def test_demo_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--identities", "120", "--concurrency", "8")
    assert code == 0
    assert "created:  120/120 tokens" in out
    assert "errors:   0" in out
    assert "identical to what create returned" in out
    assert "eyJ" not in out


def test_demo_hints_at_twilios_in_flight_limit_and_the_hint_works(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(capsys, "demo", "--identities", "20")
    assert "demo --max-concurrent 20 --latency 0.05" in out
    code, out, _ = run(
        capsys, "demo", "--identities", "150", "--max-concurrent", "20", "--latency", "0.05"
    )
    assert code == 0  # the 429s were re-queued, none failed
    assert "created:  150/150 tokens" in out
    assert "errors:   0" in out


def test_demo_with_faults_reports_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--identities", "60", "--fault-rate", "0.3", "--seed", "1")
    assert code == 1
    assert "OutcomeUnknownError" in out


def test_demo_server_rate_limit_is_the_emulators_429_threshold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--server-rate-limit`` limits the emulator (``--rate-limit`` is enroll's client pacing)."""
    code, out, _ = run(capsys, "demo", "--identities", "60", "--server-rate-limit", "20")
    assert code == 0
    assert "created:  60/60 tokens" in out  # the 429s were retried after their Retry-After
    assert "tokens created, 0 faults injected" not in out
    with pytest.raises(SystemExit):
        run(capsys, "demo", "--rate-limit", "20")
    assert "unrecognized arguments: --rate-limit" in capsys.readouterr().err


def test_demo_lost_responses_are_unknown_though_created(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--identities", "20", "--lost-response-rate", "1")
    assert code == 1
    assert "errors:   20: 20 OutcomeUnknownError\n" in out  # prose, not a Python dict
    assert "20 tokens created, 20 faults injected" in out  # created server-side, answers lost


@pytest.mark.parametrize("command", [[], ["demo"], ["emulator"], ["create"], ["fetch"], ["enroll"]])
def test_help_for_every_command(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: verify-access-tokens" in capsys.readouterr().out


def test_version_through_python_dash_m(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import verify_access_tokens

    main_file = Path(verify_access_tokens.__file__).with_name("__main__.py")
    monkeypatch.setattr(sys, "argv", ["verify_access_tokens", "--version"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(main_file), run_name="__main__")
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out
    # And the real thing, as a user types it:
    done = subprocess.run(
        [sys.executable, "-m", "verify_access_tokens", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"verify-access-tokens {__version__}"


def test_emulator_command_serves_until_cancelled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_wait = asyncio.Event.wait

    async def short_wait(self: asyncio.Event) -> bool:
        raise asyncio.CancelledError  # what Ctrl-C does to the waiting task

    monkeypatch.setattr(asyncio.Event, "wait", short_wait)
    code, out, _ = run(capsys, "emulator", "--port", "0", "--seed", "1")
    monkeypatch.setattr(asyncio.Event, "wait", real_wait)
    assert code == 0
    assert "# Verify emulator listening on http://127.0.0.1:" in out
    assert "export TWILIO_AUTH_TOKEN=" in out


# --- enroll --------------------------------------------------------------------------------
def test_enroll_lines_file(
    emulator: VerifyEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(f"user-{i:06d}" for i in range(50)) + "\n\nnot valid!\n")
    out = tmp_path / "results.jsonl"
    code, _, err = enroll(capsys, emulator, source, out, "--ttl", "300", "--quiet")
    assert code == 0  # one identity failed for good: nothing a --resume could still enroll
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    rows = outcomes(out)
    assert len(rows) == 51
    sending = [r["identity"] for r in lines(out) if r["status"] == "sending"]
    # A line per request that left: the invalid identity was refused before sending.
    sent = [r["identity"] for r in rows if r["identity"] != "not valid!"]
    assert sorted(sending) == sorted(sent)  # type: ignore[type-var]
    created = [r for r in rows if r["status"] == "created"]
    assert len(created) == 50 == emulator.counters.tokens_created
    assert {r["token"] for r in created} == {t.token for t in emulator.tokens.values()}
    assert all(r["ttl"] == 300 for r in created)
    [failed] = [r for r in rows if r["status"] == "failed"]
    assert failed["identity"] == "not valid!"
    assert failed["error"]["class"] == "RequestValidationError"  # type: ignore[index]
    assert "enrolled 50, failed 1" in err


def test_enroll_csv_and_jsonl_and_stdin(
    emulator: VerifyEmulator,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    csv_file = tmp_path / "ids.csv"
    csv_file.write_text("identity,friendly_name\nuser-csv-0001,Pixel 8\nuser-csv-0002,\n")
    jsonl_file = tmp_path / "ids.jsonl"
    jsonl_file.write_text('{"identity": "user-json-0001", "ttl": 90}\n"user-json-0002"\n')
    for source in (csv_file, jsonl_file):
        out = tmp_path / f"{source.suffix[1:]}.out.jsonl"
        code, _, _ = enroll(capsys, emulator, source, out)
        assert code == 0
        assert all(r["status"] == "created" for r in outcomes(out))
    by_identity = {t.entity_identity: t for t in emulator.tokens.values()}
    assert by_identity["user-csv-0001"].factor_friendly_name == "Pixel 8"
    assert by_identity["user-csv-0002"].factor_friendly_name is None
    assert by_identity["user-json-0001"].ttl == 90
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("user-stdin-001\n"))
    out = tmp_path / "stdin.jsonl"
    code, _, _ = enroll(capsys, emulator, "-", out, "--rate-limit", "50")
    assert code == 0
    assert outcomes(out)[0]["identity"] == "user-stdin-001"


def test_enroll_rate_limit_adaptive_is_one_line_naming_what_to_use(
    emulator: VerifyEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("user-00000001\n")
    out = tmp_path / "out.jsonl"
    code, _, err = enroll(capsys, emulator, ids, out, "--rate-limit", "adaptive")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "--rate-limit" in err
    assert "leave --rate-limit out" in err
    assert emulator.counters.requests == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "name\nx\n", "'identity' column"),
        ("bad.jsonl", "{not json\n", "not valid JSON"),
        ("bad2.jsonl", '{"who": 1}\n', "'identity' key"),
    ],
)
def test_enroll_bad_input_files_exit_2(
    emulator: VerifyEmulator,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    content: str,
    message: str,
) -> None:
    source = tmp_path / name
    source.write_text(content)
    code, _, err = enroll(capsys, emulator, source, tmp_path / "o.jsonl")
    assert code == 2
    assert message in err


def test_enroll_refuses_to_overwrite_results_and_bad_rate(
    emulator: VerifyEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("user-000001\n")
    out = tmp_path / "results.jsonl"
    out.write_text('{"identity": "user-000000", "status": "created"}\n')
    code, _, err = enroll(capsys, emulator, source, out)
    assert code == 2
    assert "--resume" in err
    code, _, err = enroll(capsys, emulator, source, tmp_path / "new.jsonl", "--rate-limit", "fast")
    assert code == 2
    assert "--rate-limit" in err


def test_enroll_ctrl_c_then_resume_enrolls_everyone_once(
    emulator: VerifyEmulator,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from verify_access_tokens.cli.enroll import _journal

    identities = [f"user-{i:06d}" for i in range(300)]
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(identities) + "\n")
    out = tmp_path / "results.jsonl"
    real_record = _journal.result_record
    written = 0

    def record_then_ctrl_c(result: EnrollmentResult) -> dict[str, object]:
        nonlocal written
        written += 1
        if written == 100:  # a real SIGINT, a third of the way in
            os.kill(os.getpid(), signal.SIGINT)
        return real_record(result)

    monkeypatch.setattr(_journal, "result_record", record_then_ctrl_c)
    code, _, err = enroll(capsys, emulator, source, out, "--concurrency", "8")
    assert code == 130
    assert "finishing in-flight requests" in err
    assert "--resume" in err
    first = outcomes(out)
    assert 100 <= len(first) < 300
    assert all(r["status"] == "created" for r in first)
    assert emulator.counters.tokens_created == len(first)  # nothing in flight was lost
    monkeypatch.setattr(_journal, "result_record", real_record)
    code, _, err = enroll(capsys, emulator, source, out, "--resume")
    assert code == 0
    assert f"skipped {len(first)} already enrolled" in err
    assert sorted(str(r["identity"]) for r in outcomes(out)) == identities
    assert emulator.counters.tokens_created == 300
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_second_signal_aborts(emulator: VerifyEmulator) -> None:
    from verify_access_tokens.cli.enroll import _command as _enroll

    class FakeBatch:
        stopping = True

    with pytest.raises(KeyboardInterrupt):
        _enroll._on_signal(FakeBatch(), None)  # type: ignore[arg-type]


def test_enroll_progress_bar_on_a_tty(
    emulator: VerifyEmulator,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(f"user-{i:06d}" for i in range(20)) + "\n")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = enroll(capsys, emulator, source, tmp_path / "r.jsonl")
    assert code == 0
    assert "20/20" in err
    assert "errors=0" in err


def test_resume_after_a_crash_mid_line(
    emulator: VerifyEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("user-000001\nuser-000002\n")
    out = tmp_path / "results.jsonl"
    out.write_text('{"identity": "user-000001", "status": "created"}\n{"identity": "user-0000')
    code, _, err = enroll(capsys, emulator, source, out, "--resume")
    assert code == 0
    assert "skipped 1 already enrolled" in err
    lines = out.read_text().splitlines()
    assert lines[1] == '{"identity": "user-0000'  # the torn line stays as it was, on its own
    assert json.loads(lines[2])["record"] == "header"  # the resumed run's
    assert json.loads(lines[3])["identity"] == "user-000002"
    assert emulator.counters.tokens_created == 1


def test_emulator_printout_pastes_into_a_shell(tmp_path: Path) -> None:
    """Run ``emulator`` as a user would, paste what it prints into bash: the suggested command
    works with no other setting (exports, not bare assignments; the base URL included)."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "verify-access-tokens").exists()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "VERIFY_"))}
    clean["PATH"] = f"{bin_dir}{os.pathsep}{clean.get('PATH', '')}"
    server = subprocess.Popen(
        [sys.executable, "-m", "verify_access_tokens", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=clean,
    )
    try:
        assert server.stdout is not None
        printed: list[str] = []
        while not printed or not printed[-1].startswith("verify-access-tokens create"):
            line = server.stdout.readline()
            assert line, f"emulator exited early: {printed}"
            printed.append(line.rstrip("\n"))
        assert sum(line.startswith("export ") for line in printed) == 4
        pasted = subprocess.run(
            ["bash", "-c", "\n".join(printed)],
            capture_output=True,
            text=True,
            env=clean,
            cwd=tmp_path,
            timeout=60,
        )
        assert pasted.returncode == 0, pasted.stderr
        assert re.search(r"entity_identity +0123456789abcdef", pasted.stdout)
        assert MASK in pasted.stdout
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    assert server.returncode == 0  # Ctrl-C is how the emulator is meant to stop


def test_emulator_listening_everywhere_is_advertised_on_loopback() -> None:
    """The client refuses plain http off loopback, so the pasted base URL must be loopback."""
    from types import SimpleNamespace

    from verify_access_tokens.cli._output import emulator_printout as _emulator_printout

    listening = "http://0.0.0.0:8099"
    fake = SimpleNamespace(base_url=listening, account_sid="AC1", auth_token="t", service_sid="VA1")
    printed = _emulator_printout(fake)  # type: ignore[arg-type]
    assert "export VERIFY_ACCESS_TOKENS_BASE_URL=http://127.0.0.1:8099\n" in printed
    assert f"listening on {listening};" in printed
