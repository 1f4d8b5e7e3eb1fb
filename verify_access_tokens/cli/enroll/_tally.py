"""``enroll``'s accounting: the counts of a run, the systemic-failure stop, and the summary prose.

A run stops sending after ``--max-consecutive-failures`` failures in a row that no retry can fix
because they are about the run's settings (401, 403, 404 of the service; Twilio codes 20003 and
20404): every further request would fail the same way.
"""

from __future__ import annotations

import collections
from typing import Any

import attrs

from ... import APIStatusError, VerifyError
from ._inputs import InputCount
from ._journal import CREATED, FAILED, NOT_SENT, UNKNOWN

_CAUSES = {
    401: "authentication failed {n} times in a row: check TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN",
    403: "permission denied {n} times in a row: check that these credentials may use {sid}",
    404: "service {sid} not found {n} times in a row: check SERVICE_SID",
}
_CODES = {20003: 401, 20404: 404}


def systemic_status(error: VerifyError | None) -> int | None:
    """401, 403 or 404 when ``error`` says the run's credentials or service are wrong."""
    if not isinstance(error, APIStatusError):
        return None
    if error.code in _CODES:
        return _CODES[error.code]
    return error.status if error.status in _CAUSES else None


@attrs.define
class SystemicStop:
    """Counts consecutive settings failures; says why once ``limit`` are seen (0: never)."""

    limit: int
    service_sid: str
    streak: int = 0
    reason: str | None = None

    def observe(self, error: VerifyError | None) -> bool:
        """Count one result; True the first time the streak reaches the limit."""
        status = systemic_status(error)
        self.streak = self.streak + 1 if status is not None else 0
        if status is None or self.reason is not None or not 0 < self.limit <= self.streak:
            return False
        self.reason = _CAUSES[status].format(n=self.streak, sid=self.service_sid)
        return True


@attrs.define
class Tally:
    """What this run did, counted from the records it wrote."""

    created: int = 0
    failed: collections.Counter[str] = attrs.field(factory=collections.Counter)
    final: int = 0  # failed for good: a --resume would not send them again
    not_sent: int = 0
    retries: int = 0
    skipped: int = 0  # done in an earlier run
    kept_final: int = 0  # failed for good in an earlier run: not sent again
    duplicates: int = 0
    reminted: int = 0
    resent: int = 0
    possible_duplicates: int = 0  # created after a re-send of an unknown outcome
    undelivered: int = 0  # results the reader of --out (a pipe) never took
    input: InputCount = attrs.field(factory=InputCount)

    def count(self, record: dict[str, Any]) -> None:
        """Count one outcome record."""
        status = record["status"]
        self.retries += max(0, int(record.get("attempts") or 0) - 1)
        if status == CREATED:
            self.created += 1
            self.possible_duplicates += record.get("possible_duplicate") is True
        elif status == NOT_SENT:
            self.not_sent += 1
        elif status in (FAILED, UNKNOWN):
            error = record["error"]
            label = error["class"]
            if status == UNKNOWN:
                label += " (unknown outcome)"
            self.failed[label] += 1
            self.final += not error["retryable"]

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def left(self) -> int:
        """Items of this run that a ``--resume`` would send again."""
        return self.failed_total - self.final + self.not_sent


def summary_text(tally: Tally, *, resume: bool, notes: list[str], tail: str) -> str:
    """One paragraph of prose: no Python reprs, no ``None``."""
    parts = [f"enrolled {tally.created}"]
    failed = f"failed {tally.failed_total}"
    if tally.failed:
        failed += ": " + ", ".join(f"{n} {label}" for label, n in tally.failed.most_common())
        if tally.final:
            failed += f" ({tally.final} for good: a --resume will not retry them)"
    parts.append(failed)
    if tally.possible_duplicates:
        parts.append(
            f"{tally.possible_duplicates} possibly duplicated (re-sent after an unknown outcome: "
            "each may hold a second, unused token)"
        )
    if tally.undelivered:
        parts.append(
            f"{tally.undelivered} results not delivered (the reader of --out stopped reading; "
            "their tokens expire unused)"
        )
    if tally.not_sent:
        parts.append(f"not sent {tally.not_sent} (stopped before sending; --resume sends them)")
    if tally.duplicates:
        plural = "identities" if tally.duplicates != 1 else "identity"
        parts.append(
            f"{tally.duplicates} repeated {plural} in INPUT skipped (--allow-duplicates sends each)"
        )
    if resume:
        parts.append(f"skipped {tally.skipped} already enrolled")
        if tally.kept_final:
            parts.append(
                f"kept {tally.kept_final} failed for good (--retry-failed all sends them again)"
            )
    parts.extend(notes)
    parts.append(f"{tally.retries} retries")
    return ", ".join(parts) + f", {tail}\n" + _lines_text(tally.input)


def _lines_text(count: InputCount) -> str:
    """Where each line of INPUT went: every line read is one of them."""
    parts = [f"{count.items} identities"]
    if count.headers:
        parts.append(f"{count.headers} header")
    if count.skipped:
        parts.append(f"{count.skipped} blank or comment")
    if count.unreadable:
        parts.append(f"{count.unreadable} unreadable (named below)")
    return f"{count.lines} lines read: " + ", ".join(parts)
