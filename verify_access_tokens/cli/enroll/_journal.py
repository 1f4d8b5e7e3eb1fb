"""``enroll``'s journal: the JSON lines of the results file, and the writer that appends them.

Each run starts with a header record (``"record": "header"``: service SID, account SID, ttl,
friendly name, tool version, start time; never a credential). Each identity sent gets a
``sending`` line just before its request goes on the wire (the write-ahead record: a crash after
it is known to ``--resume``) and one outcome line when its result arrives: ``created`` (the token,
its ttl and expiry), ``failed`` or ``unknown`` (the error's class, HTTP status, Twilio code,
request id and message, those of the cause for an unknown outcome, and whether a ``--resume``
sends it again), or ``not_sent`` (its request provably never left: the deadline ran out waiting
for its turn or for a connection).
Lines are flushed as they are written; the file is fsynced at the end and on a graceful stop.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
from typing import IO, Any

from ... import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    EnrollmentResult,
    OutcomeUnknownError,
    VerifyError,
    __version__,
)
from ._pipe_writer import PipeWriter

CREATED, FAILED, UNKNOWN, NOT_SENT, SENDING = "created", "failed", "unknown", "not_sent", "sending"
HEADER = "header"
# 401, 403, 404 of the service: about the run's credentials or service, not the identity.
SETTINGS_STATUSES = frozenset({401, 403, 404})


def never_sent(error: VerifyError) -> bool:
    """Whether ``error`` proves the request never left this machine."""
    return isinstance(error, APITimeoutError) and not error.request_sent


def retryable(error: VerifyError) -> bool:
    """Whether sending the item again could succeed: ``--resume`` re-sends only those.

    A rate limit, a server error, a network failure and an unknown outcome may pass next time,
    and so may a failure of the run's settings (401, 403, 404 of the service: fixed by fixing the
    credentials or SERVICE_SID). A validation error or another 4xx would fail again.
    """
    if isinstance(error, OutcomeUnknownError | APIConnectionError):
        return True
    if isinstance(error, APIStatusError):
        return error.status == 429 or error.status >= 500 or error.status in SETTINGS_STATUSES
    return False


def header_record(
    *,
    service_sid: str,
    account_sid: str | None,
    ttl: int | None,
    friendly_name: str | None,
    now: _dt.datetime,
) -> dict[str, Any]:
    """The record that starts a run: what its results belong to."""
    return {
        "record": HEADER,
        "service_sid": service_sid,
        "account_sid": account_sid,
        "ttl": ttl,
        "friendly_name": friendly_name,
        "tool_version": __version__,
        "started_at": utc_text(now),
    }


def result_record(result: EnrollmentResult) -> dict[str, Any]:
    """The outcome line of one result."""
    if result.access_token is not None:
        token = result.access_token.to_dict()
        return {
            "identity": result.identity,
            "status": CREATED,
            "sid": token["sid"],
            "token": token["token"],
            "ttl": token["ttl"],
            "date_created": token["date_created"],
            "expires_at": utc_text(result.access_token.expires_at),
            "attempts": result.attempts,
            **({"possible_duplicate": True} if result.possible_duplicate else {}),
        }
    error = result.error
    assert error is not None
    if never_sent(error):
        status = NOT_SENT
    else:
        status = UNKNOWN if isinstance(error, OutcomeUnknownError) else FAILED
    cause = error.cause if isinstance(error, OutcomeUnknownError) else error
    return {
        "identity": result.identity,
        "status": status,
        "error": {
            "class": type(error).__name__,
            "cause": type(cause).__name__ if cause is not error else None,
            "http_status": getattr(cause, "status", None),
            "code": getattr(cause, "code", None),
            "request_id": getattr(cause, "request_id", None),
            "message": str(error),
            "retryable": retryable(error),
        },
        "attempts": result.attempts,
    }


def utc_text(moment: _dt.datetime) -> str:
    """``moment`` as ISO 8601 UTC with a ``Z``."""
    return moment.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def cannot_write(out: str, exc: OSError) -> ConfigurationError:
    """Every failure to open, write, flush, fsync or close ``--out``: one line, exit 2."""
    return ConfigurationError("--out", f"cannot write {out}: {exc.strerror or exc}")


class Journal:
    """Writes the run's records to ``--out`` (a file, or ``-`` for stdout), line by line.

    Every line is flushed as it is written: tokens expire within minutes, so a consumer reads
    them as they come. Only a regular file gets the header, the write-ahead ``sending`` lines
    and the fsync (at the end and on a graceful stop); anything else (``-``, a FIFO,
    ``/dev/null``) gets the outcome lines through a `PipeWriter`, so a stalled reader never
    blocks the event loop.
    """

    def __init__(self, out: str, stream: IO[str], *, regular: bool) -> None:
        self._out = out
        self._to_file = regular
        self._stream = stream
        self._header: dict[str, Any] | None = None
        self._pipe = None if regular else _pipe_writer(stream)

    async def room(self) -> None:
        """Wait while the reader of a pipe is far behind (see `PipeWriter`)."""
        if self._pipe is not None:
            await self._pipe.room()

    def release(self) -> None:
        """Stop waiting for a slow reader: the run is stopping."""
        if self._pipe is not None:
            self._pipe.release()

    async def undelivered(self, grace: float) -> int:
        """The results a pipe's reader did not take (0: none).

        Waits for the reader to take them all (until `release`), then ``grace`` seconds at
        most for what is left.

        Raises:
            BrokenPipeError: The reader went away.
        """
        if self._pipe is None:
            return 0
        await self._pipe.drain()
        left = self._pipe.finish(grace)
        error = self._pipe.error
        if isinstance(error, BrokenPipeError):
            raise error  # the reader went away: main() reports that as closed output
        if error is not None:
            raise cannot_write(self._out, error)
        return left

    def header(self, record: dict[str, Any]) -> None:
        """Keep the run's header, to be written with the run's first line.

        A run that sends nothing leaves the file as it found it: an empty one is not in the
        next run's way.
        """
        if self._to_file:
            self._header = record

    def sending(self, identity: str) -> None:
        if self._to_file:
            self._write({"identity": identity, "status": SENDING})

    def record(self, result: EnrollmentResult) -> dict[str, Any]:
        record = result_record(result)
        self._write(record)
        return record

    def sync(self) -> None:
        """Durable on disk: at the end of a run and on a graceful stop."""
        if self._to_file:
            try:
                self._stream.flush()
                os.fsync(self._stream.fileno())
            except OSError as exc:
                raise cannot_write(self._out, exc) from None

    def _write(self, record: dict[str, Any]) -> None:
        if self._pipe is not None:
            try:
                self._pipe.put((json.dumps(record) + "\n").encode())
            except BrokenPipeError:
                raise  # the reader went away: main() reports that as closed output
            except OSError as exc:
                raise cannot_write(self._out, exc) from None
            return
        header, self._header = self._header, None
        try:
            if header is not None:
                self._stream.write(json.dumps(header) + "\n")
            self._stream.write(json.dumps(record) + "\n")
            self._stream.flush()
        except BrokenPipeError:
            raise  # stdout's reader went away: main() reports that as closed output
        except OSError as exc:
            raise cannot_write(self._out, exc) from None


def _pipe_writer(stream: IO[str]) -> PipeWriter | None:
    """A writer thread for ``stream``'s descriptor; None for a stream without one (a test's)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return PipeWriter(fd, asyncio.get_running_loop())
