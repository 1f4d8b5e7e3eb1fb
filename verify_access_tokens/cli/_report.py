"""``verify-access-tokens report RESULTS``: what an ``enroll`` journal says, one row per question.

The last outcome of each identity counts (``sending`` only when a run ended with the request in
flight). Without ``--failures``: counts by status, and by error class, HTTP status and Twilio
code. With it: each identity not created, with its status, error class, HTTP status, Twilio code
and message. ``--format table`` (aligned, for a terminal), ``csv`` or ``jsonl`` (for tools).
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import sys
from collections.abc import Iterable
from typing import Any

from .. import ConfigurationError
from ._journal import CREATED, SENDING

_COUNT_FIELDS = ("status", "error_class", "http_status", "code", "count")
_FAILURE_FIELDS = ("identity", "status", "error_class", "http_status", "code", "message")
_IN_FLIGHT = "in flight when a run ended: the outcome is unknown"


def _last_outcomes(path: str) -> dict[str, tuple[Any, ...]]:
    """Each identity's last record, kept as (status, class, http_status, code, message)."""
    last: dict[str, tuple[Any, ...]] = {}
    try:
        with open(path, "rb") as stream:
            for line in stream:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # a line cut short by a crash
                    continue
                if not isinstance(record, dict) or "identity" not in record:
                    continue  # a run's header
                error = record.get("error")
                error = error if isinstance(error, dict) else {}
                status = record.get("status")
                message = error.get("message") or (_IN_FLIGHT if status == SENDING else None)
                last[str(record["identity"])] = (
                    status, error.get("class"), error.get("http_status"), error.get("code"),
                    message,
                )  # fmt: skip
    except OSError as exc:
        raise ConfigurationError("RESULTS", f"cannot read {path}: {exc.strerror or exc}") from None
    return last


def _rows(last: dict[str, tuple[Any, ...]], failures: bool) -> list[dict[str, Any]]:
    if failures:
        return [
            dict(zip(_FAILURE_FIELDS, (identity, *outcome), strict=True))
            for identity, outcome in last.items()
            if outcome[0] != CREATED
        ]
    counts = collections.Counter(outcome[:4] for outcome in last.values())
    return [
        dict(zip(_COUNT_FIELDS, (*key, n), strict=True))
        for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    ]


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _table(rows: list[dict[str, Any]], fields: Iterable[str]) -> str:
    names = list(fields)
    cells = [names] + [[_text(row[name]) for name in names] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(names))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def report_command(args: argparse.Namespace) -> int:
    """Print the report of ``args.results`` in ``args.format``; exit 0."""
    last = _last_outcomes(args.results)
    rows = _rows(last, args.failures)
    fields = _FAILURE_FIELDS if args.failures else _COUNT_FIELDS
    out = sys.stdout
    if args.format == "jsonl":
        for row in rows:
            out.write(json.dumps(row) + "\n")
    elif args.format == "csv":
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        by_status = collections.Counter(outcome[0] for outcome in last.values())
        statuses = ", ".join(f"{n} {status}" for status, n in by_status.most_common())
        out.write(f"{len(last)} identities in {args.results}: {statuses or 'none'}\n")
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
        help="summarise an enroll results file: counts, or the failures",
        description=(
            "Read an enroll results file (JSONL) and take each identity's last outcome. "
            "Without --failures: counts by status and by error class, HTTP status and Twilio "
            "code. With --failures: every identity not created, with its status, error class, "
            "HTTP status, Twilio code and message."
        ),
        **parser_options,
    )
    report.add_argument("results", metavar="RESULTS", help="the results file enroll wrote")
    report.add_argument("--failures", action="store_true",
                        help="list each identity not created instead of the counts")  # fmt: skip
    report.add_argument("--format", choices=("table", "csv", "jsonl"), default="table",
                        help="table for a terminal; csv or jsonl for other tools")  # fmt: skip
    report.set_defaults(handler=run_report)
