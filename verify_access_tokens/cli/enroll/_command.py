"""``verify-access-tokens enroll``: a resumable batch from INPUT to a JSONL journal, the flow.

Tokens live at most 300 s, so results are meant to be consumed as they are written (``--out -``
streams them to a pipe). The journal (`_journal`), the results file it lives in
(`_results_file`: lock, mode), the resume index (`_resume`), the input readers (`_inputs`,
`_input_stream`) and the counts and summary (`_enroll_tally`) each have their module; this one
wires them to a batch. Ctrl-C (or SIGTERM) stops taking input, lets in-flight requests finish,
records them and fsyncs the file; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ... import ConfigurationError, EnrollmentBatch, EnrollmentRequest, VerifyClient
from ..._core._validation import TTL_MIN
from ._input_stream import InputStream, read_in_thread
from ._inputs import format_from_name, read_items
from ._journal import Journal, header_record
from ._progress import progress, say
from ._results_file import ResultsFile, results_file, same_file
from ._resume import DONE, EXPIRED, FINAL, IN_FLIGHT, TAKEN, ResumeIndex, read_index
from ._tally import SystemicStop, Tally, summary_text

ENV_SERVICE_SID = "VERIFY_SERVICE_SID"
# After a stop, the seconds a slow reader of --out gets to take the results still queued.
_DELIVERY_GRACE = 2.0


def _rate_limit(value: str | None) -> float | None:
    if value is None:
        return None
    if value == "adaptive":
        raise ConfigurationError(
            "--rate-limit",
            "'adaptive' was removed: leave --rate-limit out (the client adapts to Twilio's "
            "in-flight limit by itself), or give a number for a per-second quota you know",
        )
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigurationError("--rate-limit", "must be a positive number of requests/s")
    return rate


def _ttl_text(ttl: int | None) -> str:
    return f"{ttl} s" if ttl is not None else f"the default, {TTL_MIN} s"


def _check_resume(args: argparse.Namespace, index: ResumeIndex) -> list[str]:
    """Refuse a journal of another service; say what changed since the last run."""
    if index.service_sid is not None and index.service_sid != args.service_sid:
        raise ConfigurationError(
            "--resume",
            f"{args.out} holds results of service {index.service_sid}, not {args.service_sid}; "
            "choose another --out",
        )
    changes = []
    if index.has_header and index.ttl != args.ttl:
        changes.append(
            f"ttl changed from {_ttl_text(index.ttl)} to {_ttl_text(args.ttl)} "
            "for the identities still to send"
        )
    if index.has_header and index.friendly_name != args.friendly_name:
        old, new = (repr(n) if n is not None else "none" for n in
                    (index.friendly_name, args.friendly_name))  # fmt: skip
        changes.append(
            f"friendly name changed from {old} to {new} for the identities still to send"
        )
    return changes


class _Admission:
    """Which INPUT items are sent: not those done, failed for good, or repeated."""

    def __init__(self, index: ResumeIndex, tally: Tally, allow_duplicates: bool) -> None:
        self.index, self.tally, self.allow_duplicates = index, tally, allow_duplicates
        self.tick: Any = None  # the progress display, for items decided without a request

    def admit(self, item: EnrollmentRequest) -> bool:
        if not isinstance(item.identity, str):
            return True  # a JSONL value of the wrong type: its result is a validation error
        state = self.index.take(item.identity)
        if state >= TAKEN:
            if not self.allow_duplicates:
                self.tally.duplicates += 1
                self._skip()
                return False
            state -= TAKEN
        if state in (DONE, FINAL):
            if state == DONE:
                self.tally.skipped += 1
            else:
                self.tally.kept_final += 1
            self._skip()
            return False
        return True

    def _skip(self) -> None:
        if self.tick is not None:
            self.tick.update(1)

    def sent(self, identity: str) -> None:
        state = self.index.state(identity) % TAKEN
        self.tally.reminted += state == EXPIRED
        self.tally.resent += state == IN_FLIGHT


def _admitted(items: Iterator[EnrollmentRequest], admission: _Admission) -> Iterator[Any]:
    return (item for item in items if admission.admit(item))


async def _admitted_async(
    items: AsyncIterator[EnrollmentRequest], admission: _Admission
) -> AsyncIterator[EnrollmentRequest]:
    async for item in items:
        if admission.admit(item):
            yield item


def _service_sid(args: argparse.Namespace) -> None:
    """SERVICE_SID from ``$VERIFY_SERVICE_SID`` when not given (then a lone argument is INPUT)."""
    env = os.environ.get(ENV_SERVICE_SID) or None
    given = args.service_sid
    if given is not None and args.input is None and env and not given.startswith("VA"):
        args.service_sid, args.input = None, given
    if args.input is None:
        args.input = "-"
    if args.service_sid is None:
        if env is None:
            raise ConfigurationError("SERVICE_SID", f"missing: pass it or set {ENV_SERVICE_SID}")
        args.service_sid = env


async def run_enroll(args: argparse.Namespace) -> int:
    _service_sid(args)
    rate_limit = _rate_limit(args.rate_limit)
    if args.max_consecutive_failures < 0:
        raise ConfigurationError("--max-consecutive-failures", "must be 0 (never stop) or more")
    with InputStream(args.input) as source:
        if same_file(args.out, source.stat):
            raise ConfigurationError(
                "INPUT",
                f"{source.name} is the results file {args.out}; give the original input "
                "(--resume sends again what can still succeed)",
            )
        fmt = format_from_name(args.input, args.format)
        # A regular file is checked whole before anything is opened or sent: a bad line is
        # refused with nothing to undo, and the count is the progress bar's total.
        total = _checked_total(source, fmt, args.identity_column) if source.regular else None
        with results_file(args.out, resume=args.resume) as out:
            return await _Run(args, out, total).enroll(source, fmt, rate_limit)


def _checked_total(source: InputStream, fmt: str, identity_column: str) -> int:
    """The items of a regular INPUT, every line parsed; a bad one raises, naming it."""
    lines = source.lines_at_rest()
    return sum(1 for _ in read_items(lines, fmt, _quiet, identity_column=identity_column))


def _quiet(_: str) -> None:
    """Notes of the check before the run: the run itself says them."""


class _Run:
    """One ``enroll`` run: what it reads, sends, records and counts, and its summary."""

    def __init__(self, args: argparse.Namespace, out: ResultsFile, total: int | None) -> None:
        self.args = args
        self.total = total
        self.now = _dt.datetime.now(_dt.UTC)
        self.index = ResumeIndex()
        if args.resume:
            self.index = read_index(out.lines(), now=self.now, keep_expired=args.keep_expired,
                                    retry_failed_all=args.retry_failed == "all")  # fmt: skip
        self.notes = _check_resume(args, self.index) if args.resume else []
        if args.resume:
            say(self.index.plan())  # before the first request: what it will do
        self.tally = Tally()
        self.stop = SystemicStop(args.max_consecutive_failures, args.service_sid)
        self.admission = _Admission(self.index, self.tally, args.allow_duplicates)
        self.journal = Journal(args.out, out.stream, regular=out.regular)

    async def enroll(self, source: InputStream, fmt: str, rate_limit: float | None) -> int:
        args = self.args
        parsed = read_items(source.lines(), fmt, say, self.tally.input,
                            identity_column=args.identity_column)  # fmt: skip
        items: Any = (
            _admitted(parsed, self.admission)
            if not source.may_block
            else _admitted_async(read_in_thread(parsed), self.admission)
        )
        retry_unknown = not args.no_retry_unknown  # a spare token is harmless: it expires unused
        async with VerifyClient(
            base_url=args.base_url, retry_ambiguous_creates=retry_unknown
        ) as client:
            self.journal.header(
                header_record(service_sid=args.service_sid, account_sid=client.account_sid,
                              ttl=args.ttl, friendly_name=args.friendly_name, now=self.now)
            )  # fmt: skip
            batch: EnrollmentBatch = client.access_tokens.create_many(
                args.service_sid,
                items,
                concurrency=args.concurrency,
                rate_limit=rate_limit,
                ttl=args.ttl,
                factor_friendly_name=args.friendly_name,
                on_send=self._write_ahead,
            )
            try:
                await self._consume(batch)
            except ConfigurationError:  # a bad line of a streamed INPUT, --out not writable
                await self._deliver_what_is_queued()
                self._print_summary(batch)  # every exit has its summary, then the error line
                raise
            except KeyboardInterrupt:
                self._print_summary(batch)
                raise
        return _finish(self, batch)

    async def _deliver_what_is_queued(self) -> None:
        """On an error exit, a pipe's reader still gets what was made, or the summary says."""
        self.journal.release()
        # The reader went away, or --out cannot be written: the error line says so next.
        with contextlib.suppress(OSError, ConfigurationError):
            self.tally.undelivered = await self.journal.undelivered(_DELIVERY_GRACE)

    def _write_ahead(self, identity: str) -> None:
        """The ``sending`` record: a crash after this line is known to --resume."""
        self.admission.sent(identity)
        self.journal.sending(identity)

    async def _consume(self, batch: EnrollmentBatch) -> None:
        loop = asyncio.get_running_loop()
        graceful = _install_signal_handlers(loop, batch, self.journal)
        bar = self.admission.tick = progress(self.total, self.args.quiet)
        tally = self.tally
        try:
            async with batch:
                async for result in batch:
                    tally.count(self.journal.record(result))
                    if self.stop.observe(result.error):
                        batch.stop()
                    if bar is not None:
                        bar.set_postfix(errors=tally.failed_total)
                        bar.update(1)
                    await self.journal.room()  # a reader of --out far behind slows the run
            tally.undelivered = await self.journal.undelivered(_DELIVERY_GRACE)
        finally:
            for sig in graceful:
                loop.remove_signal_handler(sig)
            if bar is not None:
                bar.close()
            self.journal.sync()

    def _print_summary(self, batch: EnrollmentBatch) -> None:
        args, tally, notes = self.args, self.tally, self.notes
        if tally.reminted:
            notes.append(
                f"re-minted {tally.reminted} expired (a token lives its ttl, "
                f"{_ttl_text(args.ttl)}; --keep-expired skips the ones you delivered)"
            )
        if tally.resent:
            notes.append(
                f"re-sent {tally.resent} in flight when the last run ended (possible duplicates)"
            )
        summary = batch.summary
        tail = f"{summary.elapsed:.1f}s ({summary.rate:.0f}/s); results in {args.out}"
        print(summary_text(tally, resume=args.resume, notes=notes, tail=tail), file=sys.stderr)


def _finish(run: _Run, batch: EnrollmentBatch) -> int:
    """Print the summary; the exit status."""
    run._print_summary(batch)
    if run.stop.reason is not None:
        print(f"stopped: {run.stop.reason}", file=sys.stderr)
        return 1
    if batch.stopping:
        print("interrupted: run again with --resume to continue", file=sys.stderr)
        return 130
    return 1 if run.tally.left else 0


def _install_signal_handlers(
    loop: asyncio.AbstractEventLoop, batch: EnrollmentBatch, journal: Journal
) -> list[signal.Signals]:
    """Ctrl-C and SIGTERM stop the batch gracefully, where the loop supports signal handlers.

    Not on Windows: there Ctrl-C aborts, and --resume still picks up what was written.
    """
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _on_signal, batch, journal)
        except NotImplementedError:  # pragma: no cover - Windows event loops
            break
        installed.append(sig)
    return installed


def _on_signal(batch: EnrollmentBatch, journal: Journal) -> None:
    if batch.stopping:  # second Ctrl-C: give up on in-flight requests too
        raise KeyboardInterrupt
    print("\nstopping: finishing in-flight requests (Ctrl-C again to abort)", file=sys.stderr)
    batch.stop()
    journal.release()  # no more waiting for a slow reader of --out
