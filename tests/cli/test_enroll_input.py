"""``enroll`` reading a real export: a broken quote, a bare CR, another identity column, blank
lines and comments, each line accounted for; a bad file refused before the first request."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import cli, cli_env, enroll_argv, outcomes

from verify_access_tokens.cli.enroll import _progress as _enroll_progress
from verify_access_tokens.emulator import VerifyEmulator

pytestmark = pytest.mark.sockets


def export(rows: int, *, broken_at: int | None = None, header: str = "identity,name") -> str:
    """A CSV export with ``rows`` rows; row ``broken_at`` (1-based) opens a quote it never
    closes, as a hand-edited export does."""
    lines = [header]
    for row in range(1, rows + 1):
        name = "\"Ana's phone" if row == broken_at else "Pixel"
        lines.append(f"user-{row:08d},{name}")
    return "\r\n".join(lines) + "\r\n"


def test_a_broken_quote_in_a_file_is_refused_before_any_request(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "export.csv"
    source.write_text(export(300, broken_at=250))
    out = tmp_path / "results.jsonl"
    done = cli(*enroll_argv(emulator, source, out), emulator=emulator)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: INPUT: line 251: a quoted field is not closed on this line "
        '(write a quote inside a field twice: "")'
    ]
    assert emulator.counters.requests == 0
    assert not out.exists()  # nothing to clear before the corrected run


def test_a_broken_quote_in_a_stream_stops_there_with_the_summary(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    stdin = export(500, broken_at=400).encode()
    done = cli(*enroll_argv(emulator, "-", out), "--quiet", emulator=emulator, stdin=stdin)
    assert done.returncode == 2
    *_, summary, counts, error = done.stderr.strip().splitlines()
    assert error.startswith("error: INPUT: line 401: a quoted field is not closed")
    assert summary.startswith("enrolled 399, failed 0")
    assert counts == "401 lines read: 399 identities, 1 header, 1 unreadable (named below)"
    created = {r["identity"] for r in outcomes(out)}
    assert len(created) == emulator.counters.tokens_created == 399
    assert f"user-{400:08d}" not in created  # nothing at or after the bad line was sent


def test_a_bare_cr_in_the_first_line_of_a_piped_csv_is_one_line(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    stdin = b"identity,name\rx\nuser-00000001,Pixel\n"
    done = cli(*enroll_argv(emulator, "-", tmp_path / "r.jsonl"), "--format", "csv",
               emulator=emulator, stdin=stdin)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: INPUT: ")
    assert emulator.counters.requests == 0


def test_identity_column_names_the_exports_column(emulator: VerifyEmulator, tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    header = "user_id,email,display_name"
    source.write_text(export(3, header=header).replace(",Pixel", ",ana@example.com"))
    refused = cli(*enroll_argv(emulator, source, tmp_path / "r.jsonl"), emulator=emulator)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: INPUT: a CSV input needs a header with an 'identity' column (name another with "
        "--identity-column), its columns separated by ',' ';' or a tab; its columns are "
        "'user_id', 'email', 'display_name'"
    )
    done = cli(*enroll_argv(emulator, source, tmp_path / "r.jsonl"),
               "--identity-column", "User ID", emulator=emulator)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ignoring the columns 'email', 'display_name'" in done.stderr
    assert emulator.counters.tokens_created == 3


def test_a_refused_start_leaves_nothing_in_the_corrected_runs_way(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    bad = b"user_id,email\nuser-00000001,a@example.com\n"
    refused = cli(*enroll_argv(emulator, "-", out), "--format", "csv",
                  emulator=emulator, stdin=bad)  # fmt: skip
    assert refused.returncode == 2
    assert out.read_text() == ""  # opened for the stream, but no header line left behind
    done = cli(*enroll_argv(emulator, "-", out), "--format", "csv",
               "--identity-column", "user_id", emulator=emulator, stdin=bad)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_every_line_read_is_accounted_for(emulator: VerifyEmulator, tmp_path: Path) -> None:
    source = tmp_path / "ids.csv"
    source.write_text(
        "identity,friendly_name\n\n# exported on Monday\nuser-00000001,A\n"
        "user-00000001,A\n,no identity\nuser-00000002,B\n   \nnot valid!,C\n"
    )
    done = cli(*enroll_argv(emulator, source, tmp_path / "r.jsonl"), emulator=emulator)
    summary, counts = done.stderr.strip().splitlines()[-2:]
    assert summary.startswith("enrolled 2, failed 1")
    assert "1 repeated identity in INPUT skipped" in summary
    # 9 lines: 1 header, 4 blank, comment or without an identity, 4 identities (2 + 1 repeated
    # + 1 invalid).
    assert counts == "9 lines read: 4 identities, 1 header, 4 blank or comment"


def test_a_note_is_written_above_the_progress_bar_not_into_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = _enroll_progress.progress(10, quiet=False)
    bar.update(3)
    _enroll_progress.say("INPUT: ignoring the columns 'email'")
    bar.update(1)
    bar.close()
    written = screen.getvalue()
    assert "\rnote: INPUT: ignoring the columns 'email'\n" in written.replace("\x1b[A", "")
    assert _enroll_progress._bar is None  # closed: notes go straight to stderr again


def test_a_one_column_file_headed_by_the_identity_column_sends_no_header(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "one_col.txt"
    source.write_text("UserIdentifier\nuser-00000001\nuser-00000002\n")
    done = cli(*enroll_argv(emulator, source, tmp_path / "r.jsonl"),
               "--identity-column", "UserIdentifier", emulator=emulator)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(t.entity_identity for t in emulator.tokens.values()) == [
        "user-00000001",
        "user-00000002",
    ]
    assert "3 lines read: 2 identities, 1 header" in done.stderr


def test_a_line_that_is_not_utf8_is_counted_as_read(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "verify_access_tokens",
         *enroll_argv(emulator, "-", tmp_path / "r.jsonl"), "--quiet"],
        input=b"user-00000001\nuser-\xff0002\nuser-00000003\n", capture_output=True,
        env=cli_env(emulator), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    *_, counts, error = done.stderr.decode().strip().splitlines()
    assert counts == "2 lines read: 1 identities, 1 unreadable (named below)"
    assert error == "error: INPUT: line 2 is not valid UTF-8"


def test_a_quoted_csv_header_is_read_as_csv(emulator: VerifyEmulator, tmp_path: Path) -> None:
    stdin = b'"identity","friendly_name"\n"user-00000001","Pixel"\n'
    done = cli(*enroll_argv(emulator, "-", tmp_path / "r.jsonl"), emulator=emulator, stdin=stdin)
    assert done.returncode == 0, done.stderr
    [token] = emulator.tokens.values()
    assert token.factor_friendly_name == "Pixel"
