"""``verify-access-tokens report RESULTS``: what an ``enroll`` journal says, one row per question.

Each identity's last outcome counts (``sending`` only when a run ended with the request in
flight). Without a listing flag: counts by status, and by error class, HTTP status and Twilio
code. ``--runs``: per run (each run's header starts one) and in total, created, failed, unknown,
not sent, in flight at the end, and possibly duplicated. ``--failures``: each identity not
created. ``--duplicates``: each identity possibly holding a second token (created after a send
whose outcome was unknown: a lost answer re-sent, or a run killed with it in flight).

Any journal is read without a traceback: a line that is not a JSON object is skipped, a field of
the wrong type is shown as missing. ``--format csv`` quotes a cell a spreadsheet would run as a
formula; ``table`` shows control characters escaped, never raw.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from .. import ConfigurationError
from .enroll._journal import CREATED, FAILED, HEADER, NOT_SENT, SENDING, UNKNOWN

_COUNT_FIELDS = ("status", "error_class", "http_status", "code", "count")
_FAILURE_FIELDS = ("identity", "status", "error_class", "http_status", "code", "message")
_DUPLICATE_FIELDS = ("identity", "sends", "why")
_RUN_FIELDS = ("run", "started_at", "created", "failed", "unknown", "not_sent", "in_flight",
               "possibly_duplicated")  # fmt: skip
_IN_FLIGHT = "in flight when a run ended: the outcome is unknown"
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@attrs.define
class _Identity:
    """What the journal says of one identity."""

    outcome: tuple[Any, ...] = ()  # (status, error class, http status, code, message)
    sends: int = 0
    open_send: bool = False  # a `sending` line without its outcome yet
    unknown_before: bool = False  # a send whose outcome stayed unknown
    duplicate_why: str | None = None


@attrs.define
class _Run:
    started_at: str | None
    counts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    open: set[str] = attrs.field(factory=set)


@attrs.define
class Journal:
    """Every identity's story and every run's counts, from one pass over the file."""

    identities: dict[str, _Identity] = attrs.field(factory=dict)
    runs: list[_Run] = attrs.field(factory=list)

    def read(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            if record.get("record") == HEADER:
                self._end_run()
                started = record.get("started_at")
                self.runs.append(_Run(started if isinstance(started, str) else None))
            elif "identity" in record and isinstance(record.get("status"), str):
                self._record(str(_scalar(record["identity"])), record)
        self._end_run()

    def _record(self, identity: str, record: dict[str, Any]) -> None:
        if not self.runs:
            self.runs.append(_Run(None))  # lines written before runs had headers
        run = self.runs[-1]
        story = self.identities.setdefault(identity, _Identity())
        status = record["status"]
        if status == SENDING:
            if story.open_send:  # sent again with no outcome in between: a kill
                story.unknown_before = True
            story.sends += 1
            story.open_send = True
            run.open.add(identity)
            story.outcome = (SENDING, None, None, None, _IN_FLIGHT)
            return
        story.open_send = False
        run.open.discard(identity)
        run.counts[status] += 1
        error = record.get("error")
        error = error if isinstance(error, dict) else {}
        story.outcome = (
            status,
            _scalar(error.get("class")),
            _scalar(error.get("http_status")),
            _scalar(error.get("code")),
            _scalar(error.get("message")),
        )
        if status == UNKNOWN:
            story.unknown_before = True
        elif status == CREATED:
            if record.get("possible_duplicate") is True:
                story.duplicate_why = "re-sent in its run after an unknown outcome"
            elif story.unknown_before:
                story.duplicate_why = "re-sent after an unknown outcome or a killed run"
            if story.duplicate_why is not None:
                run.counts["possibly_duplicated"] += 1

    def _end_run(self) -> None:
        """A run ends: the identities it left in flight were sent with an unknown outcome."""
        if self.runs:
            for identity in self.runs[-1].open:
                self.identities[identity].unknown_before = True
                self.identities[identity].open_send = False

    def rows(self, listing: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """The rows and their fields for ``listing``: counts, runs, failures or duplicates."""
        if listing == "failures":
            rows = [(name, *s.outcome) for name, s in self.identities.items()
                    if s.outcome and s.outcome[0] != CREATED]  # fmt: skip
            return [dict(zip(_FAILURE_FIELDS, row, strict=True)) for row in rows], _FAILURE_FIELDS
        if listing == "duplicates":
            rows = [(name, s.sends, s.duplicate_why) for name, s in self.identities.items()
                    if s.duplicate_why is not None]  # fmt: skip
            return [dict(zip(_DUPLICATE_FIELDS, r, strict=True)) for r in rows], _DUPLICATE_FIELDS
        if listing == "runs":
            return self._run_rows(), _RUN_FIELDS
        counts = collections.Counter(s.outcome[:4] for s in self.identities.values() if s.outcome)
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return [dict(zip(_COUNT_FIELDS, (*key, n), strict=True)) for key, n in ordered], (
            _COUNT_FIELDS
        )

    def _run_rows(self) -> list[dict[str, Any]]:
        rows = []
        for number, run in enumerate(self.runs, 1):
            rows.append(_run_row(str(number), run.started_at, run.counts, len(run.open)))
        last = collections.Counter(s.outcome[0] for s in self.identities.values() if s.outcome)
        last["possibly_duplicated"] = sum(
            s.duplicate_why is not None for s in self.identities.values()
        )
        rows.append(_run_row("total", None, last, last[SENDING]))
        return rows

    def headline(self, path: str) -> str:
        by_status = collections.Counter(s.outcome[0] for s in self.identities.values() if s.outcome)
        statuses = ", ".join(f"{n} {status}" for status, n in by_status.most_common())
        duplicated = sum(s.duplicate_why is not None for s in self.identities.values())
        tail = f"; {duplicated} possibly duplicated (--duplicates)" if duplicated else ""
        return f"{len(self.identities)} identities in {path}: {statuses or 'none'}{tail}"


def _run_row(
    run: str, started_at: str | None, counts: collections.Counter[str], in_flight: int
) -> dict[str, Any]:
    values = (run, started_at, counts[CREATED], counts[FAILED], counts[UNKNOWN],
              counts[NOT_SENT], in_flight, counts["possibly_duplicated"])  # fmt: skip
    return dict(zip(_RUN_FIELDS, values, strict=True))


def _scalar(value: object) -> str | int | float | None:
    """A JSON scalar kept as it is; a list, an object (or anything else) is not a value here."""
    if value is None or isinstance(value, str | int | float):
        return value
    return None


def _records(path: str) -> Iterator[dict[str, Any]]:
    try:
        with open(path, "rb") as stream:
            for line in stream:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # a line cut short by a crash
                    continue
                if isinstance(record, dict):
                    yield record
    except OSError as exc:
        raise ConfigurationError("RESULTS", f"cannot read {path}: {exc.strerror or exc}") from None


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a quote."""
    text = "" if value is None else _encodable(str(value))
    return "'" + text if text.startswith(_FORMULA) else text


def _shown(value: object) -> str:
    """Table text: ``-`` for nothing, control characters (an ESC, a CR) escaped, never raw."""
    if value is None:
        return "-"
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], _encodable(str(value)))


def _encodable(text: str) -> str:
    """``text`` with what UTF-8 cannot carry (a lone surrogate a JSONL input held) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _table(rows: list[dict[str, Any]], fields: Iterable[str]) -> str:
    names = list(fields)
    cells = [names] + [[_shown(row[name]) for name in names] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(names))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def report_command(args: argparse.Namespace) -> int:
    """Print the report of ``args.results`` in ``args.format``; exit 0."""
    journal = Journal()
    journal.read(_records(args.results))
    listing = next((k for k in ("failures", "duplicates", "runs") if getattr(args, k)), "counts")
    rows, fields = journal.rows(listing)
    out = sys.stdout
    if args.format == "jsonl":
        for row in rows:
            out.write(json.dumps(row) + "\n")
    elif args.format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        writer.writerows([_cell(row[name]) for name in fields] for row in rows)
    else:
        out.write(_shown(journal.headline(args.results)) + "\n")
        if rows:
            out.write(_table(rows, fields) + "\n")
    return 0


async def run_report(args: argparse.Namespace) -> int:
    """The command's handler (``main`` runs handlers in an event loop)."""
    return report_command(args)


def add_report_command(commands: Any, **parser_options: Any) -> None:
    """Register ``report`` on the CLI's subparsers."""
    report = commands.add_parser(
        "report",
        help="summarise an enroll results file: counts, runs, failures, possible duplicates",
        description=(
            "Read an enroll results file (JSONL) and take each identity's last outcome. "
            "Without a listing: counts by status and by error class, HTTP status and Twilio "
            "code. --runs: per run and in total. --failures: every identity not created. "
            "--duplicates: every identity that may hold a second token."
        ),
        **parser_options,
    )
    report.add_argument("results", metavar="RESULTS", help="the results file enroll wrote")
    listing = report.add_mutually_exclusive_group()
    listing.add_argument("--failures", action="store_true",
                         help="list each identity not created instead of the counts")  # fmt: skip
    listing.add_argument("--duplicates", action="store_true",
                         help="list each identity created after a send whose outcome was "
                         "unknown: it may hold a second, unused token")  # fmt: skip
    listing.add_argument("--runs", action="store_true",
                         help="per run and in total: created, failed, unknown, not sent, in "
                         "flight at its end, possibly duplicated")  # fmt: skip
    report.add_argument("--format", choices=("table", "csv", "jsonl"), default="table",
                        help="table for a terminal; csv (safe for spreadsheets) or jsonl for "
                        "other tools")  # fmt: skip
    report.set_defaults(handler=run_report)
