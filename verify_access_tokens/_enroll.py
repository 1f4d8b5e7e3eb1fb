"""``verify-access-tokens enroll``: a resumable batch from a file to a JSONL results file.

The results file is the source of truth: one line per finished identity, written and flushed
as each result arrives, created with mode 0600 because it holds tokens. ``--resume`` skips the
identities already recorded as created, so a run cut short by Ctrl-C, a crash or a kill goes on
without enrolling anyone twice. Ctrl-C (or SIGTERM) stops taking input, lets in-flight requests
finish and records them; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ._batch import EnrollmentBatch, RateLimit
from ._errors import ConfigurationError, OutcomeUnknownError
from ._serde import unstructure
from .client import VerifyClient
from .models import EnrollmentRequest, EnrollmentResult

FORMATS = ("auto", "lines", "csv", "jsonl")
# Bytes that are not UTF-8 become lone surrogates: validation then makes them that item's
# RequestValidationError, instead of a decoding error ending the whole run.
_UNDECODABLE = "surrogateescape"


def detect_format(path: str, requested: str) -> str:
    if requested != "auto":
        return requested
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "lines")


def read_items(stream: IO[str], fmt: str) -> Iterator[EnrollmentRequest]:
    """Lazily parse input lines into requests; blank lines are skipped."""
    if fmt == "csv":
        reader = csv.DictReader(stream)
        if reader.fieldnames is None or "identity" not in reader.fieldnames:
            raise ConfigurationError(
                "INPUT", "a CSV input needs a header with an 'identity' column"
            )
        for row in reader:
            identity = (row.get("identity") or "").strip()
            if identity:
                name = (row.get("friendly_name") or "").strip() or None
                yield EnrollmentRequest(identity, factor_friendly_name=name)
        return
    for number, line in enumerate(stream, 1):
        text = line.strip()
        if not text:
            continue
        if fmt == "lines":
            yield EnrollmentRequest(text)
            continue
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise ConfigurationError("INPUT", f"line {number} is not valid JSON") from None
        if isinstance(data, str):
            yield EnrollmentRequest(data)
        elif isinstance(data, dict) and "identity" in data:
            yield EnrollmentRequest(
                data["identity"],
                factor_friendly_name=data.get("friendly_name"),
                ttl=data.get("ttl"),
            )
        else:
            raise ConfigurationError("INPUT", f"line {number} needs an 'identity' key")


def already_created(out: Path) -> set[str]:
    """Identities recorded as created in a previous run's results file."""
    done: set[str] = set()
    if not out.exists():
        return done
    with out.open(encoding="utf-8") as stream:
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: that identity is simply redone
            if isinstance(record, dict) and record.get("status") == "created":
                done.add(str(record.get("identity")))
    return done


def result_record(result: EnrollmentResult) -> dict[str, Any]:
    if result.token is not None:
        token = unstructure(result.token)
        return {
            "identity": result.identity,
            "status": "created",
            "sid": token["sid"],
            "token": token["token"],
            "ttl": token["ttl"],
            "date_created": token["date_created"],
            "attempts": result.attempts,
        }
    error = result.error
    assert error is not None
    return {
        "identity": result.identity,
        "status": "unknown" if isinstance(error, OutcomeUnknownError) else "failed",
        "error": {
            "class": type(error).__name__,
            "code": getattr(error, "code", None),
            "http_status": getattr(error, "status", None),
            "message": str(error),
        },
        "attempts": result.attempts,
    }


def _open_results(out: Path, resume: bool) -> IO[str]:
    if out.exists() and out.stat().st_size and not resume:
        raise ConfigurationError(
            "--out", f"{out} exists; pass --resume to continue it, or choose another file"
        )
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if resume else os.O_TRUNC)
    fd = os.open(out, flags, 0o600)
    os.fchmod(fd, 0o600)
    results = os.fdopen(fd, "w", encoding="utf-8")
    if resume and _ends_mid_line(out):
        results.write("\n")  # a crash cut the last line short: keep it off the next record
    return results


def _ends_mid_line(path: Path) -> bool:
    with path.open("rb") as stream:
        if stream.seek(0, os.SEEK_END) == 0:
            return False
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) != b"\n"


def _count_lines(path: str, fmt: str) -> int:
    with open(path, encoding="utf-8", errors=_UNDECODABLE) as stream:
        count = sum(1 for line in stream if line.strip())
    return count - 1 if fmt == "csv" and count else count


def _progress(total: int | None, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        print("(install verify-access-tokens[cli] for a progress bar)", file=sys.stderr)
        return None
    return tqdm(total=total, unit="id", file=sys.stderr, dynamic_ncols=True)


def _rate_limit(value: str | None) -> RateLimit:
    if value is None:
        return None
    if value == "adaptive":
        return "adaptive"
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError("--rate-limit", "must be a number or 'adaptive'") from None


def _open_input(path: str) -> contextlib.AbstractContextManager[IO[str]]:
    if path == "-":
        return contextlib.nullcontext(sys.stdin)
    try:
        return open(path, encoding="utf-8", errors=_UNDECODABLE)
    except OSError as exc:
        raise ConfigurationError("INPUT", f"cannot read {path}: {exc.strerror}") from None


async def run_enroll(args: argparse.Namespace) -> int:
    fmt = detect_format(args.input, args.format)
    out = Path(args.out)
    rate_limit = _rate_limit(args.rate_limit)
    loop = asyncio.get_running_loop()
    with _open_input(args.input) as stream, _open_results(out, args.resume) as results:
        skip = already_created(out) if args.resume else set()
        total = None if args.input == "-" else _count_lines(args.input, fmt)
        if total is not None:
            total = max(0, total - len(skip))
        items = (item for item in read_items(stream, fmt) if item.identity not in skip)
        async with VerifyClient(base_url=args.base_url) as client:
            batch: EnrollmentBatch = client.access_tokens.create_many(
                args.service_sid,
                items,
                concurrency=args.concurrency,
                rate_limit=rate_limit,
                ttl=args.ttl,
            )
            graceful = _install_signal_handlers(loop, batch)
            bar = _progress(total, args.quiet)
            try:
                async with batch:
                    async for result in batch:
                        results.write(json.dumps(result_record(result)) + "\n")
                        results.flush()
                        if bar is not None:
                            bar.update(1)
                            bar.set_postfix(errors=sum(batch.summary.failed.values()))
            finally:
                for sig in graceful:
                    loop.remove_signal_handler(sig)
                if bar is not None:
                    bar.close()
    summary = batch.summary
    failed = sum(summary.failed.values())
    print(
        f"enrolled {summary.succeeded}, failed {failed}"
        + (f" {dict(summary.failed)}" if failed else "")
        + f", skipped {len(skip)} already enrolled, {summary.retried} retries, "
        f"{summary.elapsed:.1f}s ({summary.rate:.0f}/s); results in {out}",
        file=sys.stderr,
    )
    if batch.stopping:
        print("interrupted: run again with --resume to continue", file=sys.stderr)
        return 130
    return 0 if failed == 0 else 1


def _install_signal_handlers(
    loop: asyncio.AbstractEventLoop, batch: EnrollmentBatch
) -> list[signal.Signals]:
    """Ctrl-C and SIGTERM stop the batch gracefully, where the loop supports signal handlers
    (not on Windows: there Ctrl-C aborts, and --resume still picks up what was written)."""
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _on_signal, batch)
        except NotImplementedError:  # pragma: no cover - Windows event loops
            break
        installed.append(sig)
    return installed


def _on_signal(batch: EnrollmentBatch) -> None:
    if batch.stopping:  # second Ctrl-C: give up on in-flight requests too
        raise KeyboardInterrupt
    print("\nstopping: finishing in-flight requests (Ctrl-C again to abort)", file=sys.stderr)
    batch.stop()


def add_enroll_command(commands: Any) -> None:
    enroll = commands.add_parser(
        "enroll",
        help="enrol every identity of a file (resumable; writes JSONL results)",
        description=(
            "Create an access token for every identity in INPUT and write one JSON line per "
            "result to --out (mode 0600: it holds tokens). Exit 0 only if all succeeded."
        ),
    )
    enroll.add_argument("service_sid", metavar="SERVICE_SID")
    enroll.add_argument("input", metavar="INPUT", nargs="?", default="-",
                        help="file, or - for stdin (default)")  # fmt: skip
    enroll.add_argument("--out", required=True, help="results file (JSONL)")
    enroll.add_argument("--format", choices=FORMATS, default="auto",
                        help="input format (default: from the file extension)")  # fmt: skip
    enroll.add_argument("--resume", action="store_true",
                        help="skip identities already created in --out and append")  # fmt: skip
    enroll.add_argument("--concurrency", type=int, default=32)
    enroll.add_argument("--rate-limit", help="requests/s, or 'adaptive'")
    enroll.add_argument("--ttl", type=int, help="token lifetime in seconds, 60-300")
    enroll.add_argument("--base-url", help="API origin (default: Twilio)")
    enroll.add_argument("--quiet", action="store_true", help="no progress bar")
    enroll.set_defaults(handler=run_enroll)
