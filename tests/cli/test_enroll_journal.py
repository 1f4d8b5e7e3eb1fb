"""``enroll`` as an operations tool: one journal per run, safe inputs, a systemic stop,
never-sent items, permanent failures at rest, and ``report``; each run as a user runs it, a
subprocess against the emulator over a real socket.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from helpers.cli import (
    cli,
    cli_env,
    created_line,
    enroll_argv,
    headers,
    lines,
    one_line_error,
    outcomes,
    tokens_of,
    write_ids,
)
from helpers.constants import ids

from verify_access_tokens import (
    APIStatusError,
    APITimeoutError,
    EnrollmentResult,
)
from verify_access_tokens.cli.enroll._journal import result_record
from verify_access_tokens.cli.enroll._resume import read_index
from verify_access_tokens.cli.enroll._tally import Tally
from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets
OTHER_SERVICE = "VA" + "1" * 32


# --- the input is read once, as a stream ---------------------------------------------------------
def test_process_substitution_dev_stdin_and_a_fifo_are_read_once(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: `<(cmd)` enrolled 0 and exited 0; a FIFO hung. After: every line is enrolled."""
    argv = [
        sys.executable,
        "-m",
        "verify_access_tokens",
        *enroll_argv(emulator, "<(printf 'user-000001\\nuser-000002\\n')", tmp_path / "a"),
    ]
    script = " ".join(a if a.startswith("<(") else shlex.quote(a) for a in argv)  # fmt: skip
    done = subprocess.run(["bash", "-c", script], env=cli_env(emulator), capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "enrolled 2, failed 0" in done.stderr
    done = cli(*enroll_argv(emulator, "/dev/stdin", tmp_path / "b"), stdin=b"user-000003\n",
               emulator=emulator)  # fmt: skip
    assert done.returncode == 0, done.stderr
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)

    def produce() -> None:
        with fifo.open("w") as writer:
            writer.write("user-000004\nuser-000005\n")

    producer = threading.Thread(target=produce)
    producer.start()
    done = cli(*enroll_argv(emulator, fifo, tmp_path / "c"), emulator=emulator)
    producer.join()
    assert done.returncode == 0, done.stderr
    assert tokens_of(emulator) == [f"user-00000{i}" for i in range(1, 6)]


# --- one run owns the results file --------------------------------------------------------------
def test_an_input_that_is_the_results_file_is_refused(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: an endless loop minting tokens. After: exit 2 before any request."""
    out = tmp_path / "r.jsonl"
    assert cli(*enroll_argv(emulator, write_ids(tmp_path / "i.txt", ids(2)), out),
               emulator=emulator).returncode == 0  # fmt: skip
    link = tmp_path / "link.jsonl"
    link.symlink_to(out)
    requests = emulator.counters.requests
    for source in (out, link):
        done = cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator)
        one_line_error(done, 2, "error: INPUT: ")
        assert "is the results file" in done.stderr
    with out.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "verify_access_tokens",
                               *enroll_argv(emulator, "-", out), "--resume"], stdin=stdin,
                              capture_output=True, text=True, env=cli_env(emulator),
                              timeout=120, check=False)  # fmt: skip
    one_line_error(done, 2, "error: INPUT: stdin is the results file")
    assert emulator.counters.requests == requests


def test_a_second_run_on_the_same_results_file_exits_2(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: two --resume runs minted most identities twice. After: the second exits 2."""
    source = write_ids(tmp_path / "ids.txt", ids(100))
    out = tmp_path / "r.jsonl"
    # The first run reads a pipe the test holds open: it cannot finish before the second ran.
    argv = [*enroll_argv(emulator, "-", out), "--concurrency", "2", "--quiet"]
    first = subprocess.Popen([sys.executable, "-m", "verify_access_tokens", *argv],
                             stdin=subprocess.PIPE, env=cli_env(emulator),
                             stderr=subprocess.DEVNULL)  # fmt: skip
    assert first.stdin is not None
    try:
        first.stdin.write("".join(f"{i}\n" for i in ids(100)[:3]).encode())
        first.stdin.flush()
        while not outcomes(out) if out.exists() else True:
            assert first.poll() is None
            time.sleep(0.02)
        done = cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator)
        one_line_error(done, 2, "error: --out: ")
        assert "in use by another enroll run" in done.stderr
        first.stdin.write("".join(f"{i}\n" for i in ids(100)[3:]).encode())
        first.stdin.close()
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
    assert tokens_of(emulator) == ids(100)  # each once


# --- the journal states what it belongs to ------------------------------------------------------
def test_resume_against_another_service_is_refused_and_a_new_ttl_is_said(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: another SERVICE_SID or --ttl "skipped 20 already enrolled". After: refused, or
    applied to what is left and said."""
    out = tmp_path / "r.jsonl"
    source = write_ids(tmp_path / "ids.txt", ids(2))
    done = cli(*enroll_argv(emulator, source, out), "--ttl", "300", emulator=emulator)
    assert done.returncode == 0, done.stderr
    [header] = headers(out)
    assert header["service_sid"] == emulator.service_sid
    assert header["account_sid"] == emulator.account_sid
    assert header["ttl"] == 300
    assert set(header) >= {"friendly_name", "tool_version", "started_at"}
    assert emulator.auth_token not in out.read_text()
    argv = enroll_argv(emulator, source, out)
    argv[1] = OTHER_SERVICE
    done = cli(*argv, "--resume", emulator=emulator)
    one_line_error(done, 2, "error: --resume: ")
    assert emulator.service_sid in done.stderr
    assert OTHER_SERVICE in done.stderr
    write_ids(source, ids(3))
    done = cli(*enroll_argv(emulator, source, out), "--resume", "--ttl", "120", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "ttl changed from 300 s to 120 s for the identities still to send" in done.stderr
    assert [t.ttl for t in emulator.tokens.values() if t.entity_identity == ids(3)[2]] == [120]


# --- resume in bounded memory -------------------------------------------------------------------
def test_the_resume_index_keeps_no_record(tmp_path: Path) -> None:
    """Before: each identity's whole last record (JWT included) was kept: ~2 KB each. After: a
    small int per identity (benchmarks/bench_resume.py measures 1 000 000)."""
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4)
    record = json.loads(created_line("x", expires))
    record["token"] = "eyJ" + "a" * 600
    journal = [json.dumps({**record, "identity": f"user-{i:08d}"}).encode() for i in range(20000)]
    tracemalloc.start()
    try:
        index = read_index(journal, now=dt.datetime.now(dt.UTC), keep_expired=False,
                           retry_failed_all=False)  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index.states) == 20000
    assert set(index.states.values()) == {0}  # DONE, a shared small int
    assert peak / 20000 < 250  # bytes per identity: its name and a dict slot


# --- the results file's mode, symlinks, directories ---------------------------------------------
def test_an_existing_results_file_is_brought_to_0600_and_a_symlink_refused(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: tokens went into a 0644 file, or through a symlink. After: 0600, or refused."""
    source = write_ids(tmp_path / "ids.txt", ids(1))
    out = tmp_path / "r.jsonl"
    out.touch(mode=0o644)
    out.chmod(0o644)
    done = cli(*enroll_argv(emulator, source, out), emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    target = tmp_path / "elsewhere.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    done = cli(*enroll_argv(emulator, source, link), emulator=emulator)
    one_line_error(done, 2, "error: --out: ")
    assert "is a symbolic link" in done.stderr
    assert not target.exists()


def test_out_a_directory_with_resume_is_one_line(emulator: VerifyEmulator, tmp_path: Path) -> None:
    """Before: a traceback. After: one line naming --out, exit 2."""
    source = write_ids(tmp_path / "ids.txt", ids(1))
    done = cli(*enroll_argv(emulator, source, tmp_path), "--resume", emulator=emulator)
    one_line_error(done, 2, "error: --out: ")
    assert "is a directory" in done.stderr


# --- stop on a systemic failure -----------------------------------------------------------------
def test_wrong_credentials_stop_the_run_after_n_failures_in_a_row(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: all 20 000 sent and failed. After: N failures in a row stop it, naming the cause;
    nothing never taken is counted as failed."""
    source = write_ids(tmp_path / "ids.txt", ids(500))
    out = tmp_path / "r.jsonl"
    done = cli(*enroll_argv(emulator, source, out), "--max-consecutive-failures", "5",
               "--concurrency", "2", emulator=emulator,
               TWILIO_AUTH_TOKEN="0" * 32)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "stopped: authentication failed 5 times in a row: check "
        "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN"
    )
    failed = outcomes(out)
    assert 5 <= len(failed) <= 5 + 2  # in flight when it stopped: finished and recorded
    assert len(failed) == emulator.counters.requests
    assert {r["error"]["http_status"] for r in failed} == {401}
    assert f"failed {len(failed)}: {len(failed)} AuthenticationError" in done.stderr


# --- duplicates ---------------------------------------------------------------------------------
def test_a_repeated_identity_is_enrolled_once_unless_allowed(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: 3 tokens, no word. After: 1 token, and the summary counts the repeats."""
    source = write_ids(tmp_path / "ids.txt", ["user-000001"] * 3 + ["user-000002"])
    done = cli(*enroll_argv(emulator, source, tmp_path / "a"), emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "2 repeated identities in INPUT skipped" in done.stderr
    assert tokens_of(emulator) == ["user-000001", "user-000002"]
    done = cli(*enroll_argv(emulator, source, tmp_path / "b"), "--allow-duplicates",
               emulator=emulator)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert tokens_of(emulator).count("user-000001") == 4


# --- inputs are what the user meant -------------------------------------------------------------
def test_an_identity_header_is_a_header_in_any_file_and_on_stdin(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: "Identity" enrolled as a user. After: taken as a header, with a note."""
    (tmp_path / "ids.txt").write_text("Identity\nuser-000001\n")
    (tmp_path / "ids").write_text("identity,Friendly Name\nuser-000002,Pixel\n")
    done = cli(*enroll_argv(emulator, tmp_path / "ids.txt", tmp_path / "a"), emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "note: INPUT: its first line 'Identity' is taken as a header" in done.stderr
    done = cli(*enroll_argv(emulator, tmp_path / "ids", tmp_path / "b"), emulator=emulator)
    assert done.returncode == 0, done.stderr
    done = cli(*enroll_argv(emulator, "-", tmp_path / "s.jsonl"),
               stdin=b"IDENTITY;Email\nuser-000003;a@example.com\n", emulator=emulator)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "note: INPUT: ignoring the columns 'Email'" in done.stderr
    assert tokens_of(emulator) == ["user-000001", "user-000002", "user-000003"]


def test_friendly_name_columns_and_semicolons_are_read(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: `Friendly Name` ignored; `;` said "needs an 'identity' column". After: both read;
    an unusable header names the delimiters tried."""
    for n, (header, sep) in enumerate([("Identity,Friendly Name", ","),
                                       ("identity;FactorFriendlyName", ";"),
                                       ("friendly_name\tIdentity", "\t")]):  # fmt: skip
        first, second = header.split(sep)
        row = sep.join("Pixel" if "riendly" in c else f"user-00000{n}" for c in (first, second))
        source = tmp_path / f"{n}.csv"
        source.write_text(f"{header}\n{row}\n")
        done = cli(*enroll_argv(emulator, source, tmp_path / f"{n}.jsonl"), emulator=emulator)
        assert done.returncode == 0, done.stderr
    names = {t.entity_identity: t.factor_friendly_name for t in emulator.tokens.values()}
    assert names == {f"user-00000{n}": "Pixel" for n in range(3)}
    (tmp_path / "bad.csv").write_text("user|name\nx|y\n")
    done = cli(*enroll_argv(emulator, tmp_path / "bad.csv", tmp_path / "x"), emulator=emulator)
    one_line_error(done, 2, "error: INPUT: a CSV input needs a header with an 'identity' column")
    assert "',' ';' or a tab" in done.stderr
    done = cli(*enroll_argv(emulator, write_ids(tmp_path / "i.txt", ["ana@example.com"]),
                            tmp_path / "y"), emulator=emulator)  # fmt: skip
    assert "ASCII letters and digits" in outcomes(tmp_path / "y")[0]["error"]["message"]


# --- never sent is not failed -------------------------------------------------------------------
def test_an_item_whose_request_never_left_is_not_sent_not_failed() -> None:
    """`not_sent`, out of the failed count, sent again by --resume."""
    tally = Tally()
    timeout = APITimeoutError("waited too long", method="POST", url="u", request_sent=False)
    record = result_record(EnrollmentResult("user-000001", error=timeout))
    assert record["status"] == "not_sent"
    assert record["error"]["retryable"] is True
    tally.count(record)
    assert (tally.not_sent, tally.failed_total, tally.left) == (1, 0, 1)
    index = read_index([json.dumps(record).encode()], now=dt.datetime.now(dt.UTC),
                       keep_expired=False, retry_failed_all=False)  # fmt: skip
    assert index.state("user-000001") == 3  # RETRY


def test_ctrl_c_in_a_paced_run_leaves_items_waiting_for_their_turn_unread(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """An item is read only when it can be sent: Ctrl-C leaves the rest for --resume, with
    nothing failed and no item recorded without being sent."""
    source = write_ids(tmp_path / "ids.txt", ids(20))
    out = tmp_path / "r.jsonl"
    argv = [*enroll_argv(emulator, source, out), "--rate-limit", "0.5", "--concurrency", "8",
            "--quiet"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "verify_access_tokens", *argv],
        env=cli_env(emulator),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not (out.exists() and outcomes(out)):
            assert process.poll() is None
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Traceback" not in err
    records = outcomes(out)
    assert {r["status"] for r in records} == {"created"}  # the waiting ones were never read
    assert "failed 0" in err
    created = {r["identity"] for r in records if r["status"] == "created"}
    assert created == set(tokens_of(emulator))
    assert len(created) < 20
    sending = {r["identity"] for r in lines(out) if r["status"] == "sending"}
    assert sending == created  # nothing stopped before the wire has a `sending` line
    done = cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "re-sent" not in done.stderr  # nothing was in flight: no possible duplicate
    assert tokens_of(emulator) == ids(20)


# --- permanent failures rest --------------------------------------------------------------------
def test_a_permanent_failure_is_not_retried_by_resume(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: retried on every resume, never exit 0. After: kept as final, exit 0, unless
    --retry-failed all."""
    source = write_ids(tmp_path / "ids.txt", ["user-000001", "not valid!"])
    out = tmp_path / "r.jsonl"
    done = cli(*enroll_argv(emulator, source, out), emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "failed 1: 1 RequestValidationError (1 for good" in done.stderr
    done = cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "kept 1 failed for good (--retry-failed all sends them again)" in done.stderr
    assert len(outcomes(out)) == 2
    done = cli(*enroll_argv(emulator, source, out), "--resume", "--retry-failed", "all",
               emulator=emulator)  # fmt: skip
    assert [r["identity"] for r in outcomes(out)][2:] == ["not valid!"]


# --- finding out what failed, in prose ---------------------------------------------------------
def test_report_gives_last_outcomes_and_the_causes_status_and_code(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: two lines per identity, `code: null` on unknown rows. After: `report`, and the
    cause's HTTP status and Twilio code on every failure record."""
    out = tmp_path / "r.jsonl"
    source = write_ids(tmp_path / "ids.txt", ids(3))
    emulator.set_faults(Faults(error_rate=1.0))
    done = cli(*enroll_argv(emulator, source, out), emulator=emulator)
    assert done.returncode == 1  # unknown outcomes could still succeed
    assert all(r["error"]["code"] == 20503 for r in outcomes(out))
    emulator.set_faults(Faults())
    write_ids(source, [*ids(3), "not valid!"])
    assert cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator,
               ).returncode == 0  # fmt: skip
    report = cli("report", str(out), "--format", "jsonl")
    assert report.returncode == 0
    assert [json.loads(row) for row in report.stdout.splitlines()] == [
        {"status": "created", "error_class": None, "http_status": None, "code": None, "count": 3},
        {"status": "failed", "error_class": "RequestValidationError", "http_status": None,
         "code": None, "count": 1},
    ]  # fmt: skip
    failures = cli("report", str(out), "--failures", "--format", "csv").stdout.splitlines()
    assert failures[0] == "identity,status,error_class,http_status,code,message"
    assert failures[1].startswith('not valid!,failed,RequestValidationError,,,"identity: ')
    table = cli("report", str(tmp_path / "r.jsonl")).stdout
    # The 503s were unknown outcomes: the identities created after them may hold two tokens.
    assert table.startswith(
        f"4 identities in {out}: 3 created, 1 failed; 3 possibly duplicated (--duplicates)\n"
    )
    assert "None" not in table


def test_the_summary_and_messages_are_prose(emulator: VerifyEmulator, tmp_path: Path) -> None:
    """Before: `{'OutcomeUnknownError': 159}`, "must be None, ...". After: prose."""
    emulator.set_faults(Faults(error_rate=1.0))
    source = write_ids(tmp_path / "ids.txt", ids(2))
    done = cli(*enroll_argv(emulator, source, tmp_path / "r"), emulator=emulator)
    assert "failed 2: 2 OutcomeUnknownError (unknown outcome)," in done.stderr
    assert "{" not in done.stderr
    for flag, value in [("--rate-limit", "0"), ("--rate-limit", "inf"), ("--ttl", "5")]:
        done = cli(*enroll_argv(emulator, source, tmp_path / "x"), flag, value,
                   emulator=emulator)  # fmt: skip
        one_line_error(done, 2, f"error: {flag}: ")
        assert "None" not in done.stderr


# --- no traceback -------------------------------------------------------------------------------
@pytest.mark.parametrize("port", ["-1", "99999"])
def test_bad_ports_for_emulator_and_serve_are_one_line(port: str) -> None:
    """Before: a traceback. After: one line naming --port, exit 2."""
    one_line_error(cli("emulator", "--port", port), 2, "error: --port: must be 0-65535")
    one_line_error(cli("serve", "--emulator", "--port", port), 2, "error: --port: must be 0-65535")


def test_serve_on_a_busy_port_or_a_bad_host_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = cli("serve", "--emulator", "--port", str(busy.getsockname()[1]))
    one_line_error(done, 2, "error: --port: cannot listen on 127.0.0.1:")
    done = cli("serve", "--emulator", "--host", "no-such-host.invalid")
    one_line_error(done, 2, "error: --host: cannot listen on no-such-host.invalid")


def test_a_read_error_on_input_is_one_line(emulator: VerifyEmulator, tmp_path: Path) -> None:
    """EIO: Linux's /proc/self/mem answers a read at offset 0 with it, like a failing disk."""
    done = cli(*enroll_argv(emulator, "/proc/self/mem", tmp_path / "r.jsonl"), emulator=emulator)
    one_line_error(done, 2, "error: INPUT: cannot read /proc/self/mem: Input/output error")


# --- a resume that re-mints says why ------------------------------------------------------------
def test_resume_names_the_ttl_and_keep_expired_when_it_re_mints(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: "re-minted 12 888 expired", no word why. After: the ttl and --keep-expired."""
    out = tmp_path / "r.jsonl"
    out.write_text(created_line("user-000001", dt.datetime.now(dt.UTC)
                                - dt.timedelta(minutes=5)) + "\n")  # fmt: skip
    source = write_ids(tmp_path / "ids.txt", ["user-000001"])
    done = cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert (
        "re-minted 1 expired (a token lives its ttl, the default, 60 s; --keep-expired skips "
        "the ones you delivered)"
    ) in done.stderr


# --- SERVICE_SID from the environment -----------------------------------------------------------
def test_create_fetch_and_enroll_take_service_sid_from_the_environment(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    env = {"VERIFY_SERVICE_SID": emulator.service_sid}
    created = cli("create", "--identity", "user-000001", "--json", "--base-url",
                  emulator.base_url, emulator=emulator, **env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    sid = json.loads(created.stdout)["sid"]
    fetched = cli("fetch", sid, "--base-url", emulator.base_url, emulator=emulator, **env)
    assert fetched.returncode == 0, fetched.stderr
    source = write_ids(tmp_path / "ids.txt", ["user-000002"])
    done = cli("enroll", str(source), "--out", str(tmp_path / "r"), "--base-url",
               emulator.base_url, emulator=emulator, **env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert tokens_of(emulator) == ["user-000001", "user-000002"]
    one_line_error(cli("create", "--identity", "user-000003", emulator=emulator), 2,
                   "error: SERVICE_SID: missing: pass it or set VERIFY_SERVICE_SID")  # fmt: skip
    assert lines(tmp_path / "r")[-1]["status"] == "created"


def test_progress_has_a_total_only_for_a_regular_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pipe is not read ahead to count it: its progress counts up without a total."""
    from verify_access_tokens.cli.enroll import _progress as _enroll_progress
    from verify_access_tokens.cli.enroll._input_stream import InputStream

    source = write_ids(tmp_path / "ids.txt", ["identity", *ids(3)])
    with InputStream(str(source)) as regular:
        assert regular.regular
        assert len(list(regular.lines_at_rest())) == 4  # read with pread ...
        assert len(list(regular.lines())) == 4  # ... so the run still reads every line
    reader, writer = os.pipe()
    os.write(writer, b"user-000001\n")
    os.close(writer)
    with InputStream(f"/dev/fd/{reader}") as pipe:
        assert not pipe.regular  # not read ahead: no total
        assert list(pipe.lines()) == [b"user-000001\n"]
    os.close(reader)
    monkeypatch.setattr(_enroll_progress, "PROGRESS_EVERY", 0.0)
    bar = _enroll_progress.ProgressLines(None)
    bar.update(1)
    assert capsys.readouterr().err.startswith("progress: 1 done, 0 failed, ")


def test_systemic_stop_names_each_cause_and_resets_on_anything_else() -> None:
    from verify_access_tokens import AuthenticationError, NotFoundError, PermissionDeniedError
    from verify_access_tokens.cli.enroll._tally import SystemicStop

    def error(kind: type[APIStatusError], status: int, code: int | None) -> APIStatusError:
        return kind(status=status, message="no", method="POST", url="u", code=code)

    never = SystemicStop(0, OTHER_SERVICE)
    assert not any(never.observe(error(AuthenticationError, 401, 20003)) for _ in range(50))
    for kind, status, code, cause in [
        (PermissionDeniedError, 403, None, f"permission denied 2 times in a row: check that "
                                           f"these credentials may use {OTHER_SERVICE}"),
        (NotFoundError, 404, 20404, f"service {OTHER_SERVICE} not found 2 times in a row: "
                                    "check SERVICE_SID"),
    ]:  # fmt: skip
        stop = SystemicStop(2, OTHER_SERVICE)
        assert not stop.observe(error(kind, status, code))
        assert not stop.observe(None)  # a success ends the streak
        assert not stop.observe(error(kind, status, code))
        assert stop.observe(error(kind, status, code))
        assert stop.reason == cause
        assert not stop.observe(error(kind, status, code))  # said once


def test_report_table_of_failures_and_errors_in_one_line(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    source = write_ids(tmp_path / "ids.txt", ["user-000001", "not valid!"])
    assert cli(*enroll_argv(emulator, source, out), emulator=emulator).returncode == 0
    with out.open("a") as journal:
        journal.write('{"identity": "user-000002", "status": "sending"}\n{"identity": "user-0')
    table = cli("report", str(out), "--failures").stdout.splitlines()
    assert table[0] == f"3 identities in {out}: 1 created, 1 failed, 1 sending"
    assert table[1].split() == ["identity", "status", "error_class", "http_status", "code",
                                "message"]  # fmt: skip
    assert table[2].split()[:6] == ["not", "valid!", "failed", "RequestValidationError", "-", "-"]
    assert table[3].split()[:5] == ["user-000002", "sending", "-", "-", "-"]
    assert table[3].endswith("in flight when a run ended: the outcome is unknown")
    one_line_error(cli("report", str(tmp_path / "missing.jsonl")), 2,
                   "error: RESULTS: cannot read ")  # fmt: skip
    done = cli(*enroll_argv(emulator, source, tmp_path / "x"), "--max-consecutive-failures", "-1",
               emulator=emulator)  # fmt: skip
    one_line_error(done, 2, "error: --max-consecutive-failures: must be 0 (never stop) or more")
