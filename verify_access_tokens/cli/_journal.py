"""``enroll``'s results file: the JSONL record of a run, which ``--resume`` reads back.

Each identity gets a ``sending`` line before its request is sent (the write-ahead record: a crash
after it is known to ``--resume``) and an outcome line when its result arrives. The file is
created with mode 0600 because it holds tokens; it is fsynced at the end and on a graceful stop.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs

from .. import ConfigurationError, EnrollmentResult, OutcomeUnknownError


@attrs.define
class Previous:
    """What an earlier run's results file says, for ``--resume``."""

    done: set[str] = attrs.field(factory=set)  # created, token still valid (or kept): skip
    expired: set[str] = attrs.field(factory=set)  # created, token expired: re-mint
    in_flight: set[str] = attrs.field(factory=set)  # `sending` with no outcome: re-send


def read_previous(out: Path, *, now: _dt.datetime, keep_expired: bool) -> Previous:
    """The last record of each identity decides: a later run's lines follow an earlier's."""
    last: dict[str, dict[str, Any]] = {}
    if out.exists():
        with out.open("rb") as stream:
            for line in stream:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
                    continue  # a line cut short by a crash: that identity is simply redone
                if isinstance(record, dict) and "identity" in record:
                    last[str(record["identity"])] = record
    previous = Previous()
    for identity, record in last.items():
        status = record.get("status")
        if status == "sending":
            previous.in_flight.add(identity)
        elif status == "created":
            expires = _expires_at(record)
            if keep_expired or expires is None or expires > now:
                previous.done.add(identity)
            else:
                previous.expired.add(identity)
    return previous


def _expires_at(record: dict[str, Any]) -> _dt.datetime | None:
    """Return a created record's expiry, or None.

    None when it does not say, or says it in a way that cannot be read (malformed, without a
    time zone, out of range): then it counts as valid, like a record written before
    ``expires_at`` existed, and the identity is skipped.
    """
    try:
        if isinstance(record.get("expires_at"), str):
            expires = _dt.datetime.fromisoformat(record["expires_at"])
        else:
            created = _dt.datetime.fromisoformat(record["date_created"])
            expires = created + _dt.timedelta(seconds=int(record["ttl"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return expires if expires.utcoffset() is not None else None


def result_record(result: EnrollmentResult) -> dict[str, Any]:
    if result.access_token is not None:
        token = result.access_token.to_dict()
        return {
            "identity": result.identity,
            "status": "created",
            "sid": token["sid"],
            "token": token["token"],
            "ttl": token["ttl"],
            "date_created": token["date_created"],
            "expires_at": _utc_text(result.access_token.expires_at),
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


def _utc_text(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def _open_results(out: Path, resume: bool) -> IO[str]:
    if out.is_dir():
        raise ConfigurationError("--out", f"{out} is a directory; name a file")
    if out.exists() and out.stat().st_size and not resume:
        raise ConfigurationError(
            "--out", f"{out} exists; pass --resume to continue it, or choose another file"
        )
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if resume else os.O_TRUNC)
    try:
        # The mode is given at creation, so the file is never readable by others, on every OS
        # (no os.fchmod: Windows has it only from Python 3.13).
        fd = os.open(out, flags, 0o600)
    except OSError as exc:
        raise cannot_write(str(out), exc) from None
    results = os.fdopen(fd, "w", encoding="utf-8")
    if resume and _ends_mid_line(out):
        results.write("\n")  # a crash cut the last line short: keep it off the next record
    return results


def cannot_write(out: str, exc: OSError) -> ConfigurationError:
    """Every failure to open, write, flush, fsync or close ``--out``: one line, exit 2."""
    return ConfigurationError("--out", f"cannot write {out}: {exc.strerror or exc}")


@contextlib.contextmanager
def _closing(stream: IO[str], out: str) -> Iterator[IO[str]]:
    try:
        yield stream
    finally:
        try:
            stream.close()  # flushes what a failed write left buffered: it may fail again
        except OSError as exc:
            raise cannot_write(out, exc) from None


def _ends_mid_line(path: Path) -> bool:
    with path.open("rb") as stream:
        if stream.seek(0, os.SEEK_END) == 0:
            return False
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) != b"\n"


def open_output(out: str, resume: bool) -> contextlib.AbstractContextManager[IO[str]]:
    if out != "-":
        return _closing(_open_results(Path(out), resume), out)
    if resume:
        raise ConfigurationError("--resume", "needs a results file, not --out -")
    return contextlib.nullcontext(sys.stdout)


class Journal:
    """Writes the run's records to ``--out`` (a file, or ``-`` for stdout), line by line.

    Every line is flushed as it is written: tokens expire within minutes, so a consumer reads
    them as they come. Only a file gets the write-ahead ``sending`` lines and the final fsync.
    """

    def __init__(self, out: str, stream: IO[str]) -> None:
        self._out = out
        self._to_file = out != "-"
        self._stream = stream

    def sending(self, identity: str) -> None:
        if self._to_file:
            self._write({"identity": identity, "status": "sending"})

    def record(self, result: EnrollmentResult) -> None:
        self._write(result_record(result))

    def sync(self) -> None:
        """Durable on disk: at the end of a run and on a graceful stop."""
        if self._to_file:
            try:
                self._stream.flush()
                os.fsync(self._stream.fileno())
            except OSError as exc:
                raise cannot_write(self._out, exc) from None

    def _write(self, record: dict[str, Any]) -> None:
        try:
            self._stream.write(json.dumps(record) + "\n")
            self._stream.flush()
        except BrokenPipeError:
            raise  # stdout's reader went away: main() reports that as closed output
        except OSError as exc:
            raise cannot_write(self._out, exc) from None
