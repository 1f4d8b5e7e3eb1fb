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
import datetime as _dt
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .. import ConfigurationError, EnrollmentBatch, EnrollmentRequest, VerifyClient
from .._core._validation import TTL_MIN
from ._enroll_progress import progress
from ._enroll_tally import SystemicStop, Tally, summary_text
from ._input_stream import InputStream, read_in_thread
from ._inputs import format_from_name, has_header, read_items
from ._journal import Journal, header_record
from ._results_file import results_file
from ._resume import DONE, EXPIRED, FINAL, IN_FLIGHT, TAKEN, ResumeIndex, read_index

ENV_SERVICE_SID = "VERIFY_SERVICE_SID"


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


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


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
    now = _dt.datetime.now(_dt.UTC)
    tally = Tally()
    stop = SystemicStop(args.max_consecutive_failures, args.service_sid)
    loop = asyncio.get_running_loop()
    with InputStream(args.input) as source, results_file(args.out, resume=args.resume) as out:
        if out.same_file_as(source.stat):
            raise ConfigurationError(
                "INPUT",
                f"{source.name} is the results file {args.out}; give the original input "
                "(--resume sends again what can still succeed)",
            )
        index = ResumeIndex()
        if args.resume:
            index = read_index(out.lines(), now=now, keep_expired=args.keep_expired,
                               retry_failed_all=args.retry_failed == "all")  # fmt: skip
        notes = _check_resume(args, index) if args.resume else []
        admission = _Admission(index, tally, args.allow_duplicates)
        fmt = format_from_name(args.input, args.format)
        counted = source.count()
        total = counted[0] - has_header(counted[1], fmt) if counted else None
        parsed = read_items(source.lines(), fmt, _note)
        items: Any = (
            _admitted(parsed, admission)
            if not source.may_block
            else _admitted_async(read_in_thread(parsed), admission)
        )
        journal = Journal(args.out, out.stream)

        def before_send(identity: str) -> None:
            """The write-ahead record: a crash after this line is known to --resume."""
            admission.sent(identity)
            journal.sending(identity)

        async with VerifyClient(base_url=args.base_url) as client:
            journal.header(
                header_record(service_sid=args.service_sid, account_sid=client.account_sid,
                              ttl=args.ttl, friendly_name=args.friendly_name, now=now)
            )  # fmt: skip
            batch: EnrollmentBatch = client.access_tokens.create_many(
                args.service_sid,
                items,
                concurrency=args.concurrency,
                rate_limit=rate_limit,
                ttl=args.ttl,
                factor_friendly_name=args.friendly_name,
                on_send=before_send,
            )
            graceful = _install_signal_handlers(loop, batch)
            bar = admission.tick = progress(total, args.quiet)
            try:
                async with batch:
                    async for result in batch:
                        tally.count(journal.record(result))
                        if stop.observe(result.error):
                            batch.stop()
                        if bar is not None:
                            bar.set_postfix(errors=tally.failed_total)
                            bar.update(1)
            finally:
                for sig in graceful:
                    loop.remove_signal_handler(sig)
                if bar is not None:
                    bar.close()
                journal.sync()
    return _finish(args, tally, notes, batch, stop)


def _finish(
    args: argparse.Namespace,
    tally: Tally,
    notes: list[str],
    batch: EnrollmentBatch,
    stop: SystemicStop,
) -> int:
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
    if stop.reason is not None:
        print(f"stopped: {stop.reason}", file=sys.stderr)
        return 1
    if batch.stopping:
        print("interrupted: run again with --resume to continue", file=sys.stderr)
        return 130
    return 1 if tally.left else 0


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
