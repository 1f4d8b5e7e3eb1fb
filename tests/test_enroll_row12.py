"""Issue 18 row 12, end to end: Ctrl-C with items waiting in the pacer.

The batch's `_on_send` fires right before an item's first attempt goes on the wire (after any
wait in the limiter or the pacer), so an item stopped while waiting has no `sending` line.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from test_enroll_journal import tokens_of, write_ids
from test_enroll_ops import cli, cli_env, emulator, enroll_argv, ids, lines, outcomes

from verify_access_tokens.emulator import VerifyEmulator

__all__ = ["emulator"]  # the fixture


def test_row12_ctrl_c_with_items_waiting_records_them_not_sent_without_a_sending_line(
    emulator: VerifyEmulator, tmp_path: Path
) -> None:
    """Before: never-sent items were failed (BatchStoppedError) with a `sending` line.

    After: `not_sent`, no `sending` line, not in the failed count, sent by --resume.
    """
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
    not_sent = [r["identity"] for r in records if r["status"] == "not_sent"]
    assert not_sent  # waiting in the pacer when Ctrl-C came
    assert "failed 0" in err
    assert f"not sent {len(not_sent)}" in err
    created = {r["identity"] for r in records if r["status"] == "created"}
    assert created == set(tokens_of(emulator))
    sending = {r["identity"] for r in lines(out) if r["status"] == "sending"}
    assert sending == created  # nothing stopped before the wire has a `sending` line
    done = cli(*enroll_argv(emulator, source, out), "--resume", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "re-sent" not in done.stderr  # not_sent items are no possible duplicates
    assert tokens_of(emulator) == ids(20)
