"""``verify-access-tokens enroll``: a resumable batch from a file to a JSONL results stream.

Tokens live at most 300 s, so results are meant to be consumed as they are written: each line is
written and flushed as its result arrives (``--out -`` streams them to a pipe). A results file is
created with mode 0600 because it holds tokens, and it is also the run's record: before an
identity's request is sent, a ``sending`` line is written for it, and its outcome line follows.
``--resume`` skips identities whose recorded token is still valid, and sends again those whose
token has expired, whose outcome is unknown or failed, and those left ``sending`` by a crash or a
kill (at most ``--concurrency`` of them; they may be enrolled twice, and the summary says how
many). Ctrl-C (or SIGTERM) stops taking input, lets in-flight requests finish, records them and
fsyncs the file; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as _dt
import json
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from .. import ConfigurationError, EnrollmentBatch, EnrollmentRequest, VerifyClient
from ._journal import Journal, Previous, open_output, read_previous

_T = TypeVar("_T")

FORMATS = ("auto", "lines", "csv", "jsonl")
PROGRESS_EVERY = 10.0  # seconds between progress lines when there is no progress bar


def detect_format(path: str, requested: str) -> str:
    if requested != "auto":
        return requested
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "lines")


def _decoded_lines(stream: Iterable[bytes | str]) -> Iterator[str]:
    """UTF-8 lines, a leading byte-order mark (Excel's "CSV UTF-8") dropped.

    A line that is not UTF-8 is a ConfigurationError naming it rather than a UnicodeDecodeError.
    """
    for number, raw in enumerate(stream, 1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise ConfigurationError("INPUT", f"line {number} is not valid UTF-8") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def read_items(stream: Iterable[bytes | str], fmt: str) -> Iterator[EnrollmentRequest]:
    """Lazily parse input lines into requests; blank lines are skipped.

    Values are not checked here: a JSONL identity, name or ttl of the wrong type is that
    identity's ``failed`` result (``RequestValidationError``), like any other bad value.
    """
    lines = _decoded_lines(stream)
    if fmt == "csv":
        rows = _csv_rows(lines)
        header = [name.strip().lower() for name in next(rows, [])]
        if "identity" not in header:
            raise ConfigurationError(
                "INPUT", "a CSV input needs a header with an 'identity' column"
            )
        at = header.index("identity")
        name_at = header.index("friendly_name") if "friendly_name" in header else None
        for row in rows:
            identity = row[at].strip() if len(row) > at else ""
            if identity:
                name = row[name_at].strip() if name_at is not None and len(row) > name_at else ""
                yield EnrollmentRequest(identity, factor_friendly_name=name or None)
        return
    for number, line in enumerate(lines, 1):
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


def _csv_rows(lines: Iterable[str]) -> Iterator[list[str]]:
    """Yield csv.reader's rows.

    A line it cannot parse (a NUL, a field past its size limit) is a ConfigurationError naming
    the line rather than a csv.Error.
    """
    reader = csv.reader(lines)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfigurationError("INPUT", f"line {reader.line_num}: {exc}") from None
        yield row


def _count_lines(path: str, fmt: str) -> int:
    with open(path, "rb") as stream:
        count = sum(1 for line in stream if line.strip())
    return count - 1 if fmt == "csv" and count else count


class _ProgressLines:
    """Without tqdm (or a terminal): a count and a rate on stderr every PROGRESS_EVERY s."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.started = self.last = time.monotonic()

    def update(self, done: int) -> None:
        self.done += done
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            rate = self.done / (now - self.started) if now > self.started else 0.0
            of = f"/{self.total}" if self.total is not None else ""
            print(
                f"progress: {self.done}{of} done, {self.failed} failed, {rate:.0f}/s",
                file=sys.stderr,
                flush=True,
            )

    def set_postfix(self, errors: int) -> None:
        self.failed = errors

    def close(self) -> None:
        """The summary line follows; nothing to tidy up."""


def _progress(total: int | None, quiet: bool) -> Any:
    if quiet:
        return None
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, unit="id", file=sys.stderr, dynamic_ncols=True)
    return _ProgressLines(total)


def _rate_limit(value: str | None) -> float | Literal["adaptive"] | None:
    if value is None:
        return None
    if value == "adaptive":
        return "adaptive"
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError("--rate-limit", "must be a number or 'adaptive'") from None


def _open_input(path: str) -> contextlib.AbstractContextManager[Iterable[bytes | str]]:
    if path == "-":
        return contextlib.nullcontext(getattr(sys.stdin, "buffer", sys.stdin))
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ConfigurationError("INPUT", f"cannot read {path}: {exc.strerror}") from None


def _may_block(stream: object) -> bool:
    """Whether reading ``stream`` can wait on a producer (a pipe, a terminal), unlike a file."""
    try:
        mode = os.fstat(stream.fileno()).st_mode  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False  # in memory: never waits
    return not stat.S_ISREG(mode)


def _raw_lines(fd: int) -> Iterator[bytes]:
    """Yield the lines of ``fd``, read with ``os.read``.

    No buffered file object: a daemon thread blocked in its read would hold its lock at
    interpreter exit, which is a fatal error.
    """
    pending = b""
    while chunk := os.read(fd, 65536):
        *complete, pending = (pending + chunk).split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def _read_in_thread(items: Iterator[_T], lookahead: int = 256) -> AsyncIterator[_T]:
    """The items of a blocking iterator, read by a daemon thread.

    The event loop never waits for a producer (a pipe into stdin that pauses): requests in
    flight finish on time, and Ctrl-C or SIGTERM act at once. The thread reads at most
    ``lookahead`` items ahead; an error it meets (a bad line) is raised here, in order.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[bool, object]] = asyncio.Queue()
    room = threading.Semaphore(lookahead)

    def post(done: bool, value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the run is over and its loop closed
            loop.call_soon_threadsafe(queue.put_nowait, (done, value))

    def pump() -> None:
        try:
            for item in items:
                room.acquire()
                post(False, item)
        except Exception as exc:
            post(True, exc)
        else:
            post(True, None)

    threading.Thread(target=pump, name="enroll-input", daemon=True).start()

    async def read() -> AsyncIterator[_T]:
        while True:
            done, value = await queue.get()
            if done:
                if value is not None:
                    raise cast(Exception, value)
                return
            room.release()
            yield cast(_T, value)

    return read()


async def run_enroll(args: argparse.Namespace) -> int:
    fmt = detect_format(args.input, args.format)
    rate_limit = _rate_limit(args.rate_limit)
    now = _dt.datetime.now(_dt.UTC)
    previous = (
        read_previous(Path(args.out), now=now, keep_expired=args.keep_expired)
        if args.resume and args.out != "-"
        else Previous()
    )
    loop = asyncio.get_running_loop()
    reminted = resent = 0
    with _open_input(args.input) as stream, open_output(args.out, args.resume) as results:
        journal = Journal(args.out, results)
        done = previous.done
        total = None if args.input == "-" else _count_lines(args.input, fmt)
        if total is not None:
            total = max(0, total - len(done))
        blocking = _may_block(stream)
        lines = _raw_lines(stream.fileno()) if blocking else stream  # type: ignore[attr-defined]
        pending = (
            item
            for item in read_items(lines, fmt)
            if not (isinstance(item.identity, str) and item.identity in done)
        )
        items = _read_in_thread(pending) if blocking else pending

        def before_send(identity: str) -> None:
            """The write-ahead record: a crash after this line is known to --resume."""
            nonlocal reminted, resent
            reminted += identity in previous.expired
            resent += identity in previous.in_flight
            journal.sending(identity)

        async with VerifyClient(base_url=args.base_url) as client:
            batch: EnrollmentBatch = client.access_tokens.create_many(
                args.service_sid,
                items,
                concurrency=args.concurrency,
                rate_limit=rate_limit,
                ttl=args.ttl,
            )
            batch._on_send = before_send
            graceful = _install_signal_handlers(loop, batch)
            bar = _progress(total, args.quiet)
            try:
                async with batch:
                    async for result in batch:
                        journal.record(result)
                        if bar is not None:
                            bar.set_postfix(errors=batch.summary.failed_total)
                            bar.update(1)
            finally:
                for sig in graceful:
                    loop.remove_signal_handler(sig)
                if bar is not None:
                    bar.close()
                journal.sync()
    summary = batch.summary
    failed = summary.failed_total
    resumed = (
        f", re-minted {reminted} expired, re-sent {resent} in flight when the last run "
        "ended (possible duplicates)"
        if args.resume
        else ""
    )
    print(
        f"enrolled {summary.succeeded}, failed {failed}"
        + (f" {dict(summary.failed)}" if failed else "")
        + f", skipped {len(done)} already enrolled{resumed}, {summary.retried} retries, "
        f"{summary.elapsed:.1f}s ({summary.rate:.0f}/s); results in {args.out}",
        file=sys.stderr,
    )
    if batch.stopping:
        print("interrupted: run again with --resume to continue", file=sys.stderr)
        return 130
    return 0 if failed == 0 else 1


def _install_signal_handlers(
    loop: asyncio.AbstractEventLoop, batch: EnrollmentBatch
) -> list[signal.Signals]:
    """Ctrl-C and SIGTERM stop the batch gracefully, where the loop supports signal handlers.

    Not on Windows: there Ctrl-C aborts, and --resume still picks up what was written.
    """
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


def add_enroll_command(commands: Any, **parser_options: Any) -> None:
    enroll = commands.add_parser(
        "enroll",
        help="enroll every identity of a file (resumable; writes JSONL results)",
        description=(
            "Create an access token for every identity in INPUT and write one JSON line per "
            "result to --out as it arrives (mode 0600: it holds tokens). Tokens expire after "
            "their ttl, so deliver them as they are written. Exit 0 only if all succeeded."
        ),
        **parser_options,
    )
    enroll.add_argument("service_sid", metavar="SERVICE_SID", help="the Verify Service (VA...)")
    enroll.add_argument("input", metavar="INPUT", nargs="?", default="-",
                        help="file, or - for stdin")  # fmt: skip
    enroll.add_argument("--out", required=True,
                        help="results file (JSONL), or - to stream results to stdout")  # fmt: skip
    enroll.add_argument("--format", choices=FORMATS, default="auto",
                        help="input format; auto: from the file extension")  # fmt: skip
    enroll.add_argument(
        "--resume",
        action="store_true",
        help="append to --out: skip identities whose token is still valid; send again expired, "
        "failed, unknown and those in flight when the last run ended (possible duplicates)",
    )
    enroll.add_argument("--keep-expired", action="store_true",
                        help="with --resume: skip created identities even if their token "
                        "expired (you delivered them already)")  # fmt: skip
    enroll.add_argument("--concurrency", type=int, default=32, help="requests in flight at once")
    enroll.add_argument("--rate-limit",
                        help="requests/s this client sends, or 'adaptive' "
                        "(default: no limit)")  # fmt: skip
    enroll.add_argument("--ttl", type=int, help="token lifetime in seconds, 60-300")
    enroll.add_argument("--base-url", help="API origin (default: Twilio, or TWILIO_REGION/EDGE)")
    enroll.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    enroll.set_defaults(handler=run_enroll)
