"""``enroll``'s outcomes over faults: unknown outcomes finished in the same run and counted as
possible duplicates, and a resume that says what it will do before it does it."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.cli import cli, cli_env, created_line, enroll_argv, lines, outcomes
from helpers.constants import ids

from verify_access_tokens.emulator import Faults, VerifyEmulator

pytestmark = pytest.mark.sockets


def tokens_per_identity(emulator: VerifyEmulator) -> collections.Counter[str]:
    return collections.Counter(t.entity_identity for t in emulator.tokens.values())


def test_unknown_outcomes_are_finished_in_the_same_run_and_counted(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    emulator.set_faults(Faults(lost_response_rate=0.02))
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(150)) + "\n")
    out = tmp_path / "r.jsonl"
    done = cli(*enroll_argv(emulator, source, out), "--quiet", emulator=emulator)
    assert done.returncode == 0, done.stderr  # one run, nothing left for --resume
    records = outcomes(out)
    assert {r["status"] for r in records} == {"created"}
    assert len(records) == 150
    flagged = {r["identity"] for r in records if r.get("possible_duplicate")}
    counts = tokens_per_identity(emulator)
    assert flagged  # the lost answers were re-sent ...
    assert {identity for identity, n in counts.items() if n > 1} <= flagged  # ... and said
    assert emulator.counters.responses_lost == sum(counts.values()) - 150
    assert f"{len(flagged)} possibly duplicated" in done.stderr


def test_no_retry_unknown_leaves_unknown_outcomes_for_resume(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    emulator.set_faults(Faults(lost_response_rate=0.5))
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(40)) + "\n")
    out = tmp_path / "r.jsonl"
    done = cli(*enroll_argv(emulator, source, out), "--no-retry-unknown", "--quiet",
               emulator=emulator)  # fmt: skip
    assert done.returncode == 1
    statuses = collections.Counter(r["status"] for r in outcomes(out))
    assert statuses["unknown"] > 0
    assert max(tokens_per_identity(emulator).values()) == 1  # nothing was re-sent
    assert not any(r.get("possible_duplicate") for r in outcomes(out))


def test_resume_says_what_it_will_do_before_its_first_request(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    out = tmp_path / "r.jsonl"
    out.write_text(
        "\n".join(
            [
                created_line("user-000000", now + dt.timedelta(minutes=4)),
                created_line("user-000001", now - dt.timedelta(minutes=4)),
                '{"identity": "user-000002", "status": "sending"}',
            ]
        )
        + "\n"
    )
    out.chmod(0o600)
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(5)) + "\n")
    done = cli(*enroll_argv(emulator, source, out), "--resume", "--quiet", emulator=emulator)
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first == (
        "note: resuming: 1 done (skipped), 1 expired, to re-mint (--keep-expired skips them), "
        "1 in flight when the last run ended, to send again (possible duplicates); identities "
        "of INPUT not in it are new"
    )
    sent = [r["identity"] for r in lines(out) if r["status"] == "sending"]
    assert sorted(sent[1:]) == ["user-000001", "user-000002", "user-000003", "user-000004"]


def test_report_counts_runs_and_lists_possible_duplicates(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    header = '{"record": "header", "service_sid": "VA", "started_at": "2026-12-07T09:00:00Z"}'
    unknown = '{"identity": "user-000002", "status": "unknown", "error": {"class": "X"}}'
    killed = [header, '{"identity": "user-000001", "status": "sending"}',
              '{"identity": "user-000002", "status": "sending"}', unknown]  # fmt: skip
    resumed = [header.replace("09:", "10:"), '{"identity": "user-000001", "status": "sending"}',
               created_line("user-000001", dt.datetime.now(dt.UTC)),
               '{"identity": "user-000002", "status": "sending"}',
               created_line("user-000002", dt.datetime.now(dt.UTC)),
               '{"identity": "user-000003", "status": "sending"}',
               created_line("user-000003", dt.datetime.now(dt.UTC))[:-1]
               + ', "possible_duplicate": true}']  # fmt: skip
    out.write_text("\n".join(killed + resumed) + "\n")
    runs = [json.loads(row) for row in
            cli("report", str(out), "--runs", "--format", "jsonl").stdout.splitlines()]  # fmt: skip
    fields = ("run", "created", "unknown", "in_flight", "possibly_duplicated")
    assert [tuple(r[name] for name in fields) for r in runs] == [
        ("1", 0, 1, 1, 0),
        ("2", 3, 0, 0, 3),
        ("total", 3, 0, 0, 3),
    ]
    duplicates = cli("report", str(out), "--duplicates", "--format", "csv").stdout.splitlines()
    assert duplicates == [
        "identity,sends,why",
        "user-000001,2,re-sent after an unknown outcome or a killed run",
        "user-000002,2,re-sent after an unknown outcome or a killed run",
        "user-000003,1,re-sent in its run after an unknown outcome",
    ]
    table = cli("report", str(out)).stdout
    assert table.startswith(f"3 identities in {out}: 3 created; 3 possibly duplicated")


def test_report_reads_any_journal_and_writes_safe_csv_and_terminal_text(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text(
        "\n".join(
            [
                '{"identity": "=HYPERLINK(\\"http://x\\")", "status": "failed", '
                '"error": {"class": ["list"], "code": {"a": 1}, "http_status": "400", '
                '"message": "-2+3"}}',
                '{"identity": "user-\\u001b[31mred", "status": {"x": 1}}',
                '{"identity": "user-\\u001b[2Jclear", "status": "failed", "error": "text"}',
                "[1, 2, 3]",
                '{"identity": ["a"], "status": "created"}',
                "not json at all",
            ]
        )
        + "\n"
    )
    csv_rows = cli("report", str(out), "--failures", "--format", "csv").stdout.splitlines()
    assert csv_rows[1].startswith('"\'=HYPERLINK(""http://x"")",failed,,400,,\'-2+3')
    table = cli("report", str(out), "--failures").stdout
    assert "\x1b" not in table
    assert "user-\\x1b[2Jclear" in table
    counts = cli("report", str(out), "--format", "jsonl")
    assert counts.returncode == 0
    assert "Traceback" not in counts.stderr


def test_out_may_be_dev_null_or_a_fifo_with_a_reader(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(30)) + "\n")
    done = cli(*enroll_argv(emulator, source, "/dev/null"), "--quiet", emulator=emulator)
    assert done.returncode == 0, done.stderr  # no fsync of a device: it means nothing there
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    done = cli(*enroll_argv(emulator, source, fifo), "--quiet", emulator=emulator)
    reader.join(timeout=60)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in received[0].splitlines()]
    assert sorted(r["identity"] for r in records) == ids(30)  # outcome lines only
    assert {r["status"] for r in records} == {"created"}


def test_a_stalled_reader_of_out_slows_the_run_and_ctrl_c_ends_it_promptly(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """The reader takes nothing: the run waits for it (its memory bounded), and Ctrl-C ends it
    within seconds, naming the results it could not deliver."""
    source = tmp_path / "ids.txt"
    source.write_text("\n".join(ids(3000)) + "\n")
    read_end, write_end = os.pipe()  # a reader that never reads, and never closes
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "verify_access_tokens",
             *enroll_argv(emulator, source, "-"), "--quiet"],
            stdout=write_end, stderr=stderr, env=cli_env(emulator),
        )  # fmt: skip
    os.close(write_end)
    try:
        created = 0
        for _ in range(120):  # polls of 0.5 s: a hang guard, not a measurement
            time.sleep(0.5)
            if emulator.counters.tokens_created == created > 0:
                break  # the run stopped sending: the pipe and the backlog are full
            created = emulator.counters.tokens_created
        assert 0 < created < 3000  # it waited for the reader instead of buffering everything
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert time.monotonic() - stopped_at < 20  # "within seconds": a hang guard
    finally:
        process.kill()
        os.close(read_end)
    text = errors.read_text()
    assert "Traceback" not in text
    assert "results not delivered (the reader of --out stopped reading" in text


def test_report_shows_an_identity_with_a_lone_surrogate_escaped(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text(
        '{"identity": "user-0001-\\ud800aa", "status": "failed", "error": {"class": "X"}}\n'
    )
    table = cli("report", str(out), "--failures")
    assert table.returncode == 0
    assert "user-0001-\\ud800aa" in table.stdout
    as_csv = cli("report", str(out), "--failures", "--format", "csv")
    assert as_csv.returncode == 0
    assert "user-0001-\\ud800aa" in as_csv.stdout


def test_an_error_exit_still_delivers_what_was_made_to_a_slow_reader(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """A bad last line of a streamed INPUT: the results made before it still reach the pipe's
    reader (a slow one), or the summary says how many did not."""
    stdin = ("\n".join(ids(300)) + "\nbad\xff\n").encode("latin-1")
    reader = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nn = 0\nfor line in sys.stdin:\n    n += 1\n    time.sleep(0.002)\n"
         "print(n)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert reader.stdin is not None
    done = subprocess.run(
        [sys.executable, "-m", "verify_access_tokens", *enroll_argv(emulator, "-", "-"),
         "--quiet"],
        input=stdin, stdout=reader.stdin, stderr=subprocess.PIPE, env=cli_env(emulator),
        timeout=120, check=False,
    )  # fmt: skip
    reader.stdin.close()
    assert reader.wait(timeout=60) == 0
    assert reader.stdout is not None
    with reader.stdout:
        delivered = int(reader.stdout.read())
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "Traceback" not in err
    assert delivered == 300 or f"{300 - delivered} results not delivered" in err
