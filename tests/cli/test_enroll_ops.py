"""``enroll`` and the other commands as an ops user runs them: real subprocesses, real sockets.

Expiry and resume, the write-ahead record and a SIGKILL mid-run, and inputs or environments
that used to end in a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers.cli import (
    cli,
    cli_env,
    created_line,
    enroll_argv,
    lines,
    outcomes,
)
from helpers.constants import ids

from verify_access_tokens import AccessToken, APITimeoutError, EnrollmentResult
from verify_access_tokens.cli._main import build_parser
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets


# --- expiry -----------------------------------------------------------------------------------
def test_expires_at_is_date_created_plus_ttl_in_utc() -> None:
    created = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    token = AccessToken("YK", "AC", "VA", "id", "push", "jwt", "url", 300, created)
    assert token.expires_at == dt.datetime(2026, 1, 1, 10, 5, tzinfo=dt.UTC)
    assert token.expires_at.tzinfo is dt.UTC


def test_every_created_line_has_expires_at(emulator: VerifyEmulator, tmp_path: Path) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(5)) + "\n")
    out = tmp_path / "r.jsonl"
    done = cli(*enroll_argv(emulator, source, out), "--ttl", "120", emulator=emulator)
    assert done.returncode == 0, done.stderr
    for record in outcomes(out):
        created = dt.datetime.fromisoformat(record["date_created"])
        assert dt.datetime.fromisoformat(record["expires_at"]) == created + dt.timedelta(
            seconds=120
        )


def test_resume_re_mints_expired_tokens_unless_kept(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    source = tmp_path / "ids.txt"
    source.write_text("user-expired\nuser-valid-1\nuser-new-001\n")
    out = tmp_path / "r.jsonl"
    previous = [
        created_line("user-expired", now - dt.timedelta(hours=1)),
        created_line("user-valid-1", now + dt.timedelta(minutes=4)),
    ]
    out.write_text("\n".join(previous) + "\n")
    kept = tmp_path / "kept.jsonl"
    kept.write_text(out.read_text())
    done = cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "skipped 1 already enrolled, re-minted 1 expired" in done.stderr
    assert sorted(t.entity_identity for t in emulator.tokens.values()) == [
        "user-expired",
        "user-new-001",
    ]
    done = cli(*enroll_argv(emulator, source, kept), "--resume", "--keep-expired",
               emulator=emulator)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "skipped 2 already enrolled" in done.stderr
    assert "re-minted" not in done.stderr
    assert emulator.counters.tokens_created == 3  # only user-new-001 again


# --- crash safety -----------------------------------------------------------------------------
def test_sigkill_mid_run_then_resume_loses_nobody_and_reports_the_in_flight(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    emulator.set_faults(Faults(latency=0.02))
    identities = ids(3000)
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(identities) + "\n")
    out = tmp_path / "r.jsonl"
    argv = [sys.executable, "-m", "verify_access_tokens",
            *enroll_argv(emulator, source, out), "--concurrency", "32", "--quiet"]  # fmt: skip
    process = subprocess.Popen(argv, env=cli_env(emulator), stderr=subprocess.DEVNULL)
    while not out.exists() or len(out.read_bytes().splitlines()) < 600:
        assert process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    in_flight = {r["identity"] for r in lines(out)} - {r["identity"] for r in outcomes(out)}
    assert 0 < len(in_flight) <= 32
    requests_before = Counter(t.entity_identity for t in emulator.tokens.values())

    done = cli(*enroll_argv(emulator, source, out), "--resume", "--quiet", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert f"re-sent {len(in_flight)} in flight" in done.stderr
    created = Counter(t.entity_identity for t in emulator.tokens.values())
    assert set(created) == set(identities)  # 0 lost
    twice = {identity for identity, n in created.items() if n > 1}
    assert twice <= in_flight  # duplicates only among the reported in-flight identities
    final = {r["identity"]: r["status"] for r in outcomes(out)}
    assert set(final) == set(identities)
    assert set(final.values()) == {"created"}
    resent = {i for i in in_flight if created[i] > requests_before[i]}
    assert resent == in_flight  # every reported one was sent again


def test_results_file_mode_is_set_at_creation(emulator: VerifyEmulator, tmp_path: Path) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("user-000001\n")
    out = tmp_path / "r.jsonl"
    argv = [sys.executable, "-c",
            "import os, sys; os.umask(0); from verify_access_tokens.cli._main import main; "
            "sys.exit(main(sys.argv[1:]))", *enroll_argv(emulator, source, out)]  # fmt: skip
    done = subprocess.run(argv, env=cli_env(emulator), capture_output=True, check=False)
    assert done.returncode == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


# --- no tracebacks ----------------------------------------------------------------------------
def test_excel_csv_with_bom_crlf_and_capitalised_header(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "ids.csv"
    source.write_bytes(
        b"\xef\xbb\xbfIdentity,Friendly_Name\r\nuser-000001,Pixel\r\nuser-000002,\r\n"
    )
    out = tmp_path / "r.jsonl"
    done = cli(*enroll_argv(emulator, source, out), emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert sorted(r["identity"] for r in outcomes(out)) == ["user-000001", "user-000002"]
    names = {t.entity_identity: t.factor_friendly_name for t in emulator.tokens.values()}
    assert names == {"user-000001": "Pixel", "user-000002": None}


def test_invalid_utf8_names_the_line(emulator: VerifyEmulator, tmp_path: Path) -> None:
    source = tmp_path / "ids.txt"
    source.write_bytes(b"user-000001\nuser-\xff\xfe0002\n")
    done = cli(*enroll_argv(emulator, source, tmp_path / "r.jsonl"), emulator=emulator)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: INPUT: line 2 is not valid UTF-8"


def test_invalid_utf8_from_a_pipe_names_the_line(emulator: VerifyEmulator, tmp_path: Path) -> None:
    """A pipe is read by a background thread: its errors still end the run in one line."""
    done = subprocess.run(
        [sys.executable, "-m", "verify_access_tokens",
         *enroll_argv(emulator, "-", tmp_path / "r.jsonl")],
        input=b"user-000001\nuser-\xff\xfe0002\n", capture_output=True,
        env=cli_env(emulator), timeout=120, check=False,
    )  # fmt: skip
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr
    assert done.returncode == 2
    assert stderr.strip().splitlines()[-1] == "error: INPUT: line 2 is not valid UTF-8"


def test_jsonl_identity_of_the_wrong_type_is_that_lines_result(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "ids.jsonl"
    source.write_text('{"identity": ["a"]}\n{"identity": 12345678}\n"user-000001"\n')
    out = tmp_path / "r.jsonl"
    done = cli(*enroll_argv(emulator, source, out), emulator=emulator)
    assert done.returncode == 0  # failed for good: nothing is left that could still succeed
    by_identity = {r["identity"]: r for r in outcomes(out)}
    assert by_identity["user-000001"]["status"] == "created"
    for bad in ("['a']", "12345678"):
        assert by_identity[bad]["status"] == "failed"
        assert by_identity[bad]["error"]["class"] == "RequestValidationError"


@pytest.mark.parametrize("where", ["missing/r.jsonl", "."])
def test_out_in_a_missing_directory_or_a_directory(
    emulator: VerifyEmulator, tmp_path: Path, where: str
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("user-000001\n")
    done = cli(*enroll_argv(emulator, source, tmp_path / where), emulator=emulator)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --out: ")
    assert len(done.stderr.strip().splitlines()) == 1


def test_emulator_on_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = cli("emulator", "--port", str(busy.getsockname()[1]))
    assert done.returncode == 2
    assert done.stderr.startswith("error: --port: cannot listen on 127.0.0.1:")


@pytest.mark.parametrize("command", ["create", "fetch", "demo", "enroll"])
def test_output_closed_early_is_one_line(
    emulator: VerifyEmulator, tmp_path: Path, command: str
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(200)) + "\n")
    created = cli("create", emulator.service_sid, "--identity", "user-000002", "--json",
                  "--base-url", emulator.base_url, emulator=emulator)  # fmt: skip
    sid = json.loads(created.stdout)["sid"]
    argv = {
        "create": ["create", emulator.service_sid, "--identity", "user-000001",
                   "--base-url", emulator.base_url],
        "fetch": ["fetch", emulator.service_sid, sid, "--base-url", emulator.base_url],
        "demo": ["demo", "--identities", "20"],
        "enroll": enroll_argv(emulator, source, "-"),
    }[command]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "verify_access_tokens", *argv],
        env=cli_env(emulator),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # like `| head` that has read all it wanted
    _, err = process.communicate(timeout=120)
    assert "Traceback" not in err
    assert "Exception ignored" not in err
    assert process.returncode == 1
    assert err.strip().splitlines()[-1] == "error: output closed before everything was written"


def test_errors_name_the_flag_or_environment_variable(emulator: VerifyEmulator) -> None:
    done = cli("demo", "--concurrency", "0")
    assert done.stderr.startswith("error: --concurrency: ")
    done = cli("create", emulator.service_sid, "--identity", "user-000001", "--ttl", "5",
               "--base-url", emulator.base_url, emulator=emulator)  # fmt: skip
    assert done.stderr.startswith("error: --ttl: ")
    done = cli("create", emulator.service_sid, "--identity", "user-000001",
               emulator=emulator, TWILIO_REGION="Not A Region")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: TWILIO_REGION: ")


def test_every_option_has_help_and_shows_its_default() -> None:
    parser = build_parser()
    [commands] = [
        a for a in parser._actions if isinstance(a, type(parser._subparsers._actions[-1]))
    ]  # type: ignore[union-attr]
    for name, sub in commands.choices.items():  # type: ignore[attr-defined]
        for action in sub._actions:
            assert action.help, (name, action.dest)
    text = cli("enroll", "--help", COLUMNS="200").stdout
    assert "(default: adaptive)" in text
    assert "(default: auto)" in text
    assert "(default: 8099)" in cli("emulator", "--help", COLUMNS="200").stdout


def test_progress_lines_without_tqdm(
    emulator: VerifyEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from verify_access_tokens.cli._main import main
    from verify_access_tokens.cli.enroll import _progress as _enroll_progress

    monkeypatch.setitem(sys.modules, "tqdm", None)  # as without the cli extra
    monkeypatch.setattr(_enroll_progress, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", emulator.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", emulator.auth_token)
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(5)) + "\n")
    assert main(enroll_argv(emulator, source, tmp_path / "r.jsonl")) == 0
    progress = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("progress:")]
    assert progress[-1].startswith("progress: 5/5 done, 0 failed, ")
    assert progress[-1].endswith("/s")


@pytest.mark.parametrize(
    ("previous", "skipped"),
    [
        ('{"identity":"user-000001","status":"created","expires_at":"2099-01-01T00:00:00"}', 1),
        ('{"identity":"user-000001","status":"created","date_created":'
         '"2024-01-01T00:00:00+00:00","ttl":1e300}', 1),
        ('{"identity":"user-000001","status":"created","date_created":'
         '"2024-01-01T00:00:00+00:00","ttl":100000000000000}', 1),
        ('{"identity":"user-000001","status":"created","date_created":'
         '"9999-12-31T23:59:00+00:00","ttl":300}', 1),
        ("[" * 100_000, 0),
    ],
    ids=["naive expires_at", "ttl 1e300", "ttl 1e14", "date_created near max", "deep"],
)  # fmt: skip
def test_resume_reads_odd_records_without_a_traceback(
    emulator: VerifyEmulator, tmp_path: Path, previous: str, skipped: int
) -> None:
    """An expiry that cannot be read counts as valid (skipped, as a record without one);
    a line that cannot be parsed is no record (that identity is sent again)."""
    source = tmp_path / "ids.txt"
    source.write_text("user-000001\n")
    out = tmp_path / "r.jsonl"
    out.write_text(previous + "\n")
    done = cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert f"skipped {skipped} already enrolled" in done.stderr
    assert emulator.counters.tokens_created == 1 - skipped


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("identity\nuser-000001\n" + "x" * 200_000 + "\n",
         "error: INPUT: line 3: field larger than field limit (131072)"),
    ],
    ids=["huge field"],
)  # fmt: skip
def test_csv_that_cannot_be_parsed_names_the_line(
    emulator: VerifyEmulator, tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "ids.csv"
    source.write_text(content)
    done = cli(*enroll_argv(emulator, source, tmp_path / "r.jsonl"), emulator=emulator)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == message


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_results_file_that_cannot_be_written_is_one_line(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(3)) + "\n")
    done = cli(*enroll_argv(emulator, source, "/dev/full"), emulator=emulator)
    assert done.returncode == 2
    *summary, error = done.stderr.splitlines()  # every exit has its summary
    assert summary[-1] == "3 lines read: 3 identities"
    assert error == "error: --out: cannot write /dev/full: No space left on device"


def test_odd_records_in_process(tmp_path: Path) -> None:
    """The same rules as above, in process: an unreadable expiry counts as valid."""
    from verify_access_tokens.cli.enroll._resume import DONE, EXPIRED, read_index

    out = tmp_path / "r.jsonl"
    out.write_text(
        '{"identity":"naive","status":"created","expires_at":"2099-01-01T00:00:00"}\n'
        '{"identity":"huge","status":"created","date_created":"2024-01-01T00:00:00+00:00",'
        '"ttl":1e300}\n'
        '{"identity":"old","status":"created","expires_at":"2000-01-01T00:00:00+00:00"}\n'
        + "[" * 100_000
        + "\n"
    )
    index = read_index(out.read_bytes().splitlines(), now=dt.datetime.now(dt.UTC),
                       keep_expired=False, retry_failed_all=False)  # fmt: skip
    assert index.states == {"naive": DONE, "huge": DONE, "old": EXPIRED}


class _FailingStream(io.StringIO):
    """A results stream on a full disk (or whose reader went away)."""

    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error

    def flush(self) -> None:
        raise self.error

    def fileno(self) -> int:
        return 1

    def close(self) -> None:
        if not self.closed:
            super().close()
            if self.error.errno == errno.ENOSPC:
                raise self.error  # what was left buffered cannot be written either


def test_journal_write_errors_are_one_configuration_error(tmp_path: Path) -> None:
    from verify_access_tokens import ConfigurationError
    from verify_access_tokens.cli.enroll._journal import Journal
    from verify_access_tokens.cli.enroll._results_file import ResultsFile

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    stream = _FailingStream(full)
    journal = Journal("r.jsonl", stream, regular=True)
    for write in (lambda: journal.sending("user-000001"), journal.sync):
        with pytest.raises(ConfigurationError) as caught:
            write()
        assert str(caught.value.rule) == "cannot write r.jsonl: No space left on device"
    with contextlib.suppress(OSError):
        stream.close()
    opened = ResultsFile(str(tmp_path / "r.jsonl"), resume=False)
    opened.stream.close()
    opened.stream = _FailingStream(full)  # what close() flushes cannot be written
    with pytest.raises(ConfigurationError, match=r"cannot write .*r\.jsonl"):
        opened.close()


async def test_a_pipe_whose_reader_went_away_is_reported_as_closed_output() -> None:
    from verify_access_tokens.cli.enroll._journal import Journal

    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as stream:
        piped = Journal("-", stream, regular=False)
        piped.sending("user-000001")  # a pipe gets no write-ahead lines
        piped.sync()  # nor an fsync
        unsent = APITimeoutError("waited", method="POST", url="u", request_sent=False)
        piped.record(EnrollmentResult("user-000001", error=unsent))  # queued for the thread
        with pytest.raises(BrokenPipeError):  # main() reports a closed stdout as such
            await piped.undelivered(5.0)


def test_a_pausing_pipe_on_stdin_holds_neither_requests_nor_ctrl_c(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """The producer sends 5 identities and then goes quiet, pipe still open: the 5 requests
    finish and are recorded, and Ctrl-C stops the run at once, without waiting for more input."""
    out = tmp_path / "r.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "verify_access_tokens",
         *enroll_argv(emulator, "-", out), "--concurrency", "4", "--quiet"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(emulator),
    )  # fmt: skip
    assert process.stdin is not None
    assert process.stderr is not None
    process.stdin.write(b"".join(f"pipe-user-{i:04d}\n".encode() for i in range(5)))
    process.stdin.flush()  # and nothing more: the producer pauses with the pipe open
    try:
        deadline = 300  # polls of 0.1 s: a hang guard, not a measurement
        while sum(r["status"] == "created" for r in (lines(out) if out.exists() else [])) < 5:
            assert deadline > 0, "the requests waited for more input"
            deadline -= 1
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
    finally:
        process.kill()
        process.stdin.close()
    with process.stderr:
        assert "Traceback" not in process.stderr.read().decode()
    records = lines(out)
    assert sorted(r["identity"] for r in records if r["status"] == "created") == [
        f"pipe-user-{i:04d}" for i in range(5)
    ]
