"""``enroll``'s command line: its arguments and their help (the flow is in `_command`)."""

from __future__ import annotations

import argparse
from typing import Any

from .._commands import CONCURRENCY_HELP, concurrency
from ._inputs import FORMATS


def add_enroll_command(commands: Any, **parser_options: Any) -> None:
    """Register ``enroll`` on the CLI's subparsers."""
    from ._command import run_enroll

    enroll = commands.add_parser(
        "enroll",
        help="enroll every identity of a file (resumable; writes JSONL results)",
        description=(
            "Create an access token for every identity in INPUT and write one JSON line per "
            "result to --out as it arrives (mode 0600: it holds tokens). Tokens expire after "
            "their ttl, so deliver them as they are written. Exit 0 when nothing is left that "
            "a --resume could still enroll (every identity created, or failed for good), 1 "
            "otherwise, 2 for bad input or settings, 130 when interrupted."
        ),
        **parser_options,
    )
    _add_input_options(enroll)
    _add_resume_options(enroll.add_argument_group("resuming and unknown outcomes"))
    _add_sending_options(enroll.add_argument_group("sending"))
    enroll.set_defaults(handler=run_enroll)


def _add_input_options(enroll: argparse.ArgumentParser) -> None:
    enroll.add_argument(
        "service_sid",
        metavar="SERVICE_SID",
        nargs="?",
        help="the Verify Service (VA...); default: $VERIFY_SERVICE_SID",
    )
    enroll.add_argument("input", metavar="INPUT", nargs="?",
                        help="file, pipe or FIFO, read once; - or nothing for stdin")  # fmt: skip
    enroll.add_argument("--out", required=True,
                        help="results file (JSONL), or - to stream results to stdout")  # fmt: skip
    enroll.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="input format; auto: from the extension, else the first line",
    )
    enroll.add_argument("--identity-column", default="identity", metavar="NAME",
                        help="the CSV column holding the identity (any case; spaces, dashes "
                        "and underscores ignored)")  # fmt: skip
    enroll.add_argument("--allow-duplicates", action="store_true",
                        help="send an identity each time INPUT repeats it")  # fmt: skip
    enroll.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")


def _add_resume_options(resume: argparse._ArgumentGroup) -> None:
    resume.add_argument(
        "--resume",
        action="store_true",
        help="append to --out: skip identities whose token is still valid or that failed for "
        "good; send again expired, retryable failures, unknown, not sent and those in flight "
        "when the last run ended (possible duplicates)",
    )
    resume.add_argument("--keep-expired", action="store_true",
                        help="with --resume: skip created identities even if their token "
                        "expired (you delivered them already)")  # fmt: skip
    resume.add_argument("--retry-failed", choices=("retryable", "all"), default="retryable",
                        help="with --resume: which failed identities to send again; all "
                        "includes validation and other 4xx failures")  # fmt: skip
    resume.add_argument("--no-retry-unknown", action="store_true",
                        help="leave an unknown outcome (a timeout or lost answer after sending) "
                        "for --resume instead of sending it again within the run's retries; a "
                        "re-sent identity may hold a second, unused token, and is counted as "
                        "possibly duplicated")  # fmt: skip


def _add_sending_options(sending: argparse._ArgumentGroup) -> None:
    sending.add_argument("--concurrency", type=concurrency, default="adaptive",
                        help=CONCURRENCY_HELP)  # fmt: skip
    sending.add_argument("--rate-limit",
                        help="at most this many requests/s, retries included, for a "
                        "per-second quota you know (default: none; the client adapts to "
                        "Twilio's in-flight limit by itself)")  # fmt: skip
    sending.add_argument("--max-consecutive-failures", type=int, default=20,
                        help="stop after this many failures in a row caused by the credentials "
                        "or the service (401, 403, 404); 0: never stop")  # fmt: skip
    sending.add_argument("--ttl", type=int, help="token lifetime in seconds, 60-300 (default 60)")
    sending.add_argument("--friendly-name",
                        help="the device name of identities without their own")  # fmt: skip
    sending.add_argument("--base-url", help="API origin (default: Twilio, or TWILIO_REGION/EDGE)")
